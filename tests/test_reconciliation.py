"""Reconciliation of provider exports against logged calls, and collector status, on real data:
the exports come through the collectors from the local provider server, the calls through the
ingest pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from ingest.collect import run_collector
from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from tests.factories import frame, make_call
from tests.servers import ANTHROPIC_KEY, OPENAI_KEY, ProviderServer, provider_server
from tests.test_collectors_providers import NOV, UNTIL, configured
from warehouse.client import Warehouse
from warehouse.queries.collectors import collector_status
from warehouse.queries.reconciliation import reconcile, unlogged_spend
from warehouse.queries.scope import Scope


@pytest.fixture
def exported(settings: Settings, wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ANTHROPIC_KEY)
    with provider_server() as server:
        s = configured(settings, server)
        assert run_collector("openai", s, wh, since=NOV[1], until=UNTIL).ok
        assert run_collector("anthropic", s, wh, since=NOV[1], until=UNTIL).ok
        yield server


def log_calls(pipeline: Pipeline) -> None:
    """The gateway saw all of key_a's gpt-4o traffic on Nov 1 and the Sonnet call on Nov 2 —
    but none of key_b's o4-mini batch traffic."""
    calls = [make_call(ts=(NOV[1] + timedelta(hours=i)).isoformat(), provider="openai", model="gpt-4o-2024-08-06",
                       api_key_id="key_a", input_tokens=1000, cache_read_tokens=400, output_tokens=200)
             for i in range(10)]
    calls.append(make_call(ts=(NOV[2] + timedelta(hours=3)).isoformat(), provider="anthropic",
                           model="claude-sonnet-4-20250514", api_key_id="apikey_01", input_tokens=None,
                           output_tokens=None, usage={"input_tokens": 100, "cache_read_input_tokens": 20000,
                                                      "output_tokens": 1200}))
    result = pipeline.ingest_frame(frame(calls), source="gateway")
    assert result.written == 11


def test_provider_spend_beside_logged_calls(exported: ProviderServer, pipeline: Pipeline, wh: Warehouse) -> None:
    log_calls(pipeline)
    rows = reconcile(wh, Scope.all(), NOV[1], NOV[6], by=("api_key_id", "model"))
    nov1 = rows.filter((pl.col("day") == NOV[1].date()) & (pl.col("provider") == "openai"))
    gpt = nov1.filter(pl.col("api_key_id") == "key_a").row(0, named=True)
    logged_cost = wh.scalar("SELECT sum(cost_usd) FROM calls WHERE api_key_id = 'key_a'")
    assert (gpt["provider_requests"], gpt["logged_calls"]) == (10, 10)
    assert (gpt["provider_input_tokens"], gpt["logged_input_tokens"], gpt["input_tokens_diff"]) == (10000, 10000, 0)
    assert (gpt["provider_cache_read_tokens"], gpt["logged_cache_read_tokens"]) == (4000, 4000)
    assert gpt["provider_cost_usd"] == Decimal("0.3")  # $0.1 input + $0.2 output line items
    assert gpt["logged_cost_usd"] == logged_cost > 0
    assert gpt["cost_diff_usd"] == Decimal("0.3") - logged_cost
    # key_b's batch traffic bypassed the gateway: all of it is unexplained
    o4 = nov1.filter(pl.col("api_key_id") == "key_b").row(0, named=True)
    assert o4["logged_calls"] is None and o4["provider_input_tokens"] == 5000
    assert o4["provider_cost_usd"] == o4["cost_diff_usd"] == Decimal("0.0055")
    assert o4["cost_diff_pct"] == pytest.approx(100.0)
    # Anthropic's cost report is not split by API key: no provider $ at that level, tokens still match
    sonnet = rows.filter((pl.col("provider") == "anthropic") & (pl.col("day") == NOV[2].date())).row(0, named=True)
    assert (sonnet["provider_input_tokens"], sonnet["logged_input_tokens"]) == (20100, 20100)
    assert sonnet["provider_cost_usd"] is None


def test_by_model_uses_cost_reports_of_both_providers(exported: ProviderServer, pipeline: Pipeline,
                                                      wh: Warehouse) -> None:
    log_calls(pipeline)
    rows = reconcile(wh, Scope.all(), NOV[1], NOV[6], by=("model",))
    sonnet = rows.filter((pl.col("provider") == "anthropic") & (pl.col("day") == NOV[2].date())).row(0, named=True)
    assert sonnet["provider_cost_usd"] == Decimal("0.333333333333")  # "33.3333333333" cents
    assert sonnet["logged_calls"] == 1
    totals = unlogged_spend(wh, Scope.all(), NOV[1], NOV[6]).rows_by_key("provider", named=True)
    assert totals["openai"][0]["provider_cost_usd"] == Decimal("2.2978456789012345")
    assert totals["anthropic"][0]["provider_cost_usd"] == Decimal("11.638083333333")
    assert 0 < totals["openai"][0]["unlogged_share"] <= 1
    # another tenant sees nothing
    assert reconcile(wh, Scope.of("someone-else"), NOV[1], NOV[6]).height == 0


def test_collector_status_reports_success_lag_and_last_error(exported: ProviderServer, settings: Settings,
                                                            wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "wrong")
    assert not run_collector("openai", configured(settings, exported), wh, until=UNTIL).ok
    now = datetime(2025, 11, 6, 12, tzinfo=UTC)
    status = collector_status(wh, Scope.all(), now=now).rows_by_key("collector", named=True)
    openai, anthropic = status["openai"][0], status["anthropic"][0]
    assert (openai["runs"], openai["errors"], openai["last_status"]) == (2, 1, "error")
    assert openai["last_error_kind"] == "auth" and "OPENAI_ADMIN_KEY" in openai["last_error"]
    assert openai["data_through"] == datetime(2025, 11, 6, tzinfo=UTC)  # all buckets before Nov 6 complete
    assert openai["lag_s"] == 12 * 3600
    assert anthropic["last_status"] == "ok" and anthropic["last_error"] == ""
