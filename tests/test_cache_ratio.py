"""One cache hit ratio everywhere: providers whose calls report cache writes read ÷ (read + write),
automatic caching (and Gemini, which reports no writes) cached ÷ input of eligible calls — the same figure from attribution (summary, weekly report), the
`/v1/cache` series and the caching windows, whether read from the hourly rollup or raw calls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import Pipeline
from tests.factories import frame, make_call
from warehouse.client import Warehouse
from warehouse.queries import attribution, cache_ratio, caching, series
from warehouse.queries.scope import Scope

ALL = Scope.all()
START, END = datetime(2025, 11, 3, 10, tzinfo=UTC), datetime(2025, 11, 3, 12, tzinfo=UTC)
OPENAI = {"provider": "openai", "model": "gpt-4o", "route": "/oa"}
ANTHROPIC = {"provider": "anthropic", "model": "claude-sonnet-4-5", "route": "/an"}


@pytest.fixture
def cached(pipeline: Pipeline, wh: Warehouse) -> Warehouse:
    calls = [
        # automatic (OpenAI): eligible calls are ok and ≥ 1,024 input tokens; 1,024 of their 4,000 were cached
        make_call(ts="2025-11-03T10:01:00Z", input_tokens=2000, cache_read_tokens=1024, **OPENAI),
        make_call(ts="2025-11-03T10:02:00Z", input_tokens=2000, **OPENAI),
        make_call(ts="2025-11-03T10:03:00Z", input_tokens=500, **OPENAI),  # too short to cache
        make_call(ts="2025-11-03T10:04:00Z", input_tokens=3000, status="error", **OPENAI),
        # explicit (Anthropic): 10,000 read of the 11,000 that went through the cache
        make_call(ts="2025-11-03T11:01:00Z", input_tokens=12_000, cache_read_tokens=10_000,
                  cache_write_5m_tokens=1_000, **ANTHROPIC),
        # Gemini reports cached tokens only, no writes: cached ÷ input, like OpenAI (not 100%)
        make_call(ts="2025-11-03T11:03:00Z", provider="google", model="gemini-2.5-flash", route="/gm",
                  input_tokens=4000, cache_read_tokens=3000),
        # neither: a self-hosted server's prefix cache is not a provider's prompt cache
        make_call(ts="2025-11-03T11:02:00Z", provider="self_hosted", model="llama-3.1-70b-instruct", route="/sh",
                  input_tokens=5000, cache_read_tokens=4000, node="n1"),
    ]
    assert pipeline.ingest_frame(frame(calls), source="test").written == len(calls)
    return wh


def _by_key(frame: Any, key: str) -> dict[str, Any]:
    return {r[key]: r for r in frame.to_dicts()}


def test_the_ratio_follows_each_providers_caching(cached: Warehouse, raw_only: Any) -> None:
    assert attribution.cache_hit_ratio(cached, ALL, START, END) == pytest.approx(
        (1024 + 10_000 + 3000) / (4000 + 11_000 + 4000))
    assert attribution.cache_hit_ratio(cached, ALL, START, END, {"route": ["/oa"]}) == pytest.approx(1024 / 4000)
    assert attribution.cache_hit_ratio(cached, ALL, START, END, {"route": ["/sh"]}) is None
    per_route = _by_key(series.cache_hit_series(cached, ALL, START, END, grain="day", dimension="route"), "key")
    assert (per_route["/oa"]["cache_hit_tokens"], per_route["/oa"]["cache_base_tokens"]) == (1024, 4000)
    assert per_route["/oa"]["hit_ratio"] == pytest.approx(0.256)  # read ÷ (read + write) would say 100%
    assert per_route["/an"]["hit_ratio"] == pytest.approx(10 / 11)
    assert per_route["/gm"]["hit_ratio"] == pytest.approx(0.75)
    assert per_route["/sh"]["hit_ratio"] is None and per_route["/sh"]["cache_read_tokens"] == 4000
    # the caching windows: whole hours from the rollup, and the same from raw calls
    for windows in (caching.cache_windows(cached, ALL, START, END, grain="day", by=["route"]),
                    raw_only(caching.cache_windows, cached, ALL, START, END, grain="day", by=["route"]),
                    caching.cache_windows(cached, ALL, START, END, grain="5min", by=["route"])
                    .group_by("route").sum()):
        got = _by_key(windows, "route")
        assert (got["/oa"]["cache_hit_tokens"], got["/oa"]["cache_base_tokens"]) == (1024, 4000)
        assert (got["/an"]["cache_hit_tokens"], got["/an"]["cache_base_tokens"]) == (10_000, 11_000)
        assert (got["/gm"]["cache_hit_tokens"], got["/gm"]["cache_base_tokens"]) == (3000, 4000)
        assert (got["/sh"]["cache_hit_tokens"], got["/sh"]["cache_base_tokens"]) == (0, 0)


def test_the_rollup_keeps_the_definitions_expressions() -> None:
    """Migration 0055 writes the per-call expressions into the cache rollup's view; they must be the
    query library's, or rollup-served and raw-served ratios would part."""
    sql = (Path(__file__).resolve().parents[1] / "migrations" / "0055_cache_hit_tokens.sql").read_text()
    for expression in (cache_ratio.hit_tokens("calls"), cache_ratio.base_tokens("calls"), cache_ratio.hit_tokens(),
                       cache_ratio.base_tokens()):
        assert f"sum({expression})" in sql
