"""Command line for collectors: `llmledger collect`, `llmledger collectors …`, `llmledger import …`.

This is app shell, added to `llmledger.cli`: each command runs its operation (`llmledger.operations`:
`collectors.runner`, the runner the scheduler also calls) on the store, or through the service while
it holds the store (`llmledger.dispatch`); heavy imports happen inside commands so the CLI starts
fast. Exit status 1 when any collector or import failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmledger.dispatch import ApiOption, perform, store_or_service

collectors_app = typer.Typer(help="Collectors: list them, see their status, reset a cursor.", no_args_is_help=True)
import_app = typer.Typer(help="Import gateway logs and nvidia-smi output from files.", no_args_is_help=True)
console = Console()

Since = Annotated[str | None, typer.Option(help="Back-fill from this UTC time (ISO date or time) instead of the cursor.")]
Until = Annotated[str | None, typer.Option(help="End of the window (exclusive, UTC); default now.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Format = Annotated[str, typer.Option("--format", help="auto, jsonl, json, csv or parquet.")]
Source = Annotated[str | None, typer.Option(help="Source name recorded on each call (default: the importer's name).")]


def _utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _print(reports: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(reports, indent=2))
    for r in reports if not as_json else []:
        ok = r["status"] == "ok"
        colour = "green" if ok else "red"
        line = (f"[{colour}]{r['collector']}: {r['status']}[/{colour}] — {r['written']:,} written, "
                f"{r['duplicates']:,} already stored, {r['dead_lettered']:,} dead-lettered in {r['batches']:,} batches")
        if r["data_through"]:
            line += f"; complete through {r['data_through']}"
        console.print(line)
        for note in r["notes"]:
            console.print(f"  note: {note}")
        if r["error"]:
            console.print(f"  [red]{r['error_kind']}: {r['error']}[/red]")
    if any(r["status"] != "ok" for r in reports):
        raise typer.Exit(1)


def collect(
    name: Annotated[str | None, typer.Argument(help="One collector (default: every enabled one).")] = None,
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
    api: ApiOption = None,
) -> None:
    """Run pull and scrape collectors once (provider exports, vLLM, DCGM); --since back-fills a range."""
    from llmledger.progress import bars

    with bars() as feed:
        reports = perform("collectors.run", api, feed=feed, name=name, since=_utc(since), until=_utc(until))
    if not reports and name is None:
        console.print("no collector is enabled: set collectors.<name>.enabled = true in llmledger.toml")
    _print(reports, as_json)


@collectors_app.command("list")
def list_collectors(as_json: AsJson = False, api: ApiOption = None) -> None:
    """Registered collectors, what they produce and whether settings enable them (the running service's)."""
    rows = perform("collectors.list", api)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "enabled", "outputs", "what")
    for row in rows:
        table.add_row(row["name"], row["kind"], "yes" if row["enabled"] else "", ", ".join(row["outputs"]), row["summary"])
    console.print(table)


@collectors_app.command("status")
def status(as_json: AsJson = False, api: ApiOption = None) -> None:
    """Each collector's last run, last success, lag and last error."""

    def local(wh: Any, _: Any) -> list[dict[str, Any]]:
        from collectors.runner import status_frame
        from llmledger.operations import to_json

        return json.loads(to_json(status_frame(wh).to_dicts()))

    rows = store_or_service(api, local=local, remote=lambda service: service.rows("/v1/collectors"))
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("collector", "last status", "last success", "lag", "runs", "errors", "last error")
    for row in rows:
        lag = "" if row["lag_s"] is None else f"{row['lag_s'] / 60:,.0f} min"
        table.add_row(row["collector"], row["last_status"], str(row["last_success_at"] or "never"), lag,
                      str(row["runs"]), str(row["errors"]), (row["last_error"] or "")[:80])
    console.print(table)


@collectors_app.command("reset")
def reset(name: Annotated[str, typer.Argument(help="Collector whose cursor to forget.")], api: ApiOption = None) -> None:
    """Forget a collector's cursor: its next run back-fills (re-fetched buckets replace, never add)."""
    perform("collectors.reset", api, name=name)
    console.print(f"{name}: cursor reset")


def _import(name: str, path: Path, as_json: bool, api: str | None, **config: Any) -> None:
    from llmledger.progress import bars

    with bars() as feed:
        report = perform("import.file", api, feed=feed, upload=path, importer=name, name=path.name, **config)
    _print([report], as_json)


FileArg = Annotated[Path, typer.Argument(help="The exported file.", exists=True, dir_okay=False)]


@import_app.command("litellm-spend-logs")
def import_litellm(
    path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False,
    prompt_includes_cache_writes: Annotated[bool, typer.Option(
        help="LiteLLM releases that added only cache reads to prompt_tokens need --no-prompt-includes-cache-writes."
    )] = True,
    api: ApiOption = None,
) -> None:
    """A LiteLLM_SpendLogs export (CSV, JSON, JSON lines)."""
    _import("litellm-spend-logs", path, as_json, api, format=fmt, source=source,
            prompt_includes_cache_writes=prompt_includes_cache_writes)


@import_app.command("helicone")
def import_helicone(path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False,
                    api: ApiOption = None) -> None:
    """A Helicone request export (JSON, JSON lines, CSV)."""
    _import("helicone", path, as_json, api, format=fmt, source=source)


@import_app.command("portkey")
def import_portkey(path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False,
                   api: ApiOption = None) -> None:
    """A Portkey log export (JSON lines; cost in cents)."""
    _import("portkey", path, as_json, api, format=fmt, source=source)


@import_app.command("openrouter")
def import_openrouter(path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False,
                      api: ApiOption = None) -> None:
    """OpenRouter generation records, one per line."""
    _import("openrouter", path, as_json, api, format=fmt, source=source)


@import_app.command("mapped")
def import_mapped(
    path: FileArg,
    mapping: Annotated[Path, typer.Option(help="TOML column mapping (see the README).", exists=True, dir_okay=False)],
    fmt: Format = "auto", source: Source = None, as_json: AsJson = False, api: ApiOption = None,
) -> None:
    """Any JSON lines / JSON / CSV / Parquet file of calls, through a TOML column mapping."""
    _import("mapped", path, as_json, api, format=fmt, source=source, mapping=mapping.read_text(encoding="utf-8"))


@import_app.command("nvidia-smi")
def import_nvidia_smi(
    path: FileArg,
    node: Annotated[str, typer.Option(help="The machine the output came from.")],
    fields: Annotated[str | None, typer.Option(help="The --query-gpu list, for noheader output.")] = None,
    timezone: Annotated[str, typer.Option(help="The machine's time zone (nvidia-smi prints local time).")] = "UTC",
    as_json: AsJson = False,
    api: ApiOption = None,
) -> None:
    """nvidia-smi --query-gpu=… --format=csv output (with or without header and units)."""
    _import("nvidia-smi", path, as_json, api, node=node, timezone=timezone,
            fields=[f.strip() for f in fields.split(",")] if fields else None)
