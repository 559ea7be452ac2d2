"""`llmledger jobs …` and `llmledger rollups …`: run a scheduled job once (cron users), see job
history, repair or rebuild the rollups."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llmledger.settings import get_settings

jobs_app = typer.Typer(help="Scheduled jobs: run one now, see recent runs.", no_args_is_help=True)
rollups_app = typer.Typer(help="The hourly attribution rollups.", no_args_is_help=True)
console = Console()


@jobs_app.command("run")
def run(name: Annotated[str, typer.Argument(help="e.g. signals.evaluate, alerts.deliver, rollups.refresh")]) -> None:
    """Run one job now and record it (exit 1 when it fails)."""
    from llmledger.scheduler import run_job_once

    try:
        result = run_job_once(name, settings=get_settings())
    except KeyError as err:
        console.print(f"[red]{err.args[0]}[/red]")
        raise typer.Exit(2) from err
    console.print(f"{result.job}: {result.state} in {result.duration_ms} ms {json.dumps(result.detail, default=str)}")
    if result.state != "ok":
        console.print(f"[red]{result.error}[/red]")
        raise typer.Exit(1)


@jobs_app.command("list")
def list_jobs() -> None:
    """Every job, its trigger, and its last run."""
    from llmledger.runtime import open_warehouse
    from llmledger.scheduler import job_registry
    from warehouse.queries.jobs import last_runs
    from warehouse.queries.scope import Scope

    settings = get_settings()
    with open_warehouse(settings) as wh:
        last = {r["job"]: r for r in last_runs(wh, Scope.all()).iter_rows(named=True)}
    table = Table("job", "trigger", "last run", "state", "ms", "what it does")
    for name, spec in job_registry().items():
        run = last.get(name)
        table.add_row(name, str(spec.trigger(settings.scheduler)) if spec.func else "(empty slot)",
                      f"{run['last_started_at']:%m-%d %H:%M:%S}" if run else "—", run["state"] if run else "",
                      str(run["duration_ms"]) if run else "", spec.description)
    console.print(table)


@jobs_app.command("history")
def history(job: Annotated[str | None, typer.Option()] = None,
            failed: Annotated[bool, typer.Option(help="Failures only.")] = False) -> None:
    """Recent runs, newest first."""
    from llmledger.runtime import open_warehouse
    from warehouse.queries.jobs import job_runs
    from warehouse.queries.scope import Scope

    with open_warehouse(get_settings()) as wh:
        frame = job_runs(wh, Scope.all(), job=job, states=["failed"] if failed else None)
    for row in frame.iter_rows(named=True):
        console.print(f"{row['started_at']:%Y-%m-%d %H:%M:%S} {row['job']} {row['trigger']} {row['state']} "
                      f"{row['duration_ms']} ms {row['error'].splitlines()[0] if row['error'] else ''}")


@rollups_app.command("refresh")
def refresh() -> None:
    """Rebuild the rollup months that disagree with raw calls."""
    from llmledger.runtime import open_warehouse
    from warehouse.rollups import refresh_rollups

    with open_warehouse(get_settings()) as wh:
        report = refresh_rollups(wh)
    console.print(f"checked {report.checked} month(s); rebuilt {', '.join(f'{t}/{p}' for t, p in report.rebuilt) or 'none'}")


@rollups_app.command("rebuild")
def rebuild(partition: Annotated[str, typer.Argument(help="Month as YYYYMM.")]) -> None:
    """Recompute one month of every rollup from raw calls."""
    from llmledger.runtime import open_warehouse
    from warehouse.rollups import rebuild_rollups

    with open_warehouse(get_settings()) as wh:
        rebuild_rollups(wh, partition)
    console.print(f"rebuilt {partition}")
