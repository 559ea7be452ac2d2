"""Durable acknowledgement: `kill -9` of a service subprocess during sustained ingest, then a
restart, leaves every acknowledged event in the warehouse exactly once (with and without
event_id), replayed from the spool."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.factories import make_call
from tests.service_support import start_subprocess


def test_kill_9_during_ingest_then_restart_keeps_every_acknowledged_event_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # flush rarely, so at the kill most acknowledged events exist only in the spool
    first = start_subprocess(home, env={"LLMLEDGER_SERVICE__FLUSH_INTERVAL_S": "1.5"})
    acked: list[str] = []
    stop = threading.Event()
    errors: list[str] = []

    def ingest(worker: int) -> None:
        with httpx.Client(base_url=first.url, timeout=10) as http:
            batch_no = 0
            while not stop.is_set():
                users = [f"u{worker}-{batch_no}-{i}" for i in range(250)]
                # every other event has no event_id: the warehouse derives one from its content
                records = [make_call(user_id=u, event_id=u if i % 2 else None,
                                     ts=f"2025-11-03T10:{i % 60:02d}:00.000Z") for i, u in enumerate(users)]
                try:
                    r = http.post("/v1/events", json=records)
                except httpx.HTTPError:
                    return  # the service died mid-request: this batch was not acknowledged
                if r.status_code == 200:
                    acked.extend(users)
                else:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                batch_no += 1

    workers = [threading.Thread(target=ingest, args=(w,)) for w in range(3)]
    for w in workers:
        w.start()
    time.sleep(2.0)
    first.kill9()
    stop.set()
    for w in workers:
        w.join()
    assert not errors and 1000 < len(acked) < 100_000

    second = start_subprocess(home)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            spool = httpx.get(f"{second.url}/health").json()["spool"]
            if spool["replayed_entries"] and spool["pending_rows"] == 0:
                break
            time.sleep(0.2)
        assert spool["replayed_entries"] > 0
        rows = httpx.get(f"{second.url}/v1/usage", timeout=30, params={
            "start": "2025-11-03", "end": "2025-11-04", "dimension": "user_id", "limit": 100_000}).json()["rows"]
    finally:
        assert second.stop() == 0
    calls = {r["key"]: r["calls"] for r in rows}
    missing = set(acked) - set(calls)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert set(calls.values()) == {1}, "an event was stored twice"


def test_sigterm_flushes_everything_pending(tmp_path: Path) -> None:
    home = tmp_path / "home"
    slow = {"LLMLEDGER_SERVICE__FLUSH_INTERVAL_S": "600"}  # only the shutdown can flush
    first = start_subprocess(home, env=slow)
    records = [make_call(event_id=f"t{i}", user_id=f"t{i}") for i in range(1000)]
    assert httpx.post(f"{first.url}/v1/events", json=records, timeout=30).status_code == 200
    assert httpx.get(f"{first.url}/health").json()["spool"]["pending_rows"] == 1000
    assert first.stop() == 0  # SIGTERM: graceful, flushed
    assert list((home / "spool").glob("*.wal")) == []  # segments are deleted only once in the warehouse
    second = start_subprocess(home, env=slow)
    try:
        health = httpx.get(f"{second.url}/health").json()["spool"]
        totals = httpx.get(f"{second.url}/v1/totals", params={"start": "2025-11-03", "end": "2025-11-04"}).json()
    finally:
        assert second.stop() == 0
    assert health["replayed_entries"] == 0 and totals["rows"][0]["calls"] == 1000
