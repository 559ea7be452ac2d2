"""Command line for collectors: `llmledger collect`, `llmledger collectors …`, `llmledger import …`.

This is app shell, added to `llmledger.cli`: it opens the configured warehouse and hands off to
`ingest.collect` (the runner the scheduler also calls); heavy imports happen inside commands so
the CLI starts fast. Exit status 1 when any collector or import failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ingest.collector_state import RunReport

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


def _print(reports: list[RunReport], as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    for r in reports if not as_json else []:
        colour = "green" if r.ok else "red"
        line = (f"[{colour}]{r.collector}: {r.status}[/{colour}] — {r.written:,} written, {r.duplicates:,} already "
                f"stored, {r.dead:,} dead-lettered in {r.batches:,} batches")
        if r.data_through:
            line += f"; complete through {r.data_through.isoformat()}"
        console.print(line)
        for note in r.notes:
            console.print(f"  note: {note}")
        if r.error:
            console.print(f"  [red]{r.error_kind}: {r.error}[/red]")
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


def collect(
    name: Annotated[str | None, typer.Argument(help="One collector (default: every enabled one).")] = None,
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """Run pull and scrape collectors once (provider exports, vLLM, DCGM)."""
    from collectors.base import Kind
    from collectors.registry import REGISTRY
    from ingest.collect import run_collector, run_collectors
    from llmledger.runtime import open_warehouse
    from llmledger.settings import get_settings

    settings = get_settings()
    if name is not None and REGISTRY.get(name).capabilities.kind is Kind.FILE:
        raise typer.BadParameter(f"{name} imports files: use `llmledger import {name} FILE`")
    with open_warehouse(settings) as wh:
        if name is None:
            reports = run_collectors(settings, wh, since=_utc(since), until=_utc(until))
            if not reports:
                console.print("no collector is enabled: set collectors.<name>.enabled = true in llmledger.toml")
        else:
            reports = [run_collector(name, settings, wh, since=_utc(since), until=_utc(until))]
    _print(reports, as_json)


@collectors_app.command("list")
def list_collectors(as_json: AsJson = False) -> None:
    """Registered collectors, what they produce and whether settings enable them."""
    from collectors.registry import REGISTRY, settings_key
    from ingest.collect import describe
    from llmledger.settings import get_settings

    section = get_settings().collectors
    rows = []
    for name in REGISTRY.names():
        info = describe(REGISTRY.get(name))
        info["enabled"] = bool(getattr(getattr(section, settings_key(name), None), "enabled", False))
        rows.append(info)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "enabled", "outputs", "what")
    for row in rows:
        table.add_row(row["name"], row["kind"], "yes" if row["enabled"] else "", ", ".join(row["outputs"]), row["summary"])
    console.print(table)


@collectors_app.command("status")
def status(as_json: AsJson = False) -> None:
    """Each collector's last run, last success, lag and last error."""
    from ingest.collect import status_frame
    from llmledger.runtime import open_warehouse
    from llmledger.settings import get_settings

    with open_warehouse(get_settings()) as wh:
        frame = status_frame(wh)
    if as_json:
        print(frame.write_json())
        return
    table = Table("collector", "last status", "last success", "lag", "runs", "errors", "last error")
    for row in frame.iter_rows(named=True):
        lag = "" if row["lag_s"] is None else f"{row['lag_s'] / 60:,.0f} min"
        table.add_row(row["collector"], row["last_status"], str(row["last_success_at"] or "never"), lag,
                      str(row["runs"]), str(row["errors"]), (row["last_error"] or "")[:80])
    console.print(table)


@collectors_app.command("reset")
def reset(name: Annotated[str, typer.Argument(help="Collector whose cursor to forget.")]) -> None:
    """Forget a collector's cursor: its next run back-fills (re-fetched buckets replace, never add)."""
    from collectors.registry import REGISTRY
    from ingest.collector_state import reset_cursor
    from llmledger.runtime import open_warehouse
    from llmledger.settings import get_settings

    REGISTRY.get(name)
    with open_warehouse(get_settings()) as wh:
        reset_cursor(wh, name)
    console.print(f"{name}: cursor reset")


def _import(name: str, path: Path, as_json: bool, **config: Any) -> None:
    from ingest.collect import run_collector
    from llmledger.runtime import open_warehouse
    from llmledger.settings import get_settings

    settings = get_settings()
    with open_warehouse(settings) as wh:
        report = run_collector(name, settings, wh, path=path, **config)
    _print([report], as_json)


FileArg = Annotated[Path, typer.Argument(help="The exported file.", exists=True, dir_okay=False)]


@import_app.command("litellm-spend-logs")
def import_litellm(
    path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False,
    prompt_includes_cache_writes: Annotated[bool, typer.Option(
        help="LiteLLM releases that added only cache reads to prompt_tokens need --no-prompt-includes-cache-writes."
    )] = True,
) -> None:
    """A LiteLLM_SpendLogs export (CSV, JSON, JSON lines)."""
    _import("litellm-spend-logs", path, as_json, format=fmt, source=source,
            prompt_includes_cache_writes=prompt_includes_cache_writes)


@import_app.command("helicone")
def import_helicone(path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False) -> None:
    """A Helicone request export (JSON, JSON lines, CSV)."""
    _import("helicone", path, as_json, format=fmt, source=source)


@import_app.command("portkey")
def import_portkey(path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False) -> None:
    """A Portkey log export (JSON lines; cost in cents)."""
    _import("portkey", path, as_json, format=fmt, source=source)


@import_app.command("openrouter")
def import_openrouter(path: FileArg, fmt: Format = "auto", source: Source = None, as_json: AsJson = False) -> None:
    """OpenRouter generation records, one per line."""
    _import("openrouter", path, as_json, format=fmt, source=source)


@import_app.command("mapped")
def import_mapped(
    path: FileArg,
    mapping: Annotated[Path, typer.Option(help="TOML column mapping (see the README).", exists=True, dir_okay=False)],
    fmt: Format = "auto", source: Source = None, as_json: AsJson = False,
) -> None:
    """Any JSON lines / JSON / CSV / Parquet file of calls, through a TOML column mapping."""
    _import("mapped", path, as_json, format=fmt, source=source, mapping=mapping)


@import_app.command("nvidia-smi")
def import_nvidia_smi(
    path: FileArg,
    node: Annotated[str, typer.Option(help="The machine the output came from.")],
    fields: Annotated[str | None, typer.Option(help="The --query-gpu list, for noheader output.")] = None,
    timezone: Annotated[str, typer.Option(help="The machine's time zone (nvidia-smi prints local time).")] = "UTC",
    as_json: AsJson = False,
) -> None:
    """nvidia-smi --query-gpu=… --format=csv output (with or without header and units)."""
    _import("nvidia-smi", path, as_json, node=node, timezone=timezone,
            fields=[f.strip() for f in fields.split(",")] if fields else None)
