"""`llmledger report weekly [--week 2025-W45] [--team T] [--dry-run DIR] [--json]`: the weekly
report for cron users (the service's scheduler runs the same job). Exits 1 when a report failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

report_app = typer.Typer(help="The weekly cost report by e-mail.", no_args_is_help=True)
console = Console()


@report_app.command("weekly")
def weekly(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2025-W45 (default: the last complete week).")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's report.")] = None,
    dry_run: Annotated[Path | None, typer.Option("--dry-run", help="Write HTML, text, images, CSV and the .eml "
                                                 "under this folder instead of sending.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Send the week's reports to each team and the company-wide list (each at most once)."""
    from alerts.report.job import send_weekly_reports
    from alerts.report.week import Week
    from llmledger.runtime import open_warehouse
    from llmledger.settings import get_settings

    try:
        parsed = Week.parse(week) if week else None
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--week") from err
    with open_warehouse(get_settings()) as wh:
        summary = send_weekly_reports(get_settings(), wh, week=parsed, dry_run_dir=dry_run, team=team)
    if as_json:
        print(json.dumps(summary.as_dict()))
    else:
        if not summary.outcomes:
            console.print("no audience: set report.company and/or report.recipients (or use --dry-run)")
        for o in summary.outcomes:
            colour = {"sent": "green", "written": "green", "skipped": "dim", "failed": "red"}[o.status]
            detail = o.path or o.error or ", ".join(o.recipients)
            console.print(f"{summary.week.label} {o.audience}: [{colour}]{o.status}[/{colour}] {detail}")
    if summary.count("failed"):
        raise typer.Exit(1)
