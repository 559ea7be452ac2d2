"""Ingest benchmark: the full llmledger pipeline vs the engine's own raw JSON insert, same file.

1. Writes (once, cached under bench/data/) a simulated JSONL file of `--calls` canonical calls.
2. Times `INSERT INTO calls SELECT * FROM file(…, JSONEachRow)` — the raw engine, no validation,
   no pricing, no dedup — into a freshly migrated database.
3. Times `llmledger`'s pipeline (read, normalise, validate, price, deduplicate, write) on the same
   file into another fresh database, and prints the ratios by wall time and by CPU (target ≥ 80% of
   raw speed by both); steps 2-3 alternate `--rounds` times and report medians.
4. Re-ingests the file (all duplicates) to time the idempotency path.
5. In a child process with a small batch size, ingests a file > 100 batches and reports its peak
   RSS, to show memory stays bounded by the batch size, not the file size.

Usage: python -m bench.ingest [--calls 2000000] [--rounds 2] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out"


def simulated_file(calls: int, seed: int = 42) -> Path:
    """A JSONL file of about `calls` simulated calls (cached by size and seed)."""
    from llmledger.simulator import SimulationConfig, write_simulation

    target = DATA / f"calls-{calls}-{seed}"
    path = target / "calls.jsonl"
    if path.exists():
        return path
    days = 30
    config = SimulationConfig(
        start=datetime(2026, 10, 1, tzinfo=UTC), days=days, calls_per_day=max(1, calls // days), seed=seed,
        incidents=True,
    )
    target.mkdir(parents=True, exist_ok=True)
    write_simulation(config, target)
    return path


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))


def _cpu() -> float:
    """CPU seconds of this process so far (the embedded engine's threads included)."""
    times = os.times()
    return times.user + times.system


def run(calls: int, memory: bool, rounds: int = 2) -> dict[str, object]:
    from ingest.pipeline import Pipeline
    from ingest.pricing import load_prices
    from llmledger.settings import Settings
    from warehouse.client import Warehouse
    from warehouse.migrate import migrate

    path = simulated_file(calls)
    rows = _count_lines(path)
    size_mb = path.stat().st_size / 2**20
    shutil.rmtree(OUT / "ingest-store", ignore_errors=True)
    settings = Settings(home=OUT / "ingest-home", warehouse={"path": OUT / "ingest-store"})
    load_before = os.getloadavg()
    raw_runs: list[tuple[float, float]] = []
    pipeline_runs: list[tuple[float, float]] = []
    for i in range(rounds):  # alternately, each into a fresh database: load falls on both alike
        with Warehouse.from_settings(settings, database=f"raw{i}") as raw:
            migrate(raw)
            # the structure argument makes JSONEachRow map fields to the calls columns by name
            structure = ", ".join(f"`{name}` {ch_type}" for name, ch_type in raw.table_columns("calls").items())
            started, cpu = time.perf_counter(), _cpu()
            raw.command(
                f"INSERT INTO calls SELECT * FROM file('{path}', JSONEachRow, {{structure:String}}) "
                "SETTINGS input_format_skip_unknown_fields = 1, date_time_input_format = 'best_effort'",
                {"structure": structure},
            )
            raw_runs.append((time.perf_counter() - started, _cpu() - cpu))
            raw_rows = raw.scalar("SELECT count() FROM calls")
            raw.command(f"DROP DATABASE raw{i}")
        with Warehouse.from_settings(settings, database=f"pipeline{i}") as wh:
            migrate(wh)
            load_prices(wh, settings.pricing)
            with Pipeline(wh, settings) as pipeline:
                started, cpu = time.perf_counter(), _cpu()
                first = pipeline.ingest_file(path)
                pipeline_runs.append((time.perf_counter() - started, _cpu() - cpu))
                if i == rounds - 1:
                    started, cpu = time.perf_counter(), _cpu()
                    again = pipeline.ingest_file(path)
                    again_cpu = _cpu() - cpu
            stored = wh.scalar("SELECT count() FROM calls")
            if i < rounds - 1:
                wh.command(f"DROP DATABASE pipeline{i}")
    raw_wall, raw_cpu = (statistics.median(r[k] for r in raw_runs) for k in (0, 1))
    pipe_wall, pipe_cpu = (statistics.median(r[k] for r in pipeline_runs) for k in (0, 1))
    result: dict[str, object] = {
        "file_rows": rows,
        "file_mb": round(size_mb, 1),
        "rounds": rounds,
        "raw_seconds": round(raw_wall, 2),
        "raw_cpu_seconds": round(raw_cpu, 2),
        "raw_rows": raw_rows,
        "raw_rows_per_s": round(raw_rows / raw_wall),
        "pipeline_seconds": round(pipe_wall, 2),
        "pipeline_cpu_seconds": round(pipe_cpu, 2),
        "pipeline_rows_per_s": round(first.read / pipe_wall),
        "pipeline_written": first.written,
        "pipeline_dead": first.dead,
        "ratio": round(raw_wall / pipe_wall, 3),
        "cpu_ratio": round(raw_cpu / pipe_cpu, 3),
        "runs": {"raw": raw_runs, "pipeline": pipeline_runs},
        "reingest_seconds": round(again.seconds, 2),
        "reingest_cpu_seconds": round(again_cpu, 2),
        "reingest_written": again.written,
        "stored_rows": stored,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "batch_mb": settings.ingest.batch_bytes / 2**20,
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
    }
    if memory:
        result.update(bounded_memory(path))
    return result


def bounded_memory(path: Path, batch_bytes: int = 1 << 20) -> dict[str, object]:
    """Ingest `path` in a child process with small batches; report its peak RSS."""
    store = OUT / "memory-store"
    shutil.rmtree(store, ignore_errors=True)
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from llmledger.settings import Settings\n"
        "from llmledger.runtime import open_warehouse\n"
        "from ingest.pipeline import Pipeline\n"
        f"s = Settings(home=Path({str(OUT / 'memory-home')!r}), warehouse={{'path': Path({str(store)!r})}},"
        f" ingest={{'batch_bytes': {batch_bytes}}})\n"
        "wh = open_warehouse(s)\n"
        "def hwm():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n"
        "base = hwm()\n"
        f"summary = Pipeline(wh, s).ingest_file(Path({str(path)!r}))\n"
        "print(json.dumps({'batches': summary.batches, 'written': summary.written, 'base_kb': base,"
        " 'peak_kb': hwm()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "memory_batch_mb": batch_bytes / 2**20,
        "memory_batches": stats["batches"],
        "memory_peak_rss_mb": round(stats["peak_kb"] / 1024),
        "memory_rss_before_ingest_mb": round(stats["base_kb"] / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2_000_000)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = run(args.calls, memory=not args.no_memory, rounds=args.rounds)
    print(json.dumps(result, indent=2))
    body = f"""
Same simulated JSONL file ({result['file_rows']:,} calls, {result['file_mb']} MiB), fresh databases with the same
migrations (so the rollup views cost both sides alike), raw and pipeline alternately {result['rounds']} times (medians);
CPU = seconds of this process (the embedded engine's threads included). Pipeline batches of {result['batch_mb']:.0f} MiB.
`uptime` load before: {', '.join(map(str, result['load_before']))}; after: {', '.join(map(str, result['load_after']))}.

| path | wall s | CPU s | rows/s |
| --- | ---: | ---: | ---: |
| raw engine `INSERT … SELECT FROM file(…, JSONEachRow)` (no validation, pricing or dedup) | {result['raw_seconds']} | {result['raw_cpu_seconds']} | {result['raw_rows_per_s']:,} |
| llmledger pipeline (parse, normalise, validate, price, dedup, write) | {result['pipeline_seconds']} | {result['pipeline_cpu_seconds']} | {result['pipeline_rows_per_s']:,} |
| llmledger re-ingest of the same file (all duplicates, {result['reingest_written']} written) | {result['reingest_seconds']} | {result['reingest_cpu_seconds']} | |

**Pipeline / raw speed: {result['ratio']:.0%} by wall time, {result['cpu_ratio']:.0%} by CPU** (target ≥ 80% both).
Written {result['pipeline_written']:,}, dead-lettered {result['pipeline_dead']:,}; peak RSS of the benchmark process
{result['peak_rss_mb']} MiB.
"""
    if "memory_peak_rss_mb" in result:
        body += f"""
Bounded memory: the same file ingested with {result['memory_batch_mb']:.0f} MiB batches
({result['memory_batches']:,} batches, i.e. file > 100 × batch) peaked at {result['memory_peak_rss_mb']} MiB RSS
({result['memory_rss_before_ingest_mb']} MiB before ingest started) for a {result['file_mb']} MiB file.
"""
    record("Ingest: pipeline vs raw engine", body)


if __name__ == "__main__":
    main()
