"""`llmledger report weekly [--week 2025-W45] [--team T] [--dry-run DIR] [--json]`: the weekly
report for cron users (the service's scheduler runs the same job). Exits 1 when a report failed.
While the service holds the store the report is made there and a dry run's files come back here
(`llmledger.dispatch`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llmledger.dispatch import ApiOption, perform

report_app = typer.Typer(help="The weekly cost report by e-mail.", no_args_is_help=True)


@report_app.command("weekly")
def weekly(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2025-W45 (default: the last complete week).")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's report.")] = None,
    dry_run: Annotated[Path | None, typer.Option("--dry-run", help="Write HTML, text, images, CSV and the .eml "
                                                 "under this folder instead of sending.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    api: ApiOption = None,
) -> None:
    """Send the week's reports to each team and the company-wide list (each at most once)."""
    from rich.console import Console

    from alerts.report.week import Week
    from llmledger.operations.reports import unpack
    from llmledger.progress import bars

    if week is not None:
        try:
            week = Week.parse(week).label
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--week") from err
    with bars() as feed:
        summary = perform("report.weekly", api, feed=feed, week=week, team=team, dry_run=dry_run is not None)
    if dry_run is not None:
        unpack(summary, dry_run)
    if as_json:
        print(json.dumps(summary))
    else:
        console = Console()
        if not summary["outcomes"]:
            console.print("no audience: set report.company and/or report.recipients (or use --dry-run)")
        for o in summary["outcomes"]:
            colour = {"sent": "green", "written": "green", "skipped": "dim", "failed": "red"}[o["status"]]
            detail = o.get("path") or o.get("error") or ", ".join(o["recipients"])
            console.print(f"{summary['week']} {o['audience']}: [{colour}]{o['status']}[/{colour}] {detail}")
    if summary["failed"]:
        raise typer.Exit(1)
