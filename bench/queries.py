"""Attribution query benchmark over 10M simulated calls in the embedded warehouse.

Builds (once; kept under bench/out/queries-store) a month of simulated traffic of `--calls`
calls through the real pipeline, then runs every attribution query of the query library
(totals, usage by each dimension, cache hit ratio, latency percentiles) `--repeat` times over
the whole month and over the last week, and reports p50 / p95 / max per query. Target: p95 ≤ 300 ms.
Ranges are not hour-aligned (as a dashboard's "last 30 days" is not), so sums come from the hourly
rollups plus raw calls for the partial hours at each edge.

Usage: python -m bench.queries [--calls 10000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "bench" / "out" / "queries-store"
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30


def build(calls: int) -> tuple[float, int]:
    """Simulate and ingest `calls` calls unless the store already holds them; returns (seconds, rows)."""
    from ingest.pipeline import Pipeline
    from llmledger.runtime import open_warehouse
    from llmledger.settings import Settings
    from llmledger.simulator import SimulationConfig, iter_days

    settings = Settings(home=STORE.parent / "queries-home", warehouse={"path": STORE})
    with open_warehouse(settings) as wh:
        have = wh.scalar("SELECT count() FROM calls")
        if have >= calls * 0.95:
            return 0.0, int(have)
        config = SimulationConfig(start=START, days=DAYS, calls_per_day=calls // DAYS, seed=1, incidents=True)
        started = time.perf_counter()
        with Pipeline(wh, settings) as pipeline:
            for day in iter_days(config):
                pipeline.ingest_frame(day.calls, source="simulator")
        return time.perf_counter() - started, int(wh.scalar("SELECT count() FROM calls"))


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def run(calls: int, repeat: int) -> dict[str, object]:
    from llmledger.runtime import open_warehouse
    from llmledger.settings import Settings
    from warehouse.queries import attribution
    from warehouse.queries.scope import Scope

    build_seconds, rows = build(calls)
    settings = Settings(warehouse={"path": STORE})
    end = START + timedelta(days=DAYS, minutes=-13)
    week = end - timedelta(days=7)
    scope = Scope.all()
    results: dict[str, list[float]] = {}
    with open_warehouse(settings) as wh:  # migrates: a store from an older run gains new rollups
        for label, start in (("month", START), ("week", week)):
            results[f"totals/{label}"] = _time(lambda s=start: attribution.totals(wh, scope, s, end), repeat)
            for dimension in ("user_id", "team", "route", "feature", "model", "provider", "api_key_id", "project"):
                results[f"usage_by {dimension}/{label}"] = _time(
                    lambda d=dimension, s=start: attribution.usage_by(wh, scope, d, s, end, limit=50), repeat
                )
            results[f"cache_hit_ratio/{label}"] = _time(
                lambda s=start: attribution.cache_hit_ratio(wh, scope, s, end), repeat
            )
            results[f"latency_percentiles by model (rollup digests + raw edges)/{label}"] = _time(
                lambda s=start: attribution.latency_percentiles(wh, scope, s, end, dimension="model"), repeat
            )
            results[f"usage_by route, filtered to one team/{label}"] = _time(
                lambda s=start: attribution.usage_by(wh, scope, "route", s, end, {"team": ["platform"]}), repeat
            )
    summary = {
        name: {
            "p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(sorted(samples)[max(0, int(len(samples) * 0.95) - 1)], 1),
            "max_ms": round(max(samples), 1),
        }
        for name, samples in results.items()
    }
    return {"rows": rows, "build_seconds": round(build_seconds, 1), "queries": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    result = run(args.calls, args.repeat)
    print(json.dumps(result, indent=2))
    queries: dict[str, dict[str, float]] = result["queries"]  # type: ignore[assignment]
    worst = max(q["p95_ms"] for q in queries.values())
    lines = "\n".join(
        f"| {name} | {q['p50_ms']} | {q['p95_ms']} | {q['max_ms']} |" for name, q in queries.items()
    )
    build_note = (
        f"built by simulating and ingesting through the pipeline in {result['build_seconds']} s "
        f"({result['rows'] / result['build_seconds']:,.0f} calls/s including simulation)"
        if result["build_seconds"]
        else "store reused from an earlier run"
    )
    body = f"""
{result['rows']:,} simulated calls over 30 days in the embedded warehouse ({build_note}).
Each query run {args.repeat} times after a warm-up, over the whole month and over the last 7 days.

| query | p50 ms | p95 ms | max ms |
| --- | ---: | ---: | ---: |
{lines}

**Worst p95: {worst} ms** (target ≤ 300 ms).
"""
    record("Attribution queries at 10M calls", body)


if __name__ == "__main__":
    main()
