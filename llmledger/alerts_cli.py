"""`llmledger signals …` and `llmledger alerts …`: evaluate the signals, list, acknowledge and
silence alerts, deliver the outbox — for cron users and people on call. While the service holds
the store every command goes through its API (`llmledger.dispatch`), so acknowledging and
silencing never needs the service stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from llmledger.dispatch import ApiOption, perform, settings, store_or_service

signals_app = typer.Typer(help="The silent-failure signals: what each watches and when it fires.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts: list, acknowledge, silence, deliver.", no_args_is_help=True)

DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _console() -> Any:
    from rich.console import Console

    return Console()


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _time(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time from the store (datetime) or the API (ISO text), formatted."""
    if value in (None, ""):
        return ""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(UTC).strftime(fmt)


def _pairs(matchers: Any) -> str:
    """Matchers as `k=v, …`, whichever shape they come in (a mapping, key/value records, pairs)."""
    if isinstance(matchers, dict):
        items = list(matchers.items())
    else:
        items = [(m["key"], m["value"]) if isinstance(m, dict) else (m[0], m[1]) for m in matchers or []]
    return ", ".join(f"{k}={v}" for k, v in items) or "(every scope)"


def _duration(text: str) -> timedelta:
    unit = DURATION_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise typer.BadParameter("use a number and m, h or d, e.g. 30m, 2h, 1d", param_hint="--for")
    return timedelta(**{unit: int(text[:-1])})


def _json_rows(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as the API would send them (so both paths render the same)."""
    import json

    from llmledger.operations import to_json

    return json.loads(to_json(frame.to_dicts()))


@signals_app.command("evaluate")
def evaluate(
    at: Annotated[str | None, typer.Option(help="Evaluate up to this instant (UTC); default now minus the lag.")] = None,
    since: Annotated[str | None, typer.Option(help="Backfill every instant from here (not yet evaluated).")] = None,
    api: ApiOption = None,
) -> None:
    """Evaluate every signal once (what the scheduler does each minute) and print the transitions."""
    from llmledger.progress import bars

    with bars() as feed:
        report = perform("signals.evaluate", api, feed=feed, at=_when(at), since=_when(since))
    console = _console()
    for event in report["events"]:
        console.print(f"{_time(event['at'])} [bold]{event['kind']}[/bold] {event['signal']} {event['scope_key']}: "
                      f"{event['state']} — {event['summary']}")
    console.print(f"{len(report['events'])} transition(s), {report['notifications']} notification(s) queued; "
                  + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in report["seconds"].items()))


@signals_app.command("list")
def list_signals(api: ApiOption = None) -> None:
    """The signals with their thresholds (in their units), windows, sustain periods, volume guards and
    how often each is evaluated — as the running service has them configured, when one runs."""
    from rich.table import Column, Table

    rows = perform("signals.list", api)
    table = Table(Column("signal", no_wrap=True), "warning", "critical", "window / sustain", "min volume", "evaluated",
                  "on")
    for row in rows:
        every = f"every {row['every_min']} min" if row["scheduled"] else f"{row['every_min']}-min steps (scheduler off)"
        table.add_row(row["signal"], row["warning"], row["critical"], f"{row['window_min']} / {row['sustain_min']} min",
                      row["min_volume"], every, "yes" if row["enabled"] else "no")
    console = _console()
    console.print(table)
    console.print("How each is judged:", style="bold")
    for row in rows:
        console.print(f"  {row['signal']}: {row['method']}", highlight=False)


@alerts_app.command("list")
def list_alerts(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved incidents.")] = False,
    signal: Annotated[str | None, typer.Option(help="Only this signal.")] = None,
    api: ApiOption = None,
) -> None:
    """Open incidents (or all of them), newest change first."""
    from rich.table import Column, Table

    def local(wh: Any, _: Any) -> list[dict[str, Any]]:
        from warehouse.queries import alerts as queries
        from warehouse.queries.scope import Scope

        return _json_rows(queries.incidents(wh, Scope.all(), states=None if all_ else ["warning", "critical"],
                                            signal=signal))

    rows = store_or_service(api, local=local, remote=lambda service: service.rows(
        "/v1/alerts", state="all" if all_ else "open", signal=signal, limit=10_000))
    table = Table(Column("incident", no_wrap=True), "signal", "scope", "state", "since", "summary", "acked by")
    for row in rows:
        table.add_row(row["incident_id"], row["signal"], row["scope_key"], row["state"],
                      _time(row["opened_at"], "%m-%d %H:%M"), (row["summary"] or "")[:80], row["acked_by"] or "")
    _console().print(table)


@alerts_app.command("show")
def show(incident_id: str, api: ApiOption = None) -> None:
    """An incident's transitions, cause and next step."""
    import json

    from alerts.message import backoff_text, members_text
    from llmledger.errors import UserError

    def local(wh: Any, _: Any) -> dict[str, Any]:
        from warehouse.queries import alerts as queries
        from warehouse.queries.scope import Scope

        events = queries.incident_events(wh, Scope.all(), incident_id=incident_id)
        if events.is_empty():
            raise UserError(f"no incident {incident_id!r}", "`llmledger alerts list --all` shows them")
        from llmledger.operations import to_json

        current = queries.incident(wh, Scope.all(), incident_id)
        return {"incident": json.loads(to_json(current)) if current else None,
                "events": {"rows": _json_rows(events)}}

    detail = store_or_service(api, local=local, remote=lambda service: service.get(f"/v1/alerts/{incident_id}"))
    rows = detail["events"]["rows"]
    console = _console()
    for row in rows:
        console.print(f"{_time(row['at'])} {row['kind']}: {row['to_state']} — {row['summary']}")
    last = rows[-1] if rows else {}
    about = json.loads((detail.get("incident") or last).get("detail") or "{}")
    members = about.get("members") or []
    if len(members) > 1:
        console.print(f"[bold]One cause, {len(members)} scopes:[/bold]\n" + members_text(members, last.get("unit"), 50))
    onset = f" (looked up around the onset, {about['onset'][:16].replace('T', ' ')} UTC)" if about.get("onset") else ""
    console.print(f"[bold]Probable cause{onset}:[/bold] {last.get('cause') or '—'}\n"
                  f"[bold]Next step:[/bold] {last.get('next_step') or '—'}")
    console.print(f"[bold]Re-notification:[/bold] {backoff_text(settings().signals.renotify_backoff_min)}")


@alerts_app.command("ack")
def ack(incident_id: str, by: Annotated[str, typer.Option(help="Who takes it.")], api: ApiOption = None) -> None:
    """Acknowledge an open incident: no more re-notifications until its state changes."""
    from llmledger.errors import UserError

    def local(wh: Any, config: Any) -> dict[str, Any]:
        from alerts.commands import acknowledge_incident
        from alerts.errors import UnknownIncident

        try:
            incident = acknowledge_incident(wh, config, incident_id, by=by)
        except UnknownIncident as err:
            raise UserError(str(err), "`llmledger alerts list` shows the open ones") from err
        return {"incident_id": incident.incident_id, "state": incident.state.value, "acked_by": incident.acked_by}

    acked = store_or_service(api, local=local, remote=lambda service: service.post(
        f"/v1/alerts/{incident_id}/ack", {"by": by}))
    _console().print(f"acknowledged {acked['incident_id']} ({acked['state']}) by {acked['acked_by']}: "
                     "no re-notifications until its state changes")


@alerts_app.command("silence")
def silence_cmd(
    for_: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    by: Annotated[str, typer.Option(help="Who silences.")],
    signal: Annotated[str, typer.Option(help="Signal to silence (default: every signal).")] = "",
    scope: Annotated[list[str] | None, typer.Option(help="key=glob, repeatable (e.g. route=nightly-*).")] = None,
    reason: Annotated[str, typer.Option()] = "",
    api: ApiOption = None,
) -> None:
    """Silence matching alerts for a while (they are still recorded)."""
    duration = _duration(for_)
    if any("=" not in item for item in scope or []):
        raise typer.BadParameter("use key=glob, e.g. route=nightly-*", param_hint="--scope")
    matchers = dict(item.split("=", 1) for item in (scope or []))

    def local(wh: Any, _: Any) -> dict[str, Any]:
        from alerts.commands import silence

        now = datetime.now(UTC)
        silence_id = silence(wh, signal=signal, matchers=matchers, duration=duration, by=by, reason=reason, now=now)
        return {"silence_id": silence_id, "matchers": matchers, "ends_at": (now + duration).isoformat()}

    made = store_or_service(api, local=local, remote=lambda service: service.post("/v1/silences", {
        "minutes": int(duration.total_seconds() // 60), "by": by, "signal": signal, "scope": matchers,
        "reason": reason}))
    what = signal or "every signal"
    where = ", ".join(f"{k}={v}" for k, v in made["matchers"].items()) or "every scope"
    _console().print(f"silence {made['silence_id']}: {what} for {where} until {_time(made['ends_at'])} UTC")


@alerts_app.command("silences")
def silences(all_: Annotated[bool, typer.Option("--all", help="Include ended silences.")] = False,
             api: ApiOption = None) -> None:
    """Silences in force (or all), with who set them and why."""
    from rich.table import Column, Table

    def local(wh: Any, _: Any) -> list[dict[str, Any]]:
        from warehouse.queries import alerts as queries

        return _json_rows(queries.silences(wh, active_at=None if all_ else datetime.now(UTC)))

    rows = store_or_service(api, local=local, remote=lambda service: service.rows(
        "/v1/silences", active="false" if all_ else "true"))
    table = Table(Column("silence", no_wrap=True), "signal", "matchers", "from", "until", "by", "reason")
    for row in rows:
        table.add_row(row["silence_id"], row["signal"] or "(every signal)", _pairs(row["matchers"]),
                      _time(row["starts_at"]), _time(row["ends_at"]), row["created_by"], row["reason"] or "")
    _console().print(table)


@alerts_app.command("unsilence")
def unsilence(silence_id: str, api: ApiOption = None) -> None:
    """Lift a silence now."""
    from llmledger.errors import UserError

    def local(wh: Any, _: Any) -> None:
        from alerts.commands import lift_silence

        if not lift_silence(wh, silence_id):
            raise UserError(f"no silence {silence_id!r}", "`llmledger alerts silences` shows them")

    store_or_service(api, local=local, remote=lambda service: service.delete(f"/v1/silences/{silence_id}"))
    _console().print(f"lifted silence {silence_id}")


@alerts_app.command("deliver")
def deliver(api: ApiOption = None) -> None:
    """Deliver due notifications now (Slack when configured, else the log)."""
    report = perform("alerts.deliver", api)
    _console().print(f"sent {report['sent']}, logged {report['logged']}, retrying {report['retried']}, "
                     f"failed {report['failed']}, waiting {report['waiting']}")


@alerts_app.command("retry")
def retry(api: ApiOption = None) -> None:
    """Re-queue notifications that failed permanently (after fixing the token or channel)."""
    _console().print(f"re-queued {perform('alerts.retry', api)['requeued']} notification(s)")
