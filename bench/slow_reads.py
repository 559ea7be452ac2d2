"""The growth benchmark's slowest reads, re-timed in process on its stores (bench/out/growth-<calls>/),
without rebuilding them or starting the service: each read over the store's last 30 whole days,
as the dashboard pages ask it, `--repeat` times interleaved after a warm-up, with the machine's load.
`--off` also times each read with the rollups switched off (its plan over raw calls, the plan the
slow reads had when no rollup served them), fewer times, and checks that the exact reads answer the
same either way.

Opening a store applies pending migrations (a new rollup's back-fill reads every call once).

Usage: python -m bench.slow_reads [--sizes 10000000,100000000] [--repeat 10] [--off 3] [--section NAME]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from bench.growth import _percentile, _settings, _size, store_of
from bench.report import record

SECTION = "Growth: the slowest reads re-timed in process"


def _reads() -> dict[str, Callable[[Any, datetime, datetime], object]]:
    from warehouse.queries import attribution, nodes, ops, series
    from warehouse.queries.scope import Scope

    every = Scope.all()
    return {
        "nodes: /v1/nodes/gpu": lambda wh, s, e: nodes.gpu_utilisation(wh, every, s, e, step_s=3600),
        "attribution: /v1/usage dimension=user_id (all measures)": lambda wh, s, e: attribution.usage_by_capped(
            wh, every, "user_id", s, e, limit=100_000),
        "attribution: /v1/usage dimension=user_id measure=cost_usd": lambda wh, s, e: attribution.usage_by_capped(
            wh, every, "user_id", s, e, limit=100_000, measures=["cost_usd"]),
        "nodes: /v1/usage dimension=model deployment=self_hosted": lambda wh, s, e: attribution.usage_by_capped(
            wh, every, "model", s, e, {"deployment": ["self_hosted"]}, limit=100),
        "health: /v1/unpriced": lambda wh, s, e: ops.unpriced_models(wh, every, s, e),
        "latency: /v1/latency/series grain=hour dimension=route": lambda wh, s, e: series.latency_series(
            wh, every, s, e, grain="hour", dimension="route"),
    }


@contextmanager
def _rollups_off():
    from warehouse.queries import hybrid, nodes

    rows, days, five = hybrid.rows, hybrid.whole_days, nodes._five_minutes
    hybrid.rows, hybrid.whole_days = (lambda *a, **k: None), (lambda *a, **k: None)
    nodes._five_minutes = lambda *a: None
    try:
        yield
    finally:
        hybrid.rows, hybrid.whole_days, nodes._five_minutes = rows, days, five


EXACT = ("nodes: /v1/usage dimension=model deployment=self_hosted", "health: /v1/unpriced",  # sums, counts, min / max
         "attribution: /v1/usage dimension=user_id measure=cost_usd")
MEANS = ("nodes: /v1/nodes/gpu",)  # means as sums over counts: equal up to float rounding


def _timed(reads: dict[str, Callable[..., object]], wh: Any, span: tuple[datetime, datetime],
           repeat: int, answers: dict[str, object]) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in reads}
    for name, read in reads.items():  # warm
        answers[name] = read(wh, *span)
    for _ in range(repeat):
        for name, read in reads.items():
            began = time.perf_counter()
            read(wh, *span)
            samples[name].append((time.perf_counter() - began) * 1000)
    return {name: {"p50_ms": round(statistics.median(s), 1), "p95_ms": round(_percentile(s, 0.95), 1)}
            for name, s in samples.items()}


def _assert_close(name: str, served: Any, scanned: Any) -> None:
    """Same keys and counts, float columns within 1e-9 relative."""
    if served.shape != scanned.shape or served.columns != scanned.columns:
        raise AssertionError(f"{name}: {served.shape} rows from the rollup, {scanned.shape} from raw samples")
    for column, dtype in served.schema.items():
        pairs = zip(served[column].to_list(), scanned[column].to_list(), strict=True)
        same = (all((a is None) == (b is None) and (a is None or abs(a - b) <= 1e-9 * max(1.0, abs(b)))
                    for a, b in pairs) if dtype.is_float() else served[column].equals(scanned[column]))
        if not same:
            raise AssertionError(f"{name}: column {column} differs between the rollup and raw samples")


def run(calls: int, repeat: int, off: int) -> dict[str, Any]:
    from llmledger.runtime import open_warehouse

    if not store_of(calls).exists():
        raise SystemExit(f"no store at {store_of(calls)}: build it with python -m bench.growth --build-only")
    began = time.perf_counter()
    wh = open_warehouse(_settings(calls))  # pending migrations (rollup back-fills) run here
    migrated_s = round(time.perf_counter() - began, 1)
    try:
        last = wh.query_rows("SELECT max(ts) FROM calls")[0][0]
        end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        span = (end - timedelta(days=30), end)
        load_before = os.getloadavg()[0]
        served: dict[str, Any] = {}
        on = _timed(_reads(), wh, span, repeat, served)
        load_on = os.getloadavg()[0]
        raw: dict[str, dict[str, float]] = {}
        if off:
            scanned: dict[str, Any] = {}
            with _rollups_off():
                raw = _timed(_reads(), wh, span, off, scanned)
            for name in EXACT:  # the rollup-served answer is the raw one, at full size
                if served[name].rows() != scanned[name].rows():
                    raise AssertionError(f"{name}: rollup-served rows differ from raw calls' at {calls:,} calls")
            for name in MEANS:
                _assert_close(name, served[name], scanned[name])
        return {"calls": wh.scalar("SELECT count() FROM calls"), "on": on, "off": raw, "migrated_s": migrated_s,
                "load": (round(load_before, 1), round(load_on, 1), round(os.getloadavg()[0], 1))}
    finally:
        wh.close()


def report(results: dict[int, dict[str, Any]], repeat: int, off: int) -> str:
    sizes = list(results)
    names = list(next(iter(results.values()))["on"])
    head = " | ".join(f"{_size(s)} p50 / p95" + (f" | {_size(s)} rollups off p50" if off else "") for s in sizes)
    lines = []
    for name in names:
        cells = []
        for r in results.values():
            cells.append(f"{r['on'][name]['p50_ms']} / {r['on'][name]['p95_ms']}")
            if off:
                cells.append(str(r["off"][name]["p50_ms"]))
        lines.append(f"| {name} | {' | '.join(cells)} |")
    loads = "; ".join(f"{_size(s)}: {r['calls']:,} calls, 1-minute load {r['load'][0]} before, {r['load'][1]} after "
                      f"the timed reads, {r['load'][2]} at the end" for s, r in results.items())
    return f"""
The reads the growth run above found slowest, and spend per user over the month with every measure
and with `measure=cost_usd` (the PostgreSQL side by side's question), timed in process (the query
functions the API calls, no HTTP) on the same stores over their last 30 whole days, {repeat} times
interleaved after a warm-up{f"; rollups off: the same read planned over raw calls (raw GPU samples) only, {off} times; the exact reads checked equal either way, the GPU chart's means within 1e-9" if off else ""}.
Load: {loads}. The machine is shared: figures under a load above 2 are upper bounds for a quiet one.

| read | {head} |
| --- |{' ---: |' * (len(sizes) * (2 if off else 1))}
{chr(10).join(lines)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000000,100000000")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--off", type=int, default=0, help="times each read is also run with the rollups off")
    parser.add_argument("--section", default=SECTION, help="the BENCHMARKS.md section to (re)write")
    args = parser.parse_args()
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        results[size] = run(size, args.repeat, args.off)
        print(size, results[size], flush=True)
    body = report(results, args.repeat, args.off)
    print(body)
    record(args.section, body)


if __name__ == "__main__":
    main()
