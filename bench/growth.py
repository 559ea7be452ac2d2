"""Growth benchmark: the same month of simulated traffic at 1M, 10M and 100M calls, every read the
dashboards make and every signal family, and what the store costs in disk and memory.

For each size (kept under bench/out/growth-<calls>/, built once): 30 days of simulated calls ending
at the build, with their tool runs, the self-hosted nodes' samples and routing replays, through the
real pipeline (day by day, in slices, so memory stays bounded). Then:

1. `llmledger up` runs on the store in a child process (scheduler off); its RSS is read once idle
   after start and once idle after serving the reads.
2. Every page of the dashboard is rendered under Streamlit's AppTest over the store's last 30
   days, recording each API call it makes; with a few reads the issue names that no page makes
   (`/v1/cache`, per-user usage), each call is replayed `--repeat` times over HTTP, interleaved
   (call 1, call 2, …, call 1, …) so background load falls on all of them alike.
3. With the service stopped, every signal family is evaluated at the store's last instant, as the
   minute job does, `--signals-repeat` times after a warm-up (watermarks cleared each time).

Each size's results go to bench/out/growth-<calls>.json, so sizes can be run one at a time; the
BENCHMARKS.md section is rendered from every size measured so far. The machine's load average is
sampled throughout and reported with the figures.

Usage: python -m bench.growth [--sizes 1000000,10000000,100000000] [--repeat 20] [--signals-repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import record

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DAYS = 30
SLICE_ROWS = 250_000
# reads the issue measured that no page makes (the pages' own calls are recorded, not listed)
EXTRA_READS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("/v1/cache", (("grain", "day"), ("dimension", "route"))),
    ("/v1/cache", (("grain", "hour"),)),
    ("/v1/usage", (("dimension", "user_id"), ("limit", "100"))),
    ("/v1/top", (("dimension", "user_id"), ("n", "20"))),
)


def store_of(calls: int) -> Path:
    return OUT / f"growth-{calls}"


def _settings(calls: int) -> Any:
    from llmledger.settings import Settings

    return Settings(home=OUT / f"growth-{calls}-home", warehouse={"path": store_of(calls)},
                    scheduler={"enabled": False})


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def build(calls: int) -> dict[str, Any]:
    """Simulate and ingest the month unless the store holds it; what the build took (kept beside it)."""
    import polars as pl

    from ingest.pipeline import Pipeline
    from ingest.tool_runs import ToolRunWriter
    from llmledger.demo import demo_window, seed_nodes, seed_routing_replays, self_hosted_calls
    from llmledger.runtime import open_warehouse
    from llmledger.simulator import SimulationConfig, iter_days

    note = OUT / f"growth-{calls}-build.json"
    settings = _settings(calls)
    with open_warehouse(settings) as wh:  # migrates: a store from an older run gains new rollups
        have = int(wh.scalar("SELECT count() FROM calls"))
        if have >= calls * 0.95 and note.exists():
            return json.loads(note.read_text())
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start, end = demo_window(DAYS, now.date())
        end = min(end, now)
        config = SimulationConfig(start=start, days=DAYS, calls_per_day=calls // DAYS, seed=7, incidents=True,
                                  end_at=end)
        began, cpu, loads = time.perf_counter(), _cpu(), [os.getloadavg()[0]]
        simulated = 0.0
        runs = ToolRunWriter(wh)
        self_hosted: list[pl.DataFrame] = []
        with Pipeline(wh, settings) as pipeline:
            days = iter_days(config)
            while True:
                at = time.perf_counter()
                day = next(days, None)
                simulated += time.perf_counter() - at
                if day is None:
                    break
                for chunk in day.calls.iter_slices(SLICE_ROWS):
                    pipeline.ingest_frame(chunk, source="simulator")
                runs.write(day.tool_runs)
                self_hosted.append(self_hosted_calls(day.calls))
                loads.append(os.getloadavg()[0])
                print(f"  built {day.day} ({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
        seed_nodes(wh, settings, pl.concat(self_hosted), config.range_start, end, seed=7)
        seed_routing_replays(wh, end, seed=7)
        built = {"calls": int(wh.scalar("SELECT count() FROM calls")), "seconds": round(time.perf_counter() - began),
                 "cpu_s": round(_cpu() - cpu), "simulate_s": round(simulated), "load_mean": round(statistics.mean(loads), 1),
                 "start": config.range_start.isoformat(), "end": end.isoformat()}
    note.write_text(json.dumps(built))
    return built


def _store_bytes(calls: int) -> dict[str, int]:
    """Bytes on disk: the whole store directory, and the active parts of `calls` and of the rollups."""
    from warehouse.client import Warehouse

    total = sum(p.stat().st_size for p in store_of(calls).rglob("*") if p.is_file())
    with Warehouse.embedded(store_of(calls), "llmledger") as wh:
        rows = wh.query_rows("SELECT table, sum(bytes_on_disk) FROM system.parts WHERE active AND database = "
                             "'llmledger' GROUP BY table")
    parts = {str(t): int(b) for t, b in rows}
    rollups = sum(b for t, b in parts.items() if t.startswith(("calls_", "tool_runs_hourly")))
    return {"store": total, "calls": parts.get("calls", 0), "rollups": rollups}


class LoadSampler:
    """The 1-minute load average, sampled every few seconds while a phase runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(5)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        return {"mean": round(statistics.mean(self.samples), 1), "max": round(max(self.samples), 1)}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, log: Path, *, seconds: float = 300) -> None:
    """Until the service at `url` answers `/health` with 200; the tail of its `log` in the error
    when it does not within `seconds` (the benchmarks start `llmledger up` in a child process)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(log.read_text()[-2000:])


def _rss_mib(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20)


def serve_and_read(calls: int, repeat: int, end: datetime) -> dict[str, Any]:
    """Run the service on the store, record the pages' calls, replay them; idle RSS before and after."""
    import dashboards.client as client
    from bench.page_reads import label, month_query, record_pages

    settings = _settings(calls)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LLMLEDGER_HOME": str(settings.home), "LLMLEDGER_WAREHOUSE__PATH": str(store_of(calls)),
           "LLMLEDGER_SCHEDULER__ENABLED": "false", "PYTHONPATH": str(ROOT)}
    env.pop("LLMLEDGER_CONFIG", None)
    log = OUT / f"growth-{calls}-service.log"
    service = subprocess.Popen([sys.executable, "-m", "llmledger", "up", "--no-dashboard", "--host", "127.0.0.1",
                                "--port", str(port)], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, log)
        time.sleep(5)
        idle_start = _rss_mib(service.pid)
        with LoadSampler() as load:
            pages, recorded = record_pages(url, month_query(end - timedelta(milliseconds=1)))
            first = month_query(end - timedelta(milliseconds=1))
            window = (("start", first["from"]), ("end", (end.date() + timedelta(days=1)).isoformat()))
            calls_to_make = {label(page, path, pairs): (page, path, pairs) for page, path, pairs, _ in recorded}
            for path, pairs in EXTRA_READS:
                calls_to_make[label("extra", path, pairs)] = ("extra", path, window + pairs)
            samples: dict[str, list[float]] = {name: [] for name in calls_to_make}
            for name, (page, path, pairs) in calls_to_make.items():  # warm
                client.fetch(url, None, page, path, pairs)
            for _ in range(repeat):
                for name, (page, path, pairs) in calls_to_make.items():
                    began = time.perf_counter()
                    client.fetch(url, None, page, path, pairs)
                    samples[name].append((time.perf_counter() - began) * 1000)
        time.sleep(5)
        idle_after = _rss_mib(service.pid)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(120)
    reads = {name: {"p50_ms": round(statistics.median(s), 1), "p95_ms": round(_percentile(s, 0.95), 1),
                    "max_ms": round(max(s), 1)} for name, s in samples.items()}
    return {"pages": pages, "reads": reads, "idle_rss_mib": idle_start, "idle_rss_after_reads_mib": idle_after,
            "read_load": load.summary()}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def evaluate_signals(calls: int, repeat: int, at: datetime) -> dict[str, Any]:
    """Every signal family at `at`, as the minute job evaluates them (watermarks cleared)."""
    from alerts.evaluate import evaluate_signals as evaluate
    from llmledger.settings import Budget
    from warehouse.client import Warehouse

    settings = _settings(calls).model_copy(update={"signals": _settings(calls).signals.model_copy(
        update={"budgets": [Budget(team="data", monthly_usd=5000)]})})
    totals: list[float] = []
    families: dict[str, list[float]] = {}
    with LoadSampler() as load, Warehouse.from_settings(settings) as wh:
        for i in range(repeat + 1):
            for table in ("signal_watermarks", "alert_incidents", "alert_events", "alert_outbox"):
                wh.command(f"TRUNCATE TABLE {table}")
            began = time.perf_counter()
            report = evaluate(wh, settings, at=at)
            if i == 0:
                continue  # warm-up
            totals.append(time.perf_counter() - began)
            for name, seconds in report.seconds.items():
                families.setdefault(name, []).append(seconds)
    return {"p50_s": round(statistics.median(totals), 3), "max_s": round(max(totals), 3),
            "families_p50_ms": {k: round(statistics.median(v) * 1000) for k, v in families.items()},
            "load": load.summary()}


def run(calls: int, repeat: int, signals_repeat: int) -> dict[str, Any]:
    """Build (once) and measure one size; the result is kept in bench/out/growth-<calls>.json."""
    load_before = os.getloadavg()
    built = build(calls)
    end = datetime.fromisoformat(built["end"])
    from warehouse.client import Warehouse

    with Warehouse.embedded(store_of(calls), "llmledger") as wh:
        last = wh.query_rows("SELECT max(ts) FROM calls")[0][0].replace(tzinfo=UTC)
    result = {"calls": built["calls"], "build": built, "bytes": _store_bytes(calls),
              "load_before": [round(x, 1) for x in load_before],
              **serve_and_read(calls, repeat, end),
              "signals": evaluate_signals(calls, signals_repeat, last + timedelta(milliseconds=1))}
    (OUT / f"growth-{calls}.json").write_text(json.dumps(result, indent=1))
    return result


def _measured() -> dict[int, dict[str, Any]]:
    found = {}
    for path in OUT.glob("growth-*.json"):
        name = path.stem.removeprefix("growth-")
        if name.isdigit():
            found[int(name)] = json.loads(path.read_text())
    return dict(sorted(found.items()))


def _size(calls: int) -> str:
    return f"{calls / 1e6:.0f}M" if calls >= 1e6 else f"{calls / 1e3:.0f}k"


def report(results: dict[int, dict[str, Any]]) -> str:
    """The BENCHMARKS.md section over every size measured."""
    sizes = list(results)
    names = sorted({n for r in results.values() for n in r["reads"]},
                   key=lambda n: -max(r["reads"].get(n, {}).get("p95_ms", 0) for r in results.values()))
    head = " | ".join(f"{_size(s)} p50 / p95" for s in sizes)
    ratio = len(sizes) >= 2
    lines = []
    for name in names:
        cells = " | ".join(f"{r['reads'][name]['p50_ms']} / {r['reads'][name]['p95_ms']}" if name in r["reads"] else "—"
                           for r in results.values())
        growth = ""
        if ratio:
            a, b = results[sizes[-2]]["reads"].get(name), results[sizes[-1]]["reads"].get(name)
            growth = f" | {b['p50_ms'] / a['p50_ms']:.2f}×" if a and b else " | —"
        lines.append(f"| {name} | {cells}{growth} |")
    signal_names = sorted({f for r in results.values() for f in r["signals"]["families_p50_ms"]})
    signal_lines = [f"| {f} | " + " | ".join(str(r["signals"]["families_p50_ms"].get(f, "—")) for r in results.values())
                    + " |" for f in signal_names]
    store_lines = []
    for s, r in results.items():
        b, built = r["bytes"], r["build"]
        store_lines.append(
            f"| {_size(s)} | {r['calls']:,} | {b['store'] / 2**30:.2f} | {b['store'] / 2**20 / (r['calls'] / 1e6):.0f} "
            f"| {b['calls'] / 2**20 / (r['calls'] / 1e6):.0f} | {b['rollups'] / 2**20:.0f} | {built['seconds']:,} "
            f"({built['calls'] / max(built['seconds'], 1):,.0f} calls/s, load {built.get('load_mean', '?')}) "
            f"| {r['idle_rss_mib']} / {r['idle_rss_after_reads_mib']} |")
    loads = "; ".join(f"{_size(s)}: before {r['load_before'][0]}, reads mean {r['read_load']['mean']} "
                      f"(max {r['read_load']['max']}), signals mean {r['signals']['load']['mean']}"
                      for s, r in results.items())
    last = results[sizes[-1]]
    worst = max(last["reads"].items(), key=lambda kv: kv[1]["p95_ms"])
    return f"""
A month of simulated traffic (30 days, every incident, self-hosted nodes' samples) at each size,
through the real pipeline; the real service (`llmledger up`, embedded chDB) in its own process,
read over HTTP. Reads: every API call the dashboard pages make over the store's last 30 days
(recorded by rendering each page), plus reads the pages do not make (`extra`), each replayed
{last.get('repeat', 'N')} times, interleaved, warm. Signals: every family evaluated at the last
instant, as the minute job does. Machine load (1-minute average) during each phase: {loads}.
Figures taken under a load above 2 are upper bounds for a quiet machine.

**At {_size(sizes[-1])}: worst read p95 {worst[1]['p95_ms']} ms** ({worst[0]}); all signals p50
{last['signals']['p50_s']} s (max {last['signals']['max_s']} s).

| read (page: endpoint) | {head} |{' growth ' + _size(sizes[-2]) + '→' + _size(sizes[-1]) + ' (p50) |' if ratio else ''}
| --- |{' ---: |' * len(sizes)}{' ---: |' if ratio else ''}
{chr(10).join(lines)}

| signal family (p50 ms) | {' | '.join(_size(s) for s in sizes)} |
| --- |{' ---: |' * len(sizes)}
{chr(10).join(signal_lines)}
| **all (p50 / max s)** | {' | '.join(f"{r['signals']['p50_s']} / {r['signals']['max_s']}" for r in results.values())} |

| size | calls | store GiB | store MiB per 1M calls | of which `calls` MiB per 1M | rollups MiB | build s | service RSS MiB idle (after start / after the reads) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(store_lines)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000,100000000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--signals-repeat", type=int, default=5)
    parser.add_argument("--build-only", action="store_true", help="build the stores, measure nothing")
    parser.add_argument("--drop", action="store_true", help="remove each store after measuring it")
    args = parser.parse_args()
    for calls in (int(s) for s in args.sizes.split(",")):
        if args.build_only:
            print(json.dumps(build(calls)))
            continue
        result = run(calls, args.repeat, args.signals_repeat)
        result["repeat"] = args.repeat
        (OUT / f"growth-{calls}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({k: result[k] for k in ("calls", "bytes", "idle_rss_mib", "signals")}, indent=1))
        if args.drop:
            shutil.rmtree(store_of(calls), ignore_errors=True)
    body = report(_measured())
    print(body)
    record("Growth: 1M / 10M / 100M calls", body)


if __name__ == "__main__":
    main()
