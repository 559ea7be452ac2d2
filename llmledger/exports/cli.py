"""`llmledger export focus` (FOCUS 1.2 cost rows) and `llmledger export calls` (Parquet): written
from the store, or downloaded from the service while it holds the store (`llmledger.dispatch`;
`GET /v1/export/focus`, `GET /v1/export/calls`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from llmledger.dispatch import ApiOption, store_or_service

export_app = typer.Typer(help="Export the record in outside formats (FOCUS 1.2).", no_args_is_help=True)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _filters(filter_: list[str] | None, project: str | None) -> list[str]:
    return [*(filter_ or []), *([f"project:{project}"] if project else [])]


@export_app.command("focus")
def export_focus(
    since: Annotated[str, typer.Option(help="Range start, ISO 8601 (naive = UTC).")],
    until: Annotated[str, typer.Option(help="Range end, exclusive.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="File to write (default focus_<since>_<until>.<format>).")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    api: ApiOption = None,
) -> None:
    """FOCUS 1.2 cost rows of [since, until): per hour × model × attribution set, plus GPU node-hours."""
    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("csv or parquet", param_hint="--format")
    start, end = _instant(since), _instant(until)
    if end <= start:
        raise typer.BadParameter("must be after --since", param_hint="--until")
    target = out or Path(f"focus_{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}.{fmt}")

    def local(wh: Any, settings: Any) -> None:
        from llmledger.exports import focus
        from warehouse.queries.scope import Scope

        rows = focus.focus_frame(wh, settings, Scope.of(project) if project else Scope.all(), start, end)
        problems = focus.check(rows)
        if problems:
            raise typer.Exit(f"export breaks FOCUS 1.2: {problems}")  # a defect of ours; never written
        focus.write(rows, target, fmt)

    store_or_service(api, local=local, remote=lambda service: service.download(
        "/v1/export/focus", target, start=start, end=end, format=fmt, filter=_filters(None, project)))
    rows, billed = _focus_totals(target, fmt)
    typer.echo(f"{rows} FOCUS rows, BilledCost {billed} USD -> {target}")


def _focus_totals(path: Path, fmt: str) -> tuple[int, Decimal]:
    """Rows and BilledCost of a written export (exact: summed as decimals)."""
    import polars as pl

    if fmt == "parquet":
        frame = pl.read_parquet(path, columns=["BilledCost"])
        return frame.height, Decimal(str(frame["BilledCost"].sum() or 0)) if frame.height else Decimal(0)
    frame = pl.read_csv(path, columns=["BilledCost"], schema_overrides={"BilledCost": pl.String})
    return frame.height, sum((Decimal(v) for v in frame["BilledCost"].drop_nulls()), Decimal(0))


@export_app.command("calls")
def export_calls(
    since: Annotated[str, typer.Option(help="Range start, ISO 8601 (naive = UTC).")],
    until: Annotated[str, typer.Option(help="Range end, exclusive.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="dimension:value or tag.key:value, "
                                                       "as the read API's `filter` (repeat for more).")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Calls per read (bounds memory).")] = 200_000,
    api: ApiOption = None,
) -> None:
    """Every stored column of the calls in [since, until), streamed to Parquet in bounded chunks."""
    start, end = _instant(since), _instant(until)
    if end <= start:
        raise typer.BadParameter("must be after --since", param_hint="--until")

    def local(wh: Any, _: Any) -> None:
        from llmledger.exports.calls import export_calls as run
        from llmledger.service.models import FilterQuery
        from warehouse.queries.scope import Scope

        try:
            filters = FilterQuery(filter=filter_ or []).filters()
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--filter") from None
        run(wh, Scope.of(project) if project else Scope.all(), start, end, out, filters, chunk_rows=chunk_rows)

    store_or_service(api, local=local, remote=lambda service: service.download(
        "/v1/export/calls", out, start=start, end=end, filter=_filters(filter_, project), chunk_rows=chunk_rows))
    import pyarrow.parquet as pq

    typer.echo(f"{pq.ParquetFile(out).metadata.num_rows} calls -> {out}")
