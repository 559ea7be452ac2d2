"""Embedded vs HTTP: the same pipeline and queries through clickhouse-connect's chDB interface and its
HTTP client, and how one warehouse behaves under concurrent requests.

The HTTP side talks to tests/chhttp.py, the ClickHouse-speaking endpoint over chDB in this same
process, so its numbers include a Python HTTP server sharing the GIL with the client: a real server
is faster. Pool: 16 threads × 25 queries through one session-less warehouse (pool of 8 and of 2),
one warehouse per thread, and one client with a session id shared by all threads.

Usage: python -m bench.transports [--calls 30000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.report import record

START = datetime(2025, 11, 5, tzinfo=UTC)


def _ingest(wh, settings, calls) -> float:  # type: ignore[no-untyped-def]
    from ingest.pipeline import Pipeline

    began = time.perf_counter()
    with Pipeline(wh, settings) as pipeline:
        for offset in range(0, calls.height, 10_000):
            pipeline.ingest_frame(calls.slice(offset, 10_000), source="bench")
    return time.perf_counter() - began


def _queries(wh) -> dict[str, Callable[[], object]]:  # type: ignore[no-untyped-def]
    from warehouse.queries import attribution
    from warehouse.queries.scope import Scope

    end = START + timedelta(days=1)
    return {
        "totals": lambda: attribution.totals(wh, Scope.all(), START, end),
        "usage_by route": lambda: attribution.usage_by(wh, Scope.all(), "route", START, end),
        "cache_hit_ratio": lambda: attribution.cache_hit_ratio(wh, Scope.all(), START, end),
        "latency_percentiles by model": lambda: attribution.latency_percentiles(wh, Scope.all(), START, end, dimension="model"),
    }


def _burst(run: Callable[[int], None], threads: int = 16, per_thread: int = 25) -> tuple[float, int]:
    errors = 0
    lock = threading.Lock()

    def worker(i: int) -> None:
        nonlocal errors
        for _ in range(per_thread):
            try:
                run(i)
            except Exception:  # noqa: BLE001 - counted
                with lock:
                    errors += 1

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return threads * per_thread / (time.perf_counter() - began), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import clickhouse_connect

    from ingest.pricing import load_prices
    from llmledger.settings import Settings
    from llmledger.simulator import SimulationConfig, iter_days
    from tests.chhttp import ClickHouseHTTP
    from warehouse.client import Warehouse
    from warehouse.migrate import migrate

    warmup, day = list(iter_days(SimulationConfig(start=START - timedelta(days=1), days=2, calls_per_day=args.calls)))
    root = Path(tempfile.mkdtemp(prefix="bench-transports-"))
    store = root / "store"
    endpoint = ClickHouseHTTP(store, user="bench", password="bench").start()
    rows = ["| | embedded | HTTP |", "| --- | --- | --- |"]
    whs = {}
    ingest_s = {}
    for transport, url in (("embedded", None), ("http", endpoint.url())):
        settings = Settings(home=root / transport, warehouse={"path": store, "url": url})
        wh = Warehouse.from_settings(settings, database=f"b_{uuid.uuid4().hex[:8]}")
        migrate(wh)
        load_prices(wh, settings.pricing)
        _ingest(wh, settings, warmup.calls.head(5_000))  # one-time costs (name resolution caches) out of the timing
        ingest_s[transport] = _ingest(wh, settings, day.calls)
        whs[transport] = wh
    rate = {t: day.calls.height / s for t, s in ingest_s.items()}
    rows.append(f"| ingest {day.calls.height:,} calls (pipeline, 10k-row batches) | {rate['embedded']:,.0f} rows/s | "
                f"{rate['http']:,.0f} rows/s ({rate['http'] / rate['embedded']:.0%}) |")
    for name in _queries(whs["embedded"]):
        medians = {}
        for transport, wh in whs.items():
            fn = _queries(wh)[name]
            fn()
            timings = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                fn()
                timings.append((time.perf_counter() - began) * 1000)
            medians[transport] = statistics.median(timings)
        rows.append(f"| {name} (median of {args.repeat}) | {medians['embedded']:.1f} ms | {medians['http']:.1f} ms |")

    sql = "SELECT count() FROM calls WHERE route = {r:String}"
    routes = [r[0] for r in whs["http"].query_rows("SELECT DISTINCT route FROM calls")]
    pool_rows = ["| 16 threads × 25 queries through | queries/s | errors | TCP connections opened |", "| --- | --- | --- | --- |"]
    db = whs["http"].database
    for label, size in (("one warehouse, pool_size=8", 8), ("one warehouse, pool_size=2", 2)):
        before = endpoint.connections
        with Warehouse.server(endpoint.url(db, pool_size=str(size))) as shared:
            qps, errors = _burst(lambda i: shared.scalar(sql, {"r": routes[i % len(routes)]}))  # noqa: B023
            pool_rows.append(f"| {label} | {qps:,.0f} | {errors} | {endpoint.connections - before} |")
    before = endpoint.connections
    per_thread = [Warehouse.server(endpoint.url(db)) for _ in range(16)]
    qps, errors = _burst(lambda i: per_thread[i].scalar(sql, {"r": routes[i % len(routes)]}))
    pool_rows.append(f"| one warehouse per thread (16 pools) | {qps:,.0f} | {errors} | {endpoint.connections - before} |")
    for wh in per_thread:
        wh.close()
    before = endpoint.connections
    session = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port, username="bench", password="bench",
                                            database=db, autogenerate_session_id=True)
    qps, errors = _burst(lambda i: session.query(sql, parameters={"r": routes[i % len(routes)]}))
    pool_rows.append(f"| one clickhouse-connect client with a session id | {qps:,.0f} | {errors} | "
                     f"{endpoint.connections - before} |")
    session.close()
    for wh in whs.values():
        wh.command(f"DROP DATABASE IF EXISTS {wh.database}")
        wh.close()
    endpoint.stop()
    body = "\n".join(rows) + "\n\nConcurrent reads over HTTP:\n\n" + "\n".join(pool_rows)
    body += (
        "\n\nThe HTTP endpoint is tests/chhttp.py in the same process as the client (a Python server sharing "
        "the GIL), so HTTP figures are a floor, not a forecast for a real ClickHouse server."
    )
    print(body)
    record("Transports: embedded vs HTTP (bench/transports.py)", body)


if __name__ == "__main__":
    main()
