"""Push benchmark: sustained throughput of `POST /v1/events` with durable acknowledgement.

1. Starts `llmledger up` in a child process on a fresh store (loopback only).
2. A separate load process (also a child) pre-builds distinct JSON bodies of `--batch` canonical
   calls, then keeps `--concurrency` requests in flight until `--events` were acknowledged or
   `--seconds` passed, recording each request's acknowledgement latency (send → 200, i.e. parsed,
   validated, fsynced to the spool).
3. Waits until the service has flushed everything to the warehouse and checks the count via the
   read API, so the reported end-to-end rate is "acknowledged and queryable".

Runs two shapes by default: large batches (what SDK batch exporters send: OTel 512, LiteLLM
up to its batch size) and small ones (100 events per request), to show the per-request cost.

Many SDK processes push at once; `--concurrency` is how many requests are in flight together (what
lets the service coalesce them into one prepare and one fsync).

`--baseline DIR` measures another checkout's service (e.g. `git worktree add ../base main`) alternately
with this one, `--repeat` times per request size, and records medians side by side in a section of
its own (a change's effect on a shared machine is only visible against a baseline run beside it).
It then measures the web stack's floor: the same app served as `llmledger up` serves it, plus an
endpoint with the push endpoint's dependencies (state, API key) that reads the body and answers a
fixed result, alternated with `/v1/events` in that one server.

Usage: python -m bench.push [--events 600000] [--batch 1000 --batch 100] [--concurrency 32] [--seconds 60]
       python -m bench.push --baseline ../base [--repeat 3] [--batch 100 --batch 1000] [--events 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.growth import wait_healthy
from bench.report import record

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bodies(count: int, batch: int, worker: int) -> list[bytes]:
    """Distinct request bodies (unique event ids), built before the clock starts."""
    import orjson

    template = {"ts": "2026-11-01T10:00:00.000Z", "project": "bench", "user_id": "u1", "team": "search",
                "route": "/chat", "feature": "assistant", "provider": "openai", "model": "gpt-4o",
                "input_tokens": 1200, "cache_read_tokens": 1024, "output_tokens": 200, "reasoning_tokens": 0,
                "latency_ms": 1500, "ttft_ms": 300, "status": "ok"}
    bodies = []
    for b in range(count):
        records = []
        for i in range(batch):
            record = dict(template)
            record["event_id"] = f"w{worker}-b{b}-{i}"
            record["user_id"] = f"u{i % 500}"
            record["ts"] = f"2026-11-01T{(b // 60) % 24:02d}:{b % 60:02d}:{i % 60:02d}.000Z"
            records.append(record)
        bodies.append(orjson.dumps(records))
    return bodies


def load(url: str, events: int, batch: int, concurrency: int, seconds: float, path: str = "/v1/events"
         ) -> dict[str, object]:
    """The load process: returns acknowledged events, wall time and latencies (ms)."""
    import httpx

    per_worker = -(-events // batch // concurrency)
    bodies = [_bodies(per_worker, batch, w) for w in range(concurrency)]
    latencies: list[float] = []
    acked = [0] * concurrency
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def worker(w: int) -> None:
        with httpx.Client(base_url=url, timeout=60, headers={"content-type": "application/json"}) as http:
            for body in bodies[w]:
                if time.monotonic() > deadline:
                    return
                sent = time.perf_counter()
                response = http.post(path, content=body)
                took = (time.perf_counter() - sent) * 1000
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    if response.status_code == 429:
                        time.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                with lock:
                    latencies.append(took)
                acked[w] += batch

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {"acked": sum(acked), "wall_s": wall, "latencies_ms": latencies, "errors": errors[:5],
            "error_count": len(errors)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run(events: int, batch: int, concurrency: int, seconds: float, root: Path = ROOT) -> dict[str, object]:
    """One measured run of the service of the checkout at `root` (its code on PYTHONPATH)."""
    import httpx

    load_before = os.getloadavg()[0]  # other work on the machine skews the numbers: say so
    work = Path(tempfile.mkdtemp(prefix="llmledger-bench-push-"))
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LLMLEDGER_HOME": str(work / "home"), "PYTHONPATH": str(root)}
    env.pop("LLMLEDGER_CONFIG", None)
    service = subprocess.Popen([sys.executable, "-m", "llmledger", "up", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=work, env=env, stdout=(work / "service.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, work / "service.log", seconds=60)
        cpu_before = _cpu_seconds(service.pid)
        loader = subprocess.run(
            [sys.executable, "-m", "bench.push", "--load", url, "--events", str(events), "--batch", str(batch),
             "--concurrency", str(concurrency), "--seconds", str(seconds)],
            cwd=ROOT, env=env, capture_output=True, check=True)
        result = json.loads(loader.stdout)
        acked_at = time.perf_counter()
        while httpx.get(f"{url}/health", timeout=10).json()["spool"]["pending_rows"] > 0:
            time.sleep(0.05)
        drain_s = time.perf_counter() - acked_at
        cpu_service = _cpu_seconds(service.pid) - cpu_before
        health = httpx.get(f"{url}/health", timeout=10).json()["spool"]
        stored = httpx.get(f"{url}/v1/totals", timeout=60, params={"start": "2026-11-01", "end": "2026-11-02"}
                           ).json()["rows"][0]["calls"]
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(120)
        shutil.rmtree(work, ignore_errors=True)
    lat = result.pop("latencies_ms")
    return {
        **result,
        "events_per_s": result["acked"] / result["wall_s"],
        "end_to_end_events_per_s": result["acked"] / (result["wall_s"] + drain_s),
        "drain_s": drain_s,
        "stored": stored,
        "ack_p50_ms": _percentile(lat, 0.50),
        "ack_p99_ms": _percentile(lat, 0.99),
        "ack_max_ms": max(lat) if lat else float("nan"),
        "requests": len(lat),
        "service_cpu_s": cpu_service,
        "group_commits": health["group_commits"],
        "flushes": health["flushes"],
        "batch": batch,
        "concurrency": concurrency,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def report(results: list[dict[str, object]]) -> str:
    head = """
Sustained `POST /v1/events` into one `llmledger up` process (embedded chDB) from a separate load process
on loopback. A 200 means parsed, validated and fsynced to the spool (group commit); the flush thread then
writes to the warehouse. Service CPU counts everything the service process did from the first
request until the last event was queryable (HTTP, parsing, validation, spool, warehouse writes and
their rollups). Targets at 100 events per request: ≥ 50,000 events/s acknowledged, ≤ 20 µs of service
CPU per event.

| events per request × in flight | load avg before / after |  acknowledged | **acknowledged events/s** | ack p50 / p99 / max (ms) | drain after last ack | end-to-end events/s (queryable) | service CPU | **µs per event** | group commits / flushes |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
"""
    rows = [
        f"| {r['batch']} × {r['concurrency']} | {r['load_before']:.1f} / {r['load_after']:.1f} "
        f"| {r['acked']:,} in {r['wall_s']:.1f} s ({r['error_count']} errors) "
        f"| **{r['events_per_s']:,.0f}** | {r['ack_p50_ms']:.0f} / {r['ack_p99_ms']:.0f} / {r['ack_max_ms']:.0f} "
        f"| {r['drain_s']:.2f} s | {r['end_to_end_events_per_s']:,.0f} ({r['stored']:,} rows) "
        f"| {r['service_cpu_s']:.1f} s | **{r['service_cpu_s'] / max(r['acked'], 1) * 1e6:.0f}** "
        f"| {r['group_commits']:,} / {r['flushes']} |"
        for r in results
    ]
    return head + "\n".join(rows) + "\n"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _us_per_event(r: dict[str, object]) -> float:
    return float(r["service_cpu_s"]) / max(int(r["acked"]), 1) * 1e6  # type: ignore[arg-type]


def side_by_side(baseline: Path, events: int, batches: list[int], concurrency: int, seconds: float,
                 repeat: int) -> str:
    """Baseline and this checkout alternately, `repeat` times per request size; medians and every run."""
    runs: dict[tuple[int, str], list[dict[str, object]]] = {}
    for batch in batches:
        for _ in range(repeat):
            for label, root in (("baseline", baseline), ("this", ROOT)):
                result = run(events, batch, concurrency, seconds, root=root)
                runs.setdefault((batch, label), []).append(result)
                print(f"{label} {batch}/request: {_us_per_event(result):.1f} µs/event, "
                      f"{result['events_per_s']:,.0f} events/s, load {result['load_before']:.1f}", flush=True)
    lines = [f"""
Sustained `POST /v1/events` as in the section above (one `llmledger up`, a separate load process,
{concurrency} requests in flight, {events:,} events a run), the baseline checkout `{baseline.name}` and this
one alternately, {repeat} runs each per request size. µs per event = service CPU (HTTP, parsing,
validation, spool, warehouse writes and rollups, until the last event is queryable) ÷ events.

| events per request | checkout | **µs per event** (median) | runs | acknowledged events/s (median) | runs | load avg before each run |
| --- | --- | --- | --- | --- | --- | --- |
"""]
    for batch in batches:
        for label in ("baseline", "this"):
            rs = runs[(batch, label)]
            cpu = [_us_per_event(r) for r in rs]
            rate = [float(r["events_per_s"]) for r in rs]  # type: ignore[arg-type]
            errors = sum(int(r["error_count"]) for r in rs)  # type: ignore[arg-type]
            loads = [float(r["load_before"]) for r in rs]  # type: ignore[arg-type]
            name = baseline.name if label == "baseline" else "this branch"
            lines.append(
                f"| {batch} | {name} | **{_median(cpu):.1f}** | {', '.join(f'{c:.1f}' for c in cpu)} "
                f"| {_median(rate):,.0f} | {', '.join(f'{x:,.0f}' for x in rate)} "
                f"| {', '.join(f'{load:.1f}' for load in loads)}{f' ({errors} errors)' if errors else ''} |")
    return lines[0] + "\n".join(lines[1:]) + "\n"


FLOOR_PATH = "/bench/empty"


def serve_floor(port: int) -> None:
    """The service app with `FLOOR_PATH` added, under uvicorn as `llmledger up` runs it."""
    import uvicorn
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from llmledger.service.app import create_app
    from llmledger.service.auth import Ingester, State
    from llmledger.service.body import read_body
    from llmledger.service.server import prepare_store
    from llmledger.settings import Settings

    settings = Settings()
    prepare_store(settings, demo=False)
    app = create_app(settings)

    async def empty(request, state, principal):  # noqa: ANN001, ANN202, ARG001 - typed below
        await read_body(request, state.settings.service.max_body_bytes)
        return JSONResponse({"accepted": 0, "rejected": 0, "errors": [], "unknown_fields": [], "tool_runs": 0})

    # real objects, not this module's postponed (string) annotations, which FastAPI would look up here
    empty.__annotations__ = {"request": Request, "state": State, "principal": Ingester, "return": JSONResponse}
    app.post(FLOOR_PATH)(empty)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def floor(events: int, batch: int, concurrency: int, seconds: float, rounds: int) -> str:
    """Service CPU per request of `FLOOR_PATH` and of `/v1/events`, alternately in one server."""
    import httpx

    work = Path(tempfile.mkdtemp(prefix="llmledger-bench-push-floor-"))
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LLMLEDGER_HOME": str(work / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("LLMLEDGER_CONFIG", None)
    service = subprocess.Popen([sys.executable, "-m", "bench.push", "--serve-floor", str(port)], cwd=work, env=env,
                               stdout=(work / "service.log").open("wb"), stderr=subprocess.STDOUT)
    runs: dict[str, list[tuple[float, float, float]]] = {}
    try:
        wait_healthy(url, work / "service.log", seconds=60)
        for _ in range(rounds):
            for path in (FLOOR_PATH, "/v1/events"):
                load_before = os.getloadavg()[0]
                cpu_before = _cpu_seconds(service.pid)
                loader = subprocess.run(
                    [sys.executable, "-m", "bench.push", "--load", url, "--path", path, "--events", str(events),
                     "--batch", str(batch), "--concurrency", str(concurrency), "--seconds", str(seconds)],
                    cwd=ROOT, env=env, capture_output=True, check=True)
                result = json.loads(loader.stdout)
                while httpx.get(f"{url}/health", timeout=10).json()["spool"]["pending_rows"] > 0:
                    time.sleep(0.05)
                cpu = _cpu_seconds(service.pid) - cpu_before
                requests = max(int(result["acked"]) // batch, 1)
                runs.setdefault(path, []).append((cpu / requests * 1e6, result["acked"] / result["wall_s"], load_before))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(120)
        shutil.rmtree(work, ignore_errors=True)
    lines = [f"""
**The web stack's floor** ({batch} events per request, {concurrency} in flight, {events:,} events a run, {rounds}
rounds alternating in one server): `{FLOOR_PATH}` has the push endpoint's dependencies (state, API key),
reads the body and answers a fixed result; `/v1/events` is the real endpoint, its CPU counted until
the last event is queryable.

| endpoint | µs of service CPU per request (median) | per event | runs (µs per request) | events/s sent (median) | load avg before each run |
| --- | --- | --- | --- | --- | --- |
"""]
    for path, rs in runs.items():
        per_request = _median([r[0] for r in rs])
        lines.append(f"| `{path}` | {per_request:,.0f} | {per_request / batch:.1f} | {', '.join(f'{r[0]:,.0f}' for r in rs)} "
                     f"| {_median([r[1] for r in rs]):,.0f} | {', '.join(f'{r[2]:.1f}' for r in rs)} |")
    return lines[0] + "\n".join(lines[1:]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--batch", type=int, action="append", help="events per request (repeatable)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alternately with this one")
    parser.add_argument("--repeat", type=int, default=3, help="runs per checkout and request size (--baseline)")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: run as the load process against URL
    parser.add_argument("--path", default="/v1/events", help=argparse.SUPPRESS)  # internal: the load's endpoint
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)  # internal: serve the floor app on PORT
    args = parser.parse_args()
    batches = args.batch or [1000, 100]
    if args.load:
        print(json.dumps(load(args.load, args.events, batches[0], args.concurrency, args.seconds, args.path)))
        return
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return
    if args.baseline:
        body = side_by_side(args.baseline.resolve(), args.events, batches, args.concurrency, args.seconds,
                            args.repeat)
        body += floor(args.events, min(batches), args.concurrency, args.seconds, args.repeat)
        print(body)
        record("Push API: CPU per event, side by side", body)
        return
    results = [run(args.events, batch, args.concurrency, args.seconds) for batch in batches]
    body = report(results)
    print(body)
    record("Push API (durable acknowledgement)", body)


if __name__ == "__main__":
    main()
