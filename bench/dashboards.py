"""Dashboard benchmark over 10M simulated calls in the embedded warehouse, through the real service.

Builds (once; kept under bench/out/dashboards-store) a month of simulated traffic of `--calls`
calls with the demo's seeding (pipeline, rollup views, self-hosted node samples), serves it with
the real service (uvicorn in this process), then for every dashboard page: renders it under
Streamlit's AppTest with an empty cache, recording each API call the page makes and the page's
wall time; and replays each recorded call `--repeat` times over HTTP for p50 / p95. Targets:
every dashboard query ≤ 300 ms p95, every page ≤ 2 s.

Usage: python -m bench.dashboards [--calls 10000000] [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "bench" / "out" / "dashboards-home"
STORE = ROOT / "bench" / "out" / "dashboards-store"
PAGES = ("overview", "attribution", "caching", "latency", "routing", "nodes", "health")


def _settings() -> Any:
    from llmledger.settings import Settings

    return Settings(home=HOME, warehouse={"path": STORE}, service={"key_cache_s": 60},
                    scheduler={"enabled": False})


def build(calls: int) -> tuple[float, int]:
    """Seed the store as `llmledger demo` would (30 days ending on the build day, no signal backfill)
    unless it already holds the calls; returns (seconds, rows)."""
    from llmledger.demo import seed_demo
    from llmledger.runtime import open_warehouse
    from warehouse.rollups import refresh_rollups

    settings = _settings()
    with open_warehouse(settings) as wh:
        have = int(wh.scalar("SELECT count() FROM calls"))
        if have >= calls * 0.95:
            refresh_rollups(wh)  # a rollup added since the store was built is filled from its calls
            return 0.0, have
        started = time.perf_counter()
        seed_demo(wh, settings, days=30, calls_per_day=calls // 30, signals=False)
        return time.perf_counter() - started, int(wh.scalar("SELECT count() FROM calls"))


def _span() -> tuple[datetime, datetime]:
    from warehouse.client import Warehouse

    with Warehouse.embedded(STORE, "llmledger") as wh:
        lo, hi = wh.query_rows("SELECT min(ts), max(ts) FROM calls")[0]
    return lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)


def _serve() -> tuple[Any, str]:
    """The real service over the bench store, in a thread of this process; (server, URL)."""
    import socket
    import threading

    import uvicorn

    from llmledger.service import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(_settings()), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


Recorded = list[tuple[str, str, tuple[tuple[str, str], ...], float]]  # (page, path, query pairs, ms)


def record_pages(url: str, query: dict[str, str]) -> tuple[dict[str, dict[str, Any]], Recorded]:
    """Render every page under Streamlit's AppTest against the API at `url` (a warm-up pass, then
    one with an empty cache per page), recording each API call a page makes; returns per page its
    render time, API calls and errors, and the recorded calls."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import dashboards.client as client

    recorded: Recorded = []
    plain = client.fetch
    current = {"page": ""}

    def timed(url: str, key: str | None, page: str, path: str, pairs: Any, timeout: float = 60.0) -> Any:
        began = time.perf_counter()
        body = plain(url, key, page, path, pairs, timeout)
        recorded.append((current["page"], path, tuple(pairs), (time.perf_counter() - began) * 1000))
        return body

    pages: dict[str, dict[str, Any]] = {}
    os.environ["LLMLEDGER_API_URL"] = url
    client._FETCH = timed  # noqa: SLF001 - record every call, no cache
    try:
        for name in PAGES:  # a warm-up pass: the engine's caches, Python imports
            AppTest.from_file(str(ROOT / "dashboards" / "views" / f"{name}.py"), default_timeout=120).run()
        recorded.clear()
        for name in PAGES:
            st.cache_data.clear()
            current["page"] = name
            at = AppTest.from_file(str(ROOT / "dashboards" / "views" / f"{name}.py"), default_timeout=120)
            for k, v in query.items():
                at.query_params[k] = v
            began = time.perf_counter()
            at.run()
            wall = (time.perf_counter() - began) * 1000
            calls_of_page = [r for r in recorded if r[0] == name]
            pages[name] = {"render_ms": round(wall), "api_calls": len(calls_of_page),
                           "api_ms": round(sum(r[3] for r in calls_of_page)),
                           "errors": [e.value for e in at.exception] + [e.value for e in at.error]}
    finally:
        client._FETCH = None  # noqa: SLF001
    return pages, recorded


def label(page: str, path: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """`page: path` with the query parameters that tell one call of a path from another."""
    return f"{page}: {path}" + "".join(f" {k}={v}" for k, v in pairs if k in
                                       ("dimension", "by", "measure", "grain", "metric", "state", "like"))


def month_query(last: datetime) -> dict[str, str]:
    """The pages' URL parameters for the 30 days ending with `last`'s day."""
    return {"range": "custom", "from": (last - timedelta(days=29)).date().isoformat(), "to": last.date().isoformat()}


def run(calls: int, repeat: int) -> dict[str, Any]:
    import dashboards.client as client

    build_seconds, rows = build(calls)
    first, last = _span()
    server, url = _serve()
    try:
        pages, recorded = record_pages(url, month_query(last))
        replay: dict[str, list[float]] = {}
        for page, path, pairs, _ in recorded:
            samples = replay.setdefault(label(page, path, pairs), [])
            for _ in range(repeat):
                began = time.perf_counter()
                client.fetch(url, None, page, path, pairs)
                samples.append((time.perf_counter() - began) * 1000)
    finally:
        server.should_exit = True
    queries = {label: {"p50_ms": round(statistics.median(s), 1), "p95_ms": round(_percentile(s, 0.95), 1),
                       "max_ms": round(max(s), 1)} for label, s in replay.items()}
    return {"rows": rows, "build_seconds": round(build_seconds, 1), "span": [first.isoformat(), last.isoformat()],
            "pages": pages, "queries": queries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    result = run(args.calls, args.repeat)
    print(json.dumps(result, indent=2))
    pages: dict[str, dict[str, Any]] = result["pages"]
    queries: dict[str, dict[str, float]] = result["queries"]
    worst = max(queries.items(), key=lambda kv: kv[1]["p95_ms"])
    over = [name for name, q in queries.items() if q["p95_ms"] > 300]
    page_lines = "\n".join(f"| {name} | {p['render_ms']:,} | {p['api_calls']} | {p['api_ms']:,} |"
                           for name, p in pages.items())
    query_lines = "\n".join(f"| {name} | {q['p50_ms']} | {q['p95_ms']} | {q['max_ms']} |"
                            for name, q in sorted(queries.items(), key=lambda kv: -kv[1]["p95_ms"]))
    build_note = (f"built with the demo's seeding in {result['build_seconds']} s" if result["build_seconds"]
                  else "store reused from an earlier run")
    body = f"""
{result['rows']:,} simulated calls over 30 days with the self-hosted nodes' samples, in the embedded
warehouse ({build_note}), served by the real service in this process. Each page rendered once
under Streamlit's AppTest with an empty cache, over the store's last 30 days (its wall time includes
every API call, JSON decoding and building the Plotly figures); then each API call the page made
replayed {args.repeat} times over HTTP (warm engine).

| page | render ms | API calls | of which API ms |
| --- | ---: | ---: | ---: |
{page_lines}

**Slowest page: {max(p['render_ms'] for p in pages.values()):,} ms** (target ≤ 2,000 ms).
**Worst query p95: {worst[1]['p95_ms']} ms** ({worst[0]}; target ≤ 300 ms); over 300 ms: {len(over)} of {len(queries)}.

| page: endpoint | p50 ms | p95 ms | max ms |
| --- | ---: | ---: | ---: |
{query_lines}
"""
    record("Dashboards at 10M calls", body)


if __name__ == "__main__":
    main()
