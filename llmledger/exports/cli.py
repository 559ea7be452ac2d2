"""`llmledger export focus` (FOCUS 1.2 cost rows) and `llmledger export calls` (Parquet) — opens the warehouse itself, like the other
batch commands (in embedded mode, while the service runs, use `GET /v1/export/focus`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

export_app = typer.Typer(help="Export the record in outside formats (FOCUS 1.2).", no_args_is_help=True)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@export_app.command("focus")
def export_focus(
    since: Annotated[str, typer.Option(help="Range start, ISO 8601 (naive = UTC).")],
    until: Annotated[str, typer.Option(help="Range end, exclusive.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="File to write (default focus_<since>_<until>.<format>).")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
) -> None:
    """FOCUS 1.2 cost rows of [since, until): per hour × model × attribution set, plus GPU node-hours."""
    from llmledger.exports import focus
    from llmledger.runtime import open_warehouse
    from llmledger.settings import get_settings
    from warehouse.queries.scope import Scope

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("csv or parquet", param_hint="--format")
    start, end = _instant(since), _instant(until)
    if end <= start:
        raise typer.BadParameter("must be after --since", param_hint="--until")
    settings = get_settings()
    target = out or Path(f"focus_{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}.{fmt}")
    with open_warehouse(settings) as wh:
        rows = focus.focus_frame(wh, settings, Scope.of(project) if project else Scope.all(), start, end)
    problems = focus.check(rows)
    if problems:
        raise typer.Exit(f"export breaks FOCUS 1.2: {problems}")  # a defect of ours; never written
    focus.write(rows, target, fmt)
    typer.echo(f"{rows.height} FOCUS rows, BilledCost {rows['BilledCost'].sum() if rows.height else 0} USD -> {target}")


@export_app.command("calls")
def export_calls(
    since: Annotated[str, typer.Option(help="Range start, ISO 8601 (naive = UTC).")],
    until: Annotated[str, typer.Option(help="Range end, exclusive.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="dimension:value or tag.key:value, "
                                                       "as the read API's `filter` (repeat for more).")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Calls per read (bounds memory).")] = 200_000,
) -> None:
    """Every stored column of the calls in [since, until), streamed to Parquet in bounded chunks."""
    from llmledger.exports.calls import export_calls as run
    from llmledger.runtime import open_warehouse
    from llmledger.service.models import FilterQuery
    from llmledger.settings import get_settings
    from warehouse.queries.scope import Scope

    start, end = _instant(since), _instant(until)
    if end <= start:
        raise typer.BadParameter("must be after --since", param_hint="--until")
    try:
        filters = FilterQuery(filter=filter_ or []).filters()
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--filter") from None
    with open_warehouse(get_settings()) as wh:
        rows = run(wh, Scope.of(project) if project else Scope.all(), start, end, out, filters, chunk_rows=chunk_rows)
    typer.echo(f"{rows} calls -> {out}")
