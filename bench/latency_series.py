"""The latency page's hourly series (`/v1/latency/series grain=hour dimension=route`) over the growth
stores' last 30 whole days (bench/out/growth-<calls>/, or `--out`), read from finished hours
(`calls_latency_finished`, `warehouse.latency_hours`) and with every hour's t-digests merged live (the
read before them), in process (the query function the API calls), alternately, `--repeat` times each
after a warm-up. Both answers are first compared for every scope (all projects, each project) and
dimension the page offers: buckets, keys, counts and means equal, quantiles within 1e-6. Then, on
each store, the series and `/health` (the floor of an HTTP round trip) over HTTP against the service.

Opening a store applies pending migrations (the finished hours' back-fill merges every closed hour
once: timed); the job that keeps them (`finish_latency_hours`) is then run once and must find nothing.

Usage: python -m bench.latency_series [--out DIR] [--sizes 10000000,100000000] [--repeat 10] [--no-http]
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench import growth
from bench.edge_tier import _stats, time_asks
from bench.growth import _size
from bench.report import record

SECTION = "Latency series by the hour: finished hours, in process and over HTTP"
ROUTE = "latency: /v1/latency/series grain=hour dimension=route"
QUANTILE_TOLERANCE = 1e-6  # merge order aside, a finished hour is the same merge of the same states


def _live() -> Any:
    """The read before finished hours: every whole hour's digests merged from `calls_latency_hourly`."""
    from warehouse import latency_hours

    return mock.patch.object(latency_hours, "fresh_hours", lambda *a, **k: None)


def _compare(wh: Any, span: tuple[datetime, datetime]) -> dict[str, Any]:
    """Finished against live for each scope and dimension: raises on a different bucket, key, count or
    mean; the largest relative quantile difference and the rows compared."""
    import polars as pl

    from warehouse.queries import series
    from warehouse.queries.scope import Scope

    projects = [row[0] for row in wh.query_rows("SELECT DISTINCT project FROM calls_latency_hourly ORDER BY project")]
    worst, rows = 0.0, 0
    for scope in (Scope.all(), *(Scope.of(p) for p in projects)):
        for dimension in (None, "route", "model", "provider"):
            served = series.latency_series(wh, scope, *span, grain="hour", dimension=dimension)
            with _live():
                live = series.latency_series(wh, scope, *span, grain="hour", dimension=dimension)
            quantiles = [c for c in live.columns if c[-7:] in ("_p50_ms", "_p95_ms", "_p99_ms")]
            exact = [c for c in live.columns if c not in quantiles]
            if served.schema != live.schema or not served.select(exact).equals(live.select(exact)):
                raise AssertionError(f"{scope} per {dimension}: finished hours differ from live merging")
            for column in quantiles:
                a, b = served[column].cast(pl.Float64), live[column].cast(pl.Float64)
                if not (a.is_null() == b.is_null()).all():
                    raise AssertionError(f"{scope} per {dimension}: {column} null where the other is not")
                gap = ((a - b).abs() / b.abs().clip(lower_bound=1.0)).max()
                worst = max(worst, float(gap or 0.0))
            rows += live.height
    if worst > QUANTILE_TOLERANCE:
        raise AssertionError(f"quantiles differ by up to {worst:.2e} between finished hours and live merging")
    return {"projects": len(projects), "rows": rows, "worst_quantile_gap": worst}


def in_process(calls: int, repeat: int, home: Path) -> dict[str, Any]:
    from llmledger.runtime import make_ready, open_warehouse
    from llmledger.settings import Settings
    from warehouse.latency_hours import TABLE, finish_latency_hours
    from warehouse.migrate import check
    from warehouse.queries import series
    from warehouse.queries.scope import Scope

    store = growth.store_of(calls)
    if not store.exists():
        raise SystemExit(f"no store at {store}: build it with python -m bench.growth --build-only")
    settings = Settings(home=home / f"latency-{calls}-home", warehouse={"path": store}, scheduler={"enabled": False})
    wh = open_warehouse(settings, migrate_first=False)
    try:
        pending = [m.name for m in check(wh)]
        began = time.perf_counter()
        make_ready(wh, settings)  # the finished hours' back-fill runs here, on the store's first opening
        migrated_s = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        job = finish_latency_hours(wh, datetime.now(UTC))
        job_s = round(time.perf_counter() - began, 2)
        if job.hours:
            raise AssertionError(f"the job finished {job.hours} hours the back-fill left")
        kept = wh.query_rows(f"SELECT count(), uniqExact(hour) FROM {TABLE}")[0]
        size = wh.scalar("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = currentDatabase() "
                         "AND table = {t:String}", {"t": TABLE})
        last = wh.query_rows("SELECT max(ts) FROM calls")[0][0]
        end = last.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC) + timedelta(days=1)
        span = (end - timedelta(days=30), end)
        checked = _compare(wh, span)
        every = Scope.all()

        def read() -> object:
            return series.latency_series(wh, every, *span, grain="hour", dimension="route")

        samples: dict[str, list[float]] = {"finished": [], "live": []}
        load_before = os.getloadavg()[0]
        for i in range(repeat + 1):  # the first round warms both and is not counted
            for side in (("finished", "live") if i % 2 else ("live", "finished")):
                started = time.perf_counter()
                if side == "finished":
                    read()
                else:
                    with _live():
                        read()
                if i:
                    samples[side].append((time.perf_counter() - started) * 1000)
        load_after = os.getloadavg()[0]
        return {"calls": wh.scalar("SELECT count() FROM calls"), "span": span, "migrated_s": migrated_s, "pending": pending,
                "job_s": job_s, "finished_rows": int(kept[0]), "finished_hours": int(kept[1]),
                "finished_mib": round(int(size or 0) / 2**20, 2), "checked": checked,
                "load": (round(load_before, 1), round(load_after, 1)),
                "timings": {side: _stats(v) for side, v in samples.items()}}
    finally:
        wh.close()


def over_http(calls: int, span: tuple[datetime, datetime], repeat: int, home: Path) -> dict[str, Any]:
    """The series (finished hours) and `/health` over HTTP against the service on the store."""
    from bench.postgres_side_by_side import _serve

    service, url = _serve(growth.store_of(calls), home)
    try:
        return time_asks(url, {"/health": ("/health", {}),
                               ROUTE: ("/v1/latency/series", {"grain": "hour", "dimension": "route",
                                                              "start": span[0].isoformat(),
                                                              "end": span[1].isoformat()})}, repeat)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(120)


def report(results: dict[int, dict[str, Any]], http: dict[int, dict[str, Any]] | None, repeat: int) -> str:
    sizes = list(results)
    head = " | ".join(f"{_size(s)} p50 / p95" for s in sizes)
    cells = {side: " | ".join(f"{r['timings'][side]['p50_ms']} / {r['timings'][side]['p95_ms']}"
                              for r in results.values()) for side in ("finished", "live")}
    growth_ratio = ""
    if len(sizes) > 1:
        a, b = results[sizes[0]]["timings"], results[sizes[-1]]["timings"]
        growth_ratio = (f"\n\nFrom {_size(sizes[0])} to {_size(sizes[-1])} calls: finished hours "
                        f"{b['finished']['p50_ms'] / a['finished']['p50_ms']:.2f}× (p50), "
                        f"{b['finished']['p95_ms'] / a['finished']['p95_ms']:.2f}× (p95); live merging "
                        f"{b['live']['p50_ms'] / a['live']['p50_ms']:.2f}× (p50).")
    loads = "; ".join(f"{_size(s)}: {r['calls']:,} calls, 1-minute load {r['load'][0]} before, {r['load'][1]} after"
                      for s, r in results.items())
    kept = "; ".join(
        f"{_size(s)}: {r['finished_rows']:,} rows over {r['finished_hours']:,} hours ({r['finished_mib']} MiB), "
        + (f"migrations {', '.join(r['pending'])} applied in {r['migrated_s']} s (the back-fill), " if r["pending"] else
           "migrated before this run, ")
        + f"the job's next run {r['job_s']} s (nothing to do), "
        f"{r['checked']['rows']:,} series rows compared over {r['checked']['projects'] + 1} scopes × 4 dimensions, "
        f"largest quantile difference {r['checked']['worst_quantile_gap']:.1e}"
        for s, r in results.items())
    body = f"""
`{ROUTE}` over each store's last 30 whole days (Scope: all projects), in process (the query function
the API calls, no HTTP): read from finished hours (`calls_latency_finished`: the closed hours' quantiles,
merged once by migration 0091's back-fill and then by the `rollups.refresh` job) and with every
hour's t-digests merged live from `calls_latency_hourly` (the read before), alternately, {repeat} times
each after a warm-up. Load: {loads}. The machine is shared: figures under a load above 2 are upper
bounds for a quiet one.

| read | {head} |
| --- |{' ---: |' * len(sizes)}
| finished hours (this build) | {cells['finished']} |
| live merging (before) | {cells['live']} |{growth_ratio}

Finished rows and checks — {kept}. Buckets, keys, calls and means are equal, quantiles within
{QUANTILE_TOLERANCE:g} relative, for all projects and each project, overall and per route, model and provider.
"""
    if http:
        names = list(next(iter(http.values()))["timings"])
        rows = "\n".join(f"| {name} | " + " | ".join(f"{h['timings'][name]['p50_ms']} / {h['timings'][name]['p95_ms']}"
                                                      for h in http.values()) + " |" for name in names)
        loads = "; ".join(f"{_size(s)}: {h['load'][0]} before, {h['load'][1]} after" for s, h in http.items())
        body += f"""
Over HTTP (`llmledger up` on the store, its own process, scheduler off), {repeat} times each, interleaved;
`/health` is the floor an HTTP round trip costs. Load {loads}.

| ask | {" | ".join(f"{_size(s)} p50 / p95 ms" for s in http)} |
| --- |{' ---: |' * len(http)}
{rows}
"""
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=growth.OUT, help="the folder holding the growth stores")
    parser.add_argument("--sizes", default="10000000,100000000")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP pass")
    parser.add_argument("--section", default=SECTION, help="the BENCHMARKS.md section to (re)write")
    args = parser.parse_args()
    growth.OUT = args.out  # where `store_of` finds the stores
    home = Path(__file__).resolve().parent / "out"  # this run's service home and logs, beside this checkout
    home.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        results[size] = in_process(size, args.repeat, home)
        print(size, results[size], flush=True)
    http = None if args.no_http else {size: over_http(size, results[size]["span"], args.repeat, home) for size in sizes}
    print(http, flush=True)
    body = report(results, http, args.repeat)
    print(body)
    record(args.section, body)


if __name__ == "__main__":
    main()
