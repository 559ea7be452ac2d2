"""The `llmledger` command line: batch commands for cron users and the newcomer's first run.

Every command reads settings through `get_settings()` (TOML file + `LLMLEDGER_*` environment).
While `llmledger up` holds the embedded store, commands go through its API by themselves
(`llmledger.dispatch`); `--api URL` sends them to any service. Modules are imported inside the
commands, so `llmledger --help` and every command start fast. A failure is told in one or two
lines; `llmledger --debug …` shows the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from llmledger.routing_cli import routing_app
from llmledger.alerts_cli import alerts_app, signals_app
from llmledger.collectors_cli import collect, collectors_app, import_app
from llmledger.dispatch import ApiOption, perform
from llmledger.exports.cli import export_app
from llmledger.jobs_cli import jobs_app, rollups_app
from llmledger.reconcile_cli import reconcile as reconcile_command
from llmledger.report_cli import report_app

app = typer.Typer(help="llmledger: cost and latency attribution for LLM traffic.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
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
DEBUG_ENV = "LLMLEDGER_DEBUG"


def _console() -> Any:
    from rich.console import Console

    return Console()


@app.callback()
def root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures and debug logs.")]
         = False) -> None:
    """llmledger: cost and latency attribution for LLM traffic."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


def _utc_day(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time (e.g. 2025-11-01 or 2025-11-01T12:00)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@app.command()
def migrate(api: ApiOption = None) -> None:
    """Apply pending warehouse migrations (a running service applied them when it started)."""
    from llmledger.dispatch import store_or_service

    def local(wh: Any, _: Any) -> dict[str, Any]:
        from warehouse.migrate import migrate as run_migrations

        return {"applied_now": run_migrations(wh)}

    result = store_or_service(api, local=local, remote=lambda service: {
        "service": service.url, **service.get("/v1/admin/migrations")})
    console = _console()
    if "applied_now" in result:
        names = result["applied_now"]
        console.print(f"applied {len(names)} migration(s): {', '.join(names) or 'already up to date'}")
    elif result["pending"]:
        console.print(f"the service at {result['service']} has {len(result['pending'])} pending migration(s) "
                      f"({', '.join(result['pending'])}): restart it to apply them")
    else:
        applied = result["applied"]
        console.print(f"up to date: the service at {result['service']} migrated the store when it started "
                      f"({len(applied)} migrations, the latest {applied[-1] if applied else 'none'})")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="JSONL / CSV / Parquet files of canonical call records.")],
    source: Annotated[str | None, typer.Option(help="Source name recorded on each call (default: file name).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv or parquet (default: from the name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    api: ApiOption = None,
) -> None:
    """Ingest files into the warehouse: normalise, validate, price, deduplicate, write."""
    from llmledger.progress import bars

    console = _console()
    failed = False
    for path in files:
        if not path.is_file():
            console.print(f"[red]no such file: {path}[/red]")
            failed = True
            continue
        with bars() as feed:
            summary = perform("ingest.file", api, feed=feed, upload=path, name=path.name, source=source, format=fmt)
        if as_json:
            print(json.dumps(summary))
            continue
        console.print(
            f"{path.name}: {summary['read']:,} read, [green]{summary['written']:,} written[/green], "
            f"{summary['duplicates']:,} duplicates, [red]{summary['dead_lettered']:,} dead-lettered[/red] "
            f"in {summary['seconds']:.1f}s"
        )
        for reason, count in sorted(summary["dead_by_reason"].items(), key=lambda kv: -kv[1]):
            console.print(f"  dead letter [red]{reason}[/red]: {count:,}")
        for model, count in sorted(summary["unpriced_models"].items(), key=lambda kv: -kv[1]):
            console.print(f"  [yellow]unpriced[/yellow] {model}: {count:,} calls (kept, priced 0)")
        if summary["unknown_fields"]:
            console.print(f"  ignored unknown fields: {', '.join(summary['unknown_fields'])}")
    if failed:
        raise typer.Exit(1)


@prices_app.command("load")
def prices_load(api: ApiOption = None) -> None:
    """Rebuild the price table from genai-prices and the overrides in settings."""
    result = perform("prices.load", api)
    _console().print(
        f"loaded {result['price_cells']:,} price cells for {result['models']:,} models ({result['overrides']} "
        "overrides); " + ("prices changed — run `llmledger reprice --since …` to update stored costs"
                          if result["changed"] else "no change")
    )


@app.command()
def reprice(
    since: Annotated[str, typer.Option(help="Start of the range (ISO date or time, UTC).")],
    until: Annotated[str | None, typer.Option(help="End of the range (exclusive); default now.")] = None,
    api: ApiOption = None,
) -> None:
    """Reload prices and recompute the stored costs of calls in a time range (and the rollups)."""
    from llmledger.progress import bars

    start = _utc_day(since)
    end = _utc_day(until) if until else datetime.now(UTC)
    with bars() as feed:
        result = perform("prices.reprice", api, feed=feed, since=start, until=end)
    console = _console()
    console.print(
        f"repriced {result['calls']:,} calls in {len(result['months'])} month(s): "
        f"${Decimal(result['cost_before_usd']):,.6f} → ${Decimal(result['cost_after_usd']):,.6f} "
        f"(Δ ${Decimal(result['cost_after_usd']) - Decimal(result['cost_before_usd']):,.6f}); "
        f"unpriced {result['unpriced_before']:,} → {result['unpriced_after']:,}"
    )
    for old, new in result["renamed_models"].items():
        console.print(f"  model {old} → {new}")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder for calls.jsonl, tool_runs.jsonl, ground_truth.json.")] = Path(
        "simulated"
    ),
    days: Annotated[int, typer.Option(min=1)] = 30,
    calls_per_day: Annotated[int, typer.Option(min=100)] = 30_000,
    seed: Annotated[int, typer.Option()] = 7,
    start: Annotated[str | None, typer.Option(help="First day (UTC); default: `days` before today.")] = None,
    incidents: Annotated[bool, typer.Option(help="Inject each silent-failure incident the signals detect.")] = True,
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
    _console().print(f"wrote {', '.join(str(p) for p in paths)}")


@app.command()
def summary(
    days: Annotated[int, typer.Option(min=1, help="Summarise the last N days.")] = 30,
    api: ApiOption = None,
) -> None:
    """Print the cost-attribution summary of the last N days."""
    from llmledger.summary import Summary, render_summary

    render_summary(Summary.from_dict(perform("summary", api, days=days)), _console())


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1)] = 30,
    calls_per_day: Annotated[int, typer.Option(min=100)] = 30_000,
    seed: Annotated[int, typer.Option()] = 7,
    api: ApiOption = None,
) -> None:
    """First run: migrate, simulate a month of traffic with incidents, ingest it, print the summary."""
    from llmledger.progress import bars
    from llmledger.summary import Summary, render_summary

    with bars() as feed:
        result = perform("demo.seed", api, feed=feed, days=days, calls_per_day=calls_per_day, seed=seed)
    console = _console()
    console.print(
        f"ingested {result['written']:,} simulated calls ({result['duplicates']:,} already present) and "
        f"{result['tool_runs']:,} tool runs, {result['node_samples']:,} self-hosted node samples, "
        f"{result['incidents']:,} alert incidents; ground truth in {result['ground_truth_path']}"
    )
    render_summary(Summary.from_dict(perform("summary", api, start=result["start"], end=result["end"])), console)


def _days_ago(days: int) -> datetime:
    today = datetime.combine(date.today(), time(0), tzinfo=UTC)
    return today - timedelta(days=days - 1)


def _add_service_commands() -> None:
    from llmledger.service.cli import app as service_app

    app.add_typer(service_app)  # no name: `up`, `dashboard` and `keys` join the top level


_add_service_commands()


def explain(err: BaseException) -> tuple[list[str], int]:
    """What to tell the user about a failure (one or two lines) and the exit status."""
    from llmledger.errors import UserError
    from warehouse.errors import StoreLocked, WarehouseError

    if isinstance(err, UserError):
        return err.lines(), err.code
    if isinstance(err, StoreLocked):
        return [str(err)], 1
    if isinstance(err, WarehouseError):
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return [f"{err.user_message}: {first}" if first else err.user_message,
                "check [warehouse] in llmledger.toml and LLMLEDGER_WAREHOUSE__* (run with --debug for more)"], 1
    if type(err).__name__ == "ValidationError" and type(err).__module__.startswith("pydantic"):
        problem = err.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in problem.get("loc", ()))
        return [f"invalid settings: {where}: {problem.get('msg')}",
                "fix llmledger.toml (or LLMLEDGER_CONFIG's file) or the LLMLEDGER_* variable"], 2
    if isinstance(err, OSError):
        return [str(err)], 1
    return [f"{type(err).__name__}: {err}",
            "this looks like a bug in llmledger: run again with --debug for the traceback and report it"], 1


def _fail(err: BaseException) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    lines, code = explain(err)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    errors.print(f"[red]error:[/red] {escape(lines[0])}")
    for line in lines[1:]:
        errors.print(f"  {line}", markup=False)
    sys.exit(code)


def main() -> None:
    """Console entry point: runs the command; a failure becomes one or two lines (`--debug`: the traceback)."""
    try:
        app(prog_name="llmledger")
    except Exception as err:  # noqa: BLE001 - every failure is explained, never dumped
        if os.environ.get(DEBUG_ENV):
            raise
        _fail(err)


if __name__ == "__main__":
    main()
