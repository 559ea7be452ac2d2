"""`llmledger jobs …` and `llmledger rollups …`: run a scheduled job once (cron users), see job
history, repair or rebuild the rollups — on the store, or through the service while it holds it
(`llmledger.dispatch`; a job then runs on the service's scheduler)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from llmledger.dispatch import ApiOption, perform

jobs_app = typer.Typer(help="Scheduled jobs: run one now, see recent runs.", no_args_is_help=True)
rollups_app = typer.Typer(help="The hourly attribution rollups.", no_args_is_help=True)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _time(value: Any, fmt: str) -> str:
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(UTC).strftime(fmt)


@jobs_app.command("run")
def run(name: Annotated[str, typer.Argument(help="e.g. signals.evaluate, alerts.deliver, rollups.refresh")],
        api: ApiOption = None) -> None:
    """Run one job now and record it (exit 1 when it fails)."""
    from llmledger.progress import bars

    with bars() as feed:
        result = perform("jobs.run", api, feed=feed, job=name)
    console = _console()
    console.print(f"{result['job']}: {result['state']} in {result['duration_ms']} ms "
                  f"{json.dumps(result['detail'], default=str)}", highlight=False, markup=False)
    if result["state"] != "ok":
        console.print(f"[red]{result['error'].splitlines()[0] if result['error'] else 'failed'}[/red]")
        raise typer.Exit(1)


@jobs_app.command("list")
def list_jobs(api: ApiOption = None) -> None:
    """Every job, its trigger, and its last run."""
    from rich.table import Column, Table

    table = Table(Column("job", no_wrap=True), "when", "last run", "state", "ms", "what it does")
    for row in perform("jobs.list", api):
        table.add_row(row["job"], row["trigger"], _time(row["last_started_at"], "%m-%d %H:%M:%S"), row["state"] or "",
                      "" if row["duration_ms"] is None else str(row["duration_ms"]), row["description"])
    _console().print(table)


@jobs_app.command("history")
def history(job: Annotated[str | None, typer.Option()] = None,
            failed: Annotated[bool, typer.Option(help="Failures only.")] = False,
            api: ApiOption = None) -> None:
    """Recent runs, newest first."""
    console = _console()
    rows = perform("jobs.history", api, job=job, failed=failed)
    for row in rows:
        error = row["error"].splitlines()[0] if row["error"] else ""
        console.print(f"{_time(row['started_at'], '%Y-%m-%d %H:%M:%S')} {row['job']} {row['trigger']} {row['state']} "
                      f"{row['duration_ms']} ms {error}", highlight=False, markup=False)
    if not rows:
        console.print("no job runs" + (" failed" if failed else "") + " yet")


@rollups_app.command("refresh")
def refresh(api: ApiOption = None) -> None:
    """Rebuild the rollup months that disagree with raw calls."""
    report = perform("rollups.refresh", api)
    _console().print(f"checked {report['checked']} month(s); rebuilt {', '.join(report['rebuilt']) or 'none'}")


@rollups_app.command("rebuild")
def rebuild(partition: Annotated[str, typer.Argument(help="Month as YYYYMM.")], api: ApiOption = None) -> None:
    """Recompute one month of every rollup from raw calls."""
    perform("rollups.rebuild", api, partition=partition)
    _console().print(f"rebuilt {partition}")
