"""`llmledger signals …` and `llmledger alerts …`: evaluate the signals, list, acknowledge and
silence alerts, deliver the outbox — for cron users and people on call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from llmledger.settings import get_settings

signals_app = typer.Typer(help="The silent-failure signals (design.md §5).", no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts: list, acknowledge, silence, deliver.", no_args_is_help=True)
console = Console()

DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _duration(text: str) -> timedelta:
    unit = DURATION_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit():
        raise typer.BadParameter("use a number and m, h or d, e.g. 30m, 2h, 1d")
    return timedelta(**{unit: int(text[:-1])})


@signals_app.command("evaluate")
def evaluate(
    at: Annotated[str | None, typer.Option(help="Evaluate up to this instant (UTC); default now minus the lag.")] = None,
    since: Annotated[str | None, typer.Option(help="Backfill every instant from here (not yet evaluated).")] = None,
) -> None:
    """Evaluate every signal once (what the scheduler does each minute) and print the transitions."""
    from alerts.evaluate import evaluate_signals
    from llmledger.runtime import open_warehouse

    settings = get_settings()
    with open_warehouse(settings) as wh:
        report = evaluate_signals(wh, settings, at=_when(at), since=_when(since))
    for event in report.events:
        i = event.incident
        console.print(f"{event.at:%Y-%m-%d %H:%M} [bold]{event.kind.value}[/bold] {i.signal} {i.scope_key}: "
                      f"{i.state.value} — {i.summary}")
    console.print(f"{len(report.events)} transition(s), {report.notifications} notification(s) queued; "
                  + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in report.seconds.items()))


@signals_app.command("list")
def list_signals() -> None:
    """The signals with their thresholds, windows and sustain periods as configured."""
    from alerts.rules import FAMILIES

    settings = get_settings().signals
    table = Table(Column("signal", no_wrap=True), "warning", "critical", "window", "sustain", "min vol.", "on")
    methods = []
    for family in FAMILIES:
        for rule in family.rules:
            s = getattr(settings, rule.name)
            table.add_row(rule.name, f"{s.warning:g}", f"{s.critical:g}", f"{s.window_min} min",
                          f"{s.sustain_min} min", str(s.min_volume), "yes" if s.enabled else "no")
            methods.append(f"[bold]{rule.name}[/bold]: {rule.method}")
    console.print(table)
    console.print("How each signal is judged:")  # below the table: whole on a narrow terminal
    for line in methods:
        console.print(f"  {line}")


@alerts_app.command("list")
def list_alerts(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved incidents.")] = False,
    signal: Annotated[str | None, typer.Option(help="Only this signal.")] = None,
) -> None:
    """Open incidents (or all of them), newest change first."""
    from llmledger.runtime import open_warehouse
    from warehouse.queries import alerts as queries
    from warehouse.queries.scope import Scope

    with open_warehouse(get_settings()) as wh:
        frame = queries.incidents(wh, Scope.all(), states=None if all_ else ["warning", "critical"], signal=signal)
    table = Table("incident", "signal", "scope", "state", "since", "summary", "acked by")
    for row in frame.iter_rows(named=True):
        table.add_row(row["incident_id"], row["signal"], row["scope_key"], row["state"],
                      f"{row['opened_at']:%m-%d %H:%M}", row["summary"][:80], row["acked_by"])
    console.print(table)


@alerts_app.command("show")
def show(incident_id: str) -> None:
    """An incident's transitions, cause and next step."""
    from llmledger.runtime import open_warehouse
    from warehouse.queries import alerts as queries
    from warehouse.queries.scope import Scope

    with open_warehouse(get_settings()) as wh:
        events = queries.incident_events(wh, Scope.all(), incident_id=incident_id)
        current = queries.incident(wh, Scope.all(), incident_id)
    if events.is_empty():
        console.print(f"[red]no incident {incident_id}[/red]")
        raise typer.Exit(1)
    for row in events.iter_rows(named=True):
        console.print(f"{row['at']:%Y-%m-%d %H:%M} {row['kind']}: {row['to_state']} — {row['summary']}")
    import json

    from alerts.message import backoff_text, members_text

    last = events.row(-1, named=True)
    detail = json.loads((current or last)["detail"] or "{}")
    members = detail.get("members") or []
    if len(members) > 1:
        console.print(f"[bold]One cause, {len(members)} scopes:[/bold]\n" + members_text(members, last["unit"], 50))
    onset = f" (looked up around the onset, {detail['onset'][:16].replace('T', ' ')} UTC)" if detail.get("onset") else ""
    console.print(f"[bold]Probable cause{onset}:[/bold] {last['cause']}\n[bold]Next step:[/bold] {last['next_step']}")
    console.print(f"[bold]Re-notification:[/bold] {backoff_text(get_settings().signals.renotify_backoff_min)}")


@alerts_app.command("ack")
def ack(incident_id: str, by: Annotated[str, typer.Option(help="Who takes it.")]) -> None:
    """Acknowledge an open incident: no more re-notifications until its state changes."""
    from alerts.commands import acknowledge_incident
    from alerts.errors import UnknownIncident
    from llmledger.runtime import open_warehouse

    settings = get_settings()
    with open_warehouse(settings) as wh:
        try:
            incident = acknowledge_incident(wh, settings, incident_id, by=by)
        except UnknownIncident as err:
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(1) from err
    console.print(f"acknowledged {incident.signal} {incident.scope_key} ({incident.state.value})")


@alerts_app.command("silence")
def silence_cmd(
    for_: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    by: Annotated[str, typer.Option(help="Who silences.")],
    signal: Annotated[str, typer.Option(help="Signal to silence (default: every signal).")] = "",
    scope: Annotated[list[str] | None, typer.Option(help="key=glob, repeatable (e.g. route=nightly-*).")] = None,
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Silence matching alerts for a while (they are still recorded)."""
    from alerts.commands import silence
    from llmledger.runtime import open_warehouse

    matchers = dict(item.split("=", 1) for item in (scope or []))
    with open_warehouse(get_settings()) as wh:
        silence_id = silence(wh, signal=signal, matchers=matchers, duration=_duration(for_), by=by, reason=reason)
    console.print(f"silence {silence_id} until {datetime.now(UTC) + _duration(for_):%Y-%m-%d %H:%M} UTC")


@alerts_app.command("unsilence")
def unsilence(silence_id: str) -> None:
    """Lift a silence now."""
    from alerts.commands import lift_silence
    from llmledger.runtime import open_warehouse

    with open_warehouse(get_settings()) as wh:
        lifted = lift_silence(wh, silence_id)
    console.print("lifted" if lifted else f"[red]no silence {silence_id}[/red]")
    if not lifted:
        raise typer.Exit(1)


@alerts_app.command("deliver")
def deliver() -> None:
    """Deliver due notifications now (Slack when configured, else the log)."""
    from alerts.outbox import deliver_pending
    from llmledger.runtime import open_warehouse

    settings = get_settings()
    with open_warehouse(settings) as wh:
        report = deliver_pending(wh, settings)
    console.print(f"sent {report.sent}, logged {report.logged}, retrying {report.retried}, failed {report.failed}, "
                  f"waiting {report.waiting}")


@alerts_app.command("retry")
def retry() -> None:
    """Re-queue notifications that failed permanently (after fixing the token or channel)."""
    from alerts.outbox import requeue_failed
    from llmledger.runtime import open_warehouse

    with open_warehouse(get_settings()) as wh:
        console.print(f"re-queued {requeue_failed(wh)} notification(s)")
