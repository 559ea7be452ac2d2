"""The `llmledger` command line: batch commands for cron users and the newcomer's first run.

Every command reads settings through `get_settings()` (TOML file + `LLMLEDGER_*` environment).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alerts.cli import alerts_app, signals_app
from advisor.cli import routing_app
from alerts.report.cli import report_app
from collectors.cli import collect, collectors_app, import_app
from llmledger.exports.cli import export_app
from llmledger.jobs_cli import jobs_app, rollups_app
from llmledger.reconcile_cli import reconcile as reconcile_command
from llmledger.settings import get_settings

app = typer.Typer(help="llmledger: cost and latency attribution for LLM traffic.", no_args_is_help=True)
prices_app = typer.Typer(help="The price table (genai-prices plus your overrides).", no_args_is_help=True)
app.add_typer(prices_app, name="prices")
app.command("collect")(collect)
app.add_typer(collectors_app, name="collectors")
app.add_typer(import_app, name="import")
app.add_typer(signals_app, name="signals")
app.add_typer(alerts_app, name="alerts")
app.add_typer(jobs_app, name="jobs")
app.add_typer(rollups_app, name="rollups")
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.add_typer(routing_app, name="routing")
app.command("reconcile")(reconcile_command)
console = Console()


def _utc_day(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@app.command()
def migrate() -> None:
    """Apply pending warehouse migrations."""
    from warehouse.client import Warehouse
    from warehouse.migrate import migrate as run_migrations

    with Warehouse.from_settings(get_settings()) as wh:
        applied = run_migrations(wh)
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'already up to date'}")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="JSONL / CSV / Parquet files of canonical call records.")],
    source: Annotated[str | None, typer.Option(help="Source name recorded on each call (default: file name).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv or parquet (default: from the name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Ingest files into the warehouse: normalise, validate, price, deduplicate, write."""
    from ingest.pipeline import Pipeline
    from ingest.readers import FileFormat
    from llmledger.runtime import open_warehouse

    settings = get_settings()
    failed = False
    with open_warehouse(settings) as wh, Pipeline(wh, settings) as pipeline:
        for path in files:
            if not path.is_file():
                console.print(f"[red]no such file: {path}[/red]")
                failed = True
                continue
            with _progress() as progress:
                task = progress.add_task(f"ingest {path.name}", total=None)
                summary = pipeline.ingest_file(
                    path,
                    source=source,
                    fmt=FileFormat(fmt) if fmt else None,
                    progress=lambda n, task=task: progress.advance(task, n),
                )
            if as_json:
                print(json.dumps(summary.as_dict()))
            else:
                console.print(
                    f"{path.name}: {summary.read:,} read, [green]{summary.written:,} written[/green], "
                    f"{summary.duplicates:,} duplicates, [red]{summary.dead:,} dead-lettered[/red] "
                    f"in {summary.seconds:.1f}s"
                )
                for reason, count in summary.dead_by_reason.most_common():
                    console.print(f"  dead letter [red]{reason}[/red]: {count:,}")
                for (provider, model), count in summary.unpriced.most_common():
                    console.print(f"  [yellow]unpriced[/yellow] {provider}/{model}: {count:,} calls (kept, priced 0)")
                if summary.unknown_fields:
                    console.print(f"  ignored unknown fields: {', '.join(sorted(summary.unknown_fields))}")
    if failed:
        raise typer.Exit(1)


@prices_app.command("load")
def prices_load() -> None:
    """Rebuild the price table from genai-prices and the overrides in settings."""
    from ingest.pricing import load_prices
    from llmledger.runtime import open_warehouse

    settings = get_settings()
    with open_warehouse(settings) as wh:
        result = load_prices(wh, settings.pricing)
    console.print(
        f"loaded {result.rows:,} price cells for {result.models:,} models ({result.overrides} overrides); "
        + ("prices changed — run `llmledger reprice --since …` to update stored costs" if result.changed else "no change")
    )


@app.command()
def reprice(
    since: Annotated[str, typer.Option(help="Start of the range (ISO date or time, UTC).")],
    until: Annotated[str | None, typer.Option(help="End of the range (exclusive); default now.")] = None,
    api: Annotated[str | None, typer.Option("--api", help="Service URL (default: automatic when the service "
                                            "holds the store; admin key in LLMLEDGER_API_KEY).")] = None,
) -> None:
    """Reload prices and recompute the stored costs of calls in a time range (and the rollups)."""
    from llmledger.service.cli import _api_call, _service_url
    from warehouse.errors import StoreLocked

    settings = get_settings()
    start = _utc_day(since)
    end = _utc_day(until) if until else datetime.now(UTC)
    body = {"since": start.isoformat(), "until": end.isoformat()}
    if api is not None:
        result = _api_call(api, "POST", "/v1/admin/reprice", body)
    else:
        try:
            result = _reprice_locally(settings, start, end)
        except StoreLocked:
            console.print("the service holds the store: re-pricing through its admin API")
            result = _api_call(_service_url(settings), "POST", "/v1/admin/reprice", body)
    console.print(
        f"repriced {result['calls']:,} calls in {len(result['months'])} month(s): "
        f"${Decimal(result['cost_before_usd']):,.6f} → ${Decimal(result['cost_after_usd']):,.6f} "
        f"(Δ ${Decimal(result['cost_after_usd']) - Decimal(result['cost_before_usd']):,.6f}); "
        f"unpriced {result['unpriced_before']:,} → {result['unpriced_after']:,}"
    )
    for old, new in result["renamed_models"].items():
        console.print(f"  model {old} → {new}")


def _reprice_locally(settings: object, start: datetime, end: datetime) -> dict[str, object]:
    from ingest.reprice import reprice_with_settings
    from llmledger.runtime import open_warehouse

    with open_warehouse(settings) as wh:  # type: ignore[arg-type]
        load, report = reprice_with_settings(wh, settings.pricing, since=start, until=end)  # type: ignore[attr-defined]
    return {
        "calls": report.calls, "months": report.partitions, "cost_before_usd": str(report.cost_before_usd),
        "cost_after_usd": str(report.cost_after_usd), "unpriced_before": report.unpriced_before,
        "unpriced_after": report.unpriced_after, "renamed_models": report.renamed_models,
        "price_cells": load.rows,
    }


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder for calls.jsonl, tool_runs.jsonl, ground_truth.json.")] = Path(
        "simulated"
    ),
    days: Annotated[int, typer.Option(min=1)] = 30,
    calls_per_day: Annotated[int, typer.Option(min=1)] = 30_000,
    seed: Annotated[int, typer.Option()] = 7,
    start: Annotated[str | None, typer.Option(help="First day (UTC); default: `days` before today.")] = None,
    incidents: Annotated[bool, typer.Option(help="Inject each incident of design.md §5.")] = True,
) -> None:
    """Write simulated multi-provider traffic (deterministic for a seed) with its ground truth."""
    from llmledger.simulator import SimulationConfig, write_simulation

    first = _utc_day(start) if start else _days_ago(days)
    now = datetime.now(UTC)
    config = SimulationConfig(
        start=first,
        days=days,
        calls_per_day=calls_per_day,
        seed=seed,
        incidents=incidents,
        end_at=now if first + timedelta(days=days) > now else None,
    )
    paths = write_simulation(config, out)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


@app.command()
def summary(
    days: Annotated[int, typer.Option(min=1, help="Summarise the last N days.")] = 30,
) -> None:
    """Print the cost-attribution summary of the last N days."""
    from llmledger.runtime import open_warehouse
    from llmledger.summary import build_summary, render_summary

    end = datetime.now(UTC)
    with open_warehouse(get_settings()) as wh:
        render_summary(build_summary(wh, end - timedelta(days=days), end), console)


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1)] = 30,
    calls_per_day: Annotated[int, typer.Option(min=1)] = 30_000,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """First run: migrate, simulate a month of traffic with incidents, ingest it, print the summary."""
    from llmledger.demo import seed_demo
    from llmledger.runtime import open_warehouse
    from llmledger.summary import build_summary, render_summary

    settings = get_settings()
    with open_warehouse(settings) as wh:
        with _progress() as progress:
            result = seed_demo(wh, settings, days=days, calls_per_day=calls_per_day, seed=seed, progress=progress)
        console.print(
            f"ingested {result.written:,} simulated calls ({result.duplicates:,} already present) and "
            f"{result.tool_runs:,} tool runs, {result.node_samples:,} self-hosted node samples, "
            f"{result.incidents:,} alert incidents; ground truth in {result.ground_truth_path}"
        )
        render_summary(build_summary(wh, result.start, result.end), console)


def _days_ago(days: int) -> datetime:
    today = datetime.combine(date.today(), time(0), tzinfo=UTC)
    return today - timedelta(days=days - 1)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _add_service_commands() -> None:
    from llmledger.service.cli import app as service_app

    app.add_typer(service_app)  # no name: `up` and `keys` join the top level


_add_service_commands()


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
