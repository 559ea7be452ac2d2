"""The read API on the real service: numbers equal the query library's, money as decimal strings,
reads proceed while ingest runs, and hostile parameters are refused or bound — never executed."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import make_call
from tests.service_support import Running, service  # noqa: F401

RANGE = {"start": "2025-11-03T00:00:00Z", "end": "2025-11-04T00:00:00Z"}


def _seed(svc: Running) -> None:
    calls = [
        make_call(event_id="r1", team="search", model="gpt-4o", input_tokens=1000, cache_read_tokens=500,
                  cache_write_5m_tokens=100, output_tokens=100, ts="2025-11-03T10:00:00Z", tags={"env": "prod"}),
        make_call(event_id="r2", team="search", model="gpt-4o-mini", input_tokens=2000, output_tokens=50,
                  ts="2025-11-03T10:30:00Z", latency_ms=4000, ttft_ms=500),
        make_call(event_id="r3", team="ads", project="other", model="gpt-4o", input_tokens=10, output_tokens=5,
                  ts="2025-11-03T11:15:00Z"),
        make_call(event_id="r4", team="ads", model="claude-sonnet-4-5", provider="anthropic", input_tokens=3000,
                  cache_read_tokens=2000, output_tokens=300, reasoning_tokens=100, ts="2025-11-03T11:45:00Z"),
    ]
    with svc.client() as http:
        assert http.post("/v1/events", json=calls).status_code == 200
        assert http.post("/v1/events", json=[{"model": "x"}]).status_code == 422
    svc.wait_flushed()


def test_read_endpoints(service: Running) -> None:
    _seed(service)
    with service.client() as http:
        usage = http.get("/v1/usage", params={**RANGE, "dimension": "team"}).json()
        by_team = {r["key"]: r for r in usage["rows"]}
        assert set(by_team) == {"search", "ads"} and by_team["search"]["calls"] == 2
        cost = service.rows("SELECT sum(cost_usd) FROM calls WHERE team = 'search'")[0][0]
        assert isinstance(by_team["search"]["cost_usd"], str) and Decimal(by_team["search"]["cost_usd"]) == cost

        totals = http.get("/v1/totals", params={**RANGE, "filter": ["team:ads", "tag.env:prod"]}).json()["rows"]
        assert totals[0]["calls"] == 0
        totals = http.get("/v1/totals", params={**RANGE, "filter": ["tag.env:prod"]}).json()["rows"]
        assert totals[0]["calls"] == 1 and totals[0]["cache_read_tokens"] == 500

        series = http.get("/v1/timeseries", params={**RANGE, "grain": "hour", "measure": "calls",
                                                    "dimension": "model", "top": 1}).json()["rows"]
        assert {(r["bucket"], r["key"], r["value"]) for r in series} == {
            ("2025-11-03T10:00:00.000Z", "gpt-4o", 1), ("2025-11-03T10:00:00.000Z", "other", 1),
            ("2025-11-03T11:00:00.000Z", "gpt-4o", 1), ("2025-11-03T11:00:00.000Z", "other", 1)}
        day = http.get("/v1/timeseries", params={**RANGE, "grain": "day"}).json()["rows"]
        assert len(day) == 1 and Decimal(day[0]["value"]) > 0

        latency = http.get("/v1/latency", params={**RANGE, "dimension": "model"}).json()["rows"]
        assert {r["key"]: r["latency_p50_ms"] for r in latency}["gpt-4o-mini"] == pytest.approx(4000)

        cache = http.get("/v1/cache", params={**RANGE, "grain": "hour"}).json()["rows"]
        # OpenAI caches automatically: cached ÷ input of the calls that could be (r1 used the cache, r2
        # is long enough); Anthropic reports writes: read ÷ (read + write)
        assert cache[0]["hit_ratio"] == pytest.approx(500 / 3000) and cache[1]["hit_ratio"] == 1.0

        top = http.get("/v1/top", params={**RANGE, "dimension": "model", "measure": "input_tokens", "n": 2}).json()
        assert [r["key"] for r in top["rows"]] == ["claude-sonnet-4-5", "gpt-4o-mini"]
        for measure in ("cost_usd", "calls", "input_tokens", "output_tokens", "cache_read_tokens",
                        "cache_write_tokens", "reasoning_tokens", "errors", "provider_reported_cost_usd"):
            for path, extra in (("/v1/top", {"dimension": "team"}), ("/v1/timeseries", {"dimension": "team"}),
                                ("/v1/timeseries", {})):
                r = http.get(path, params={**RANGE, "measure": measure, **extra})
                assert r.status_code == 200 and r.json()["rows"], (path, measure, r.text)
        top_cost = http.get("/v1/top", params={**RANGE, "dimension": "team"}).json()["rows"]
        assert top_cost[0]["value"] == top_cost[0]["cost_usd"] and top_cost[0]["calls"] >= 1

        letters = http.get("/v1/dead-letters", params={"start": "2000-01-01", "end": "2100-01-01"}).json()["rows"]
        assert [r["reason"] for r in letters] == ["missing_timestamp"]

        prices = http.get("/v1/prices", params={"model": "gpt-4o", "provider": "openai",
                                                "at": "2025-11-03T00:00:00Z"}).json()["rows"]
        assert prices and Decimal(prices[0]["rate_input"]) == Decimal("0.0000025")

        assert http.get("/v1/usage", params={**RANGE, "dimension": "nope"}).status_code == 422
        assert http.get("/v1/usage", params={"start": RANGE["end"], "end": RANGE["start"], "dimension": "team"}
                        ).status_code == 422
        assert http.get("/openapi.json").json()["info"]["title"] == "llmledger"


INJECTIONS = [
    "x' OR 1=1 --", "'; DROP TABLE calls; --", "model) OR (1=1", "`calls`", "1; SELECT * FROM api_keys",
    "\\' OR \\'1\\'=\\'1", "{start:String}", "team:x' UNION SELECT secret_sha256 FROM api_keys --",
]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_sql_injection_in_every_read_parameter(service: Running, attack: str) -> None:
    with service.client() as http:
        assert http.post("/v1/events", json=[make_call(event_id="inj")]).status_code == 200
    service.wait_flushed()
    probes = [
        ("/v1/usage", {**RANGE, "dimension": attack}),
        ("/v1/usage", {**RANGE, "dimension": "team", "filter": f"team:{attack}"}),
        ("/v1/usage", {**RANGE, "dimension": "team", "filter": f"{attack}:x"}),
        ("/v1/usage", {**RANGE, "dimension": "team", "filter": f"tag.{attack}:{attack}"}),
        ("/v1/usage", {"start": attack, "end": RANGE["end"], "dimension": "team"}),
        ("/v1/usage", {**RANGE, "dimension": "team", "limit": attack}),
        ("/v1/timeseries", {**RANGE, "grain": attack}),
        ("/v1/timeseries", {**RANGE, "measure": attack}),
        ("/v1/timeseries", {**RANGE, "dimension": "model", "top": attack}),
        ("/v1/latency", {**RANGE, "dimension": attack}),
        ("/v1/cache", {**RANGE, "grain": "day", "dimension": attack}),
        ("/v1/top", {**RANGE, "dimension": "model", "measure": attack, "n": "3"}),
        ("/v1/dead-letters", {**RANGE, "source": attack, "reason": attack}),
        ("/v1/prices", {"model": attack, "provider": attack, "at": RANGE["start"]}),
        ("/v1/totals", {**RANGE, attack: "1"}),
    ]
    with service.client() as http:
        for path, params in probes:
            r = http.get(path, params=params)
            assert r.status_code in (200, 422), (path, params, r.status_code, r.text)
            if r.status_code == 200:
                assert all(v != "x" for row in r.json()["rows"] for v in row.values())
    assert service.rows("SELECT count() FROM calls") == [(1,)]  # table intact, nothing leaked or written


def test_reads_proceed_while_ingest_runs(service: Running) -> None:
    stop = threading.Event()
    pushed = []

    def ingest() -> None:
        with service.client() as http:
            i = 0
            while not stop.is_set():
                batch = [make_call(event_id=f"w{i}-{j}") for j in range(200)]
                assert http.post("/v1/events", json=batch).status_code == 200
                pushed.append(len(batch))
                i += 1

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        with service.client() as http:
            seen = []
            for _ in range(30):
                r = http.get("/v1/totals", params=RANGE)
                assert r.status_code == 200
                seen.append(r.json()["rows"][0]["calls"])
    finally:
        stop.set()
        writer.join()
    service.wait_flushed()
    assert seen == sorted(seen) and seen[-1] > 0
    assert service.rows("SELECT count() FROM calls") == [(sum(pushed),)]


def test_reprice_through_the_service_keeps_calls_and_rollups_consistent(service: Running) -> None:
    """While the service holds the store, re-pricing goes through its admin API; it takes the
    writer lock, so pushes during the reprice are neither lost nor double-counted."""
    _seed(service)
    pushed = threading.Event()

    def push_more() -> None:
        with service.client() as http:
            for i in range(20):
                http.post("/v1/events", json=[make_call(event_id=f"late-{i}", ts="2025-11-03T12:00:00Z")])
        pushed.set()

    pusher = threading.Thread(target=push_more)
    pusher.start()
    with service.client() as http:
        result = http.post("/v1/admin/reprice", json={"since": "2025-11-01T00:00:00Z", "until": "2025-12-01T00:00:00Z"})
    pusher.join(60)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["months"] == ["202511"] and body["cost_before_usd"] == body["cost_after_usd"]
    service.wait_flushed()
    count, cost = service.rows("SELECT count(), sum(cost_usd) FROM calls")[0]
    assert count == 24
    rolled = service.rows("SELECT sum(calls), sum(cost_usd) FROM calls_hourly")[0]
    assert (int(rolled[0]), Decimal(rolled[1])) == (24, Decimal(cost))
