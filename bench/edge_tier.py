"""The five-minute edge tier (`calls_5m`) on and off, side by side, on the growth stores
(bench/out/growth-<calls>/): the PostgreSQL side by side's ragged-range questions in process (the
query functions the API calls), each with the tier and with the plan it replaced (raw calls for the
partial edge hours, the hourly and daily tiers between), interleaved, `--repeat` times after a
warm-up; both answers checked equal; with `--signals N`, every signal family evaluated at the
store's last call (as the minute job does) with the tier on and off, alternately, N times each.
Then, on the first store, the same questions over HTTP against the real service, with `/health` as the floor an HTTP round trip costs, to show how much of an API
answer is the query and how much the service around it.

Opening a store applies pending migrations (the tier's back-fill reads every call once).

Usage: python -m bench.edge_tier [--sizes 10000000,100000000] [--repeat 10] [--signals 3] [--section NAME]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.growth import _percentile, _settings, _size, store_of
from bench.report import record

SECTION = "Five-minute edge tier: on and off, in process and over HTTP"


def _questions() -> dict[str, tuple[Callable[[Any, datetime], object], str, tuple[tuple[str, str], ...], int]]:
    """Name → (in-process read given the range's end, API path, API parameters, days)."""
    from warehouse.queries import attribution, series
    from warehouse.queries.scope import Scope

    every = Scope.all()
    return {
        "spend per team, last 7 days": (
            lambda wh, end: attribution.usage_by_capped(wh, every, "team", end - timedelta(days=7), end, limit=100,
                                                        measures=["cost_usd"]),
            "/v1/usage", (("dimension", "team"), ("measure", "cost_usd")), 7),
        "top 20 users, last 24 hours": (
            lambda wh, end: series.top_n(wh, every, end - timedelta(days=1), end, dimension="user_id", n=20),
            "/v1/top", (("dimension", "user_id"), ("n", "20")), 1),
        "spend per route within one team, 30 days": (
            lambda wh, end: attribution.usage_by_capped(wh, every, "route", end - timedelta(days=30), end,
                                                        {"team": ["data"]}, limit=100, measures=["cost_usd"]),
            "/v1/usage", (("dimension", "route"), ("filter", "team:data"), ("measure", "cost_usd")), 30),
    }


@contextmanager
def _tier_off() -> Iterator[None]:
    """The plan before the tier: no five-minute tier, so raw edge hours and the hourly / daily tiers."""
    from warehouse.queries import hybrid

    five = hybrid._five_minute
    hybrid._five_minute = lambda *a, **k: None
    try:
        yield
    finally:
        hybrid._five_minute = five


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(_percentile(samples, 0.95), 1)}


def _signals(wh: Any, calls: int, at: datetime, repeat: int) -> dict[str, dict[str, float]]:
    """Every signal family at `at` with the tier on and off, alternately (watermarks and incidents
    cleared before each pass, as `bench.growth` does): p50 seconds of the whole pass and ms per family."""
    from alerts.evaluate import evaluate_signals
    from llmledger.settings import Budget

    base = _settings(calls)
    settings = base.model_copy(update={"signals": base.signals.model_copy(
        update={"budgets": [Budget(team="data", monthly_usd=5000)]})})
    totals: dict[str, list[float]] = {"on": [], "off": []}
    families: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    for i in range(repeat + 1):
        for side in (("on", "off") if i % 2 == 0 else ("off", "on")):
            for table in ("signal_watermarks", "alert_incidents", "alert_events", "alert_outbox"):
                wh.command(f"TRUNCATE TABLE {table}")
            began = time.perf_counter()
            if side == "on":
                report = evaluate_signals(wh, settings, at=at)
            else:
                with _tier_off():
                    report = evaluate_signals(wh, settings, at=at)
            if i == 0:
                continue  # warm-up
            totals[side].append(time.perf_counter() - began)
            for name, seconds in report.seconds.items():
                families[side].setdefault(name, []).append(seconds * 1000)
    return {side: {"all_s": round(statistics.median(totals[side]), 3),
                   **{name: round(statistics.median(v)) for name, v in families[side].items()}}
            for side in totals}


def in_process(calls: int, repeat: int, signals: int = 0) -> dict[str, Any]:
    from llmledger.runtime import open_warehouse

    if not store_of(calls).exists():
        raise SystemExit(f"no store at {store_of(calls)}: build it with python -m bench.growth --build-only")
    wh = open_warehouse(_settings(calls))  # pending migrations (the tier's back-fill) run here
    try:
        end = wh.query_rows("SELECT max(ts) FROM calls")[0][0].replace(tzinfo=UTC) + timedelta(milliseconds=1)
        questions = _questions()
        for name, (read, *_rest) in questions.items():
            served = read(wh, end)
            with _tier_off():
                before = read(wh, end)
            if served.rows() != before.rows():  # type: ignore[attr-defined]
                raise AssertionError(f"{name}: the five-minute tier's answer differs from the raw edges' at {calls:,}")
        samples: dict[tuple[str, str], list[float]] = {(n, side): [] for n in questions for side in ("on", "off")}
        load_before = os.getloadavg()[0]
        for i in range(repeat):
            for name, (read, *_rest) in questions.items():
                for side in (("on", "off") if i % 2 == 0 else ("off", "on")):
                    began = time.perf_counter()
                    if side == "on":
                        read(wh, end)
                    else:
                        with _tier_off():
                            read(wh, end)
                    samples[(name, side)].append((time.perf_counter() - began) * 1000)
        load_after = os.getloadavg()[0]
        return {"calls": wh.scalar("SELECT count() FROM calls"), "end": end,
                "load": (round(load_before, 1), round(load_after, 1)),
                "timings": {f"{n} | {s}": _stats(v) for (n, s), v in samples.items()},
                "signals": _signals(wh, calls, end, signals) if signals else None,
                "signals_load": round(os.getloadavg()[0], 1)}
    finally:
        wh.close()


def over_http(calls: int, end: datetime, repeat: int) -> dict[str, Any]:
    """The questions (tier on) and `/health` over HTTP against the service on the store."""
    from bench.postgres_side_by_side import _serve

    service, url = _serve(store_of(calls))
    try:
        asks: dict[str, tuple[str, Any]] = {"/health": ("/health", ())}
        for name, (_read, path, params, days) in _questions().items():
            asks[name] = (path, (("start", (end - timedelta(days=days)).isoformat()), ("end", end.isoformat()),
                                 *params))
        return time_asks(url, asks, repeat)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(120)


def time_asks(url: str, asks: dict[str, tuple[str, Any]], repeat: int) -> dict[str, Any]:
    """Each ask (name → path and query parameters) over HTTP, `repeat` times interleaved after a
    warm-up: p50 / p95 ms per ask and the 1-minute load before and after."""
    import httpx

    samples: dict[str, list[float]] = {name: [] for name in asks}
    load_before = os.getloadavg()[0]
    with httpx.Client(base_url=url, timeout=600) as http:
        for path, params in asks.values():
            http.get(path, params=params).raise_for_status()
        for _ in range(repeat):
            for name, (path, params) in asks.items():
                began = time.perf_counter()
                http.get(path, params=params).raise_for_status()
                samples[name].append((time.perf_counter() - began) * 1000)
    return {"load": (round(load_before, 1), round(os.getloadavg()[0], 1)),
            "timings": {name: _stats(v) for name, v in samples.items()}}


def report(results: dict[int, dict[str, Any]], http: dict[str, Any] | None, first: int, repeat: int) -> str:
    sizes = list(results)
    head = " | ".join(f"{_size(s)} tier on p50 / p95 | {_size(s)} tier off p50 / p95" for s in sizes)
    lines = []
    for name in _questions():
        cells = []
        for r in results.values():
            on, off = r["timings"][f"{name} | on"], r["timings"][f"{name} | off"]
            cells += [f"{on['p50_ms']} / {on['p95_ms']}", f"{off['p50_ms']} / {off['p95_ms']}"]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    loads = "; ".join(f"{_size(s)}: {r['calls']:,} calls, 1-minute load {r['load'][0]} before, {r['load'][1]} after"
                      for s, r in results.items())
    body = f"""
The PostgreSQL side by side's ragged-range questions (ranges end at the store's last call), in process
(the query functions the API calls, no HTTP): with the five-minute tier `calls_5m` (tier on: every
whole five-minute bucket of a range up to a week from it, raw calls for under five minutes at each
edge) and with the plan before it (tier off: raw calls for the partial edge hours, the hourly and
daily tiers between), interleaved, {repeat} times each after a warm-up; both answers checked equal.
Top users (per user: not kept by the tier) and the 30-day question (longer than a week) plan the same
either way: their two columns show the run's noise. Load: {loads}. The machine is shared: figures
under a load above 2 are upper bounds for a quiet one.

| question | {head} |
| --- |{' ---: |' * (2 * len(sizes))}
{chr(10).join(lines)}
"""
    measured = {s: r for s, r in results.items() if r["signals"]}
    if measured:
        families = sorted({f for r in measured.values() for f in r["signals"]["on"] if f != "all_s"})
        cols = " | ".join(f"{_size(s)} tier on | {_size(s)} tier off" for s in measured)

        def cells(family: str) -> str:
            return " | ".join(f"{r['signals']['on'].get(family, '')} | {r['signals']['off'].get(family, '')}"
                              for r in measured.values())

        table = "\n".join([f"| **all (s)** | {cells('all_s')} |", *(f"| {f} | {cells(f)} |" for f in families)])
        ends = ", ".join(f"{_size(s)} {r['signals_load']}" for s, r in measured.items())
        body += f"""
Every signal family evaluated at the store's last call (watermarks cleared, as the minute job finds
them after a restart), tier on and off alternately, p50 ms per family (1-minute load at the end: {ends}).

| signal family | {cols} |
| --- |{' ---: |' * (2 * len(measured))}
{table}
"""
    if http:
        rows = "\n".join(f"| {name} | {t['p50_ms']} / {t['p95_ms']} |" for name, t in http["timings"].items())
        body += f"""
Over HTTP on the {_size(first)} store (`llmledger up`, its own process; tier on), {repeat} times each,
interleaved; `/health` is the floor an HTTP round trip costs. Load {http['load'][0]} before, {http['load'][1]} after.

| ask | p50 / p95 ms |
| --- | ---: |
{rows}
"""
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000000,100000000")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP pass")
    parser.add_argument("--signals", type=int, default=0, help="signal evaluations per side (0: none)")
    parser.add_argument("--section", default=SECTION, help="the BENCHMARKS.md section to (re)write")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        results[size] = in_process(size, args.repeat, args.signals)
        print(size, results[size], flush=True)
    http = None if args.no_http else over_http(sizes[0], results[sizes[0]]["end"], args.repeat)
    print(http, flush=True)
    body = report(results, http, sizes[0], args.repeat)
    print(body)
    record(args.section, body)


if __name__ == "__main__":
    main()
