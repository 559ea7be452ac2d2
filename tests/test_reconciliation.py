"""Reconciliation of provider exports against logged calls, and collector status, on real data:
the exports come through the collectors from the local provider server, the calls through the
ingest pipeline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from genai_prices import Usage, calc_price

from collectors.runner import run_collector
from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from tests.conftest import migrated_database
from tests.factories import frame, make_call
from tests.servers import ANTHROPIC_KEY, OPENAI_KEY, ProviderServer, provider_server
from tests.test_collectors_providers import NOV, UNTIL, configured
from warehouse.client import Warehouse
from warehouse.queries.collectors import collector_status
from warehouse.queries.reconciliation import capture, reconcile
from warehouse.queries.scope import Scope


@pytest.fixture(scope="module")
def exported(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Warehouse,
                                                                                      ProviderServer]]:
    """Both providers' exports of Nov 1–5 collected from the stand-ins, and the gateway's calls."""
    settings = Settings(home=tmp_path_factory.mktemp("reconciliation") / "home", warehouse={"path": store})
    with migrated_database(settings) as wh, provider_server() as server, admin_keys():
        s = configured(settings, server)
        assert run_collector("openai", s, wh, since=NOV[1], until=UNTIL).ok
        assert run_collector("anthropic", s, wh, since=NOV[1], until=UNTIL).ok
        with Pipeline(wh, settings) as pipeline:
            log_calls(pipeline)
        yield settings, wh, server


@contextmanager
def admin_keys() -> Iterator[None]:
    """The stand-ins' admin keys in the environment, as the collectors read them."""
    keys = {"OPENAI_ADMIN_KEY": OPENAI_KEY, "ANTHROPIC_ADMIN_API_KEY": ANTHROPIC_KEY}
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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


def _price(model: str, provider: str, at: datetime, **usage: int) -> Decimal:
    return calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=at).total_price


GPT4O_CALL = _price("gpt-4o-2024-08-06", "openai", NOV[1], input_tokens=1000, cache_read_tokens=400,
                    output_tokens=200)
SONNET_CALL = _price("claude-sonnet-4-20250514", "anthropic", NOV[2], input_tokens=20100, cache_read_tokens=20000,
                     output_tokens=1200)


def _row(rows: pl.DataFrame, day: int, provider: str, api_key_id: str = "", model: str = "") -> dict:
    (row,) = rows.filter((pl.col("day") == NOV[day].date()) & (pl.col("provider") == provider)
                         & (pl.col("api_key_id") == api_key_id) & (pl.col("model") == model)).to_dicts()
    return row


def test_cost_lines_with_model_reconcile_per_key_model_and_day(
        exported: tuple[Settings, Warehouse, ProviderServer]) -> None:
    _, wh, _ = exported
    rows = reconcile(wh, Scope.all(), NOV[1], NOV[6], by=("api_key_id", "model"))
    # OpenAI's costs are grouped by key and line item (model): the finest grain, key/model/day
    gpt = _row(rows, 1, "openai", "key_a", "gpt-4o")
    assert gpt["grain"] == "api_key_id, model"
    assert (gpt["provider_requests"], gpt["logged_calls"]) == (10, 10)
    assert (gpt["provider_input_tokens"], gpt["logged_input_tokens"]) == (10000, 10000)
    assert (gpt["provider_cache_read_tokens"], gpt["logged_cache_read_tokens"]) == (4000, 4000)
    assert gpt["billed_usd"] == Decimal("0.3")  # $0.1 input + $0.2 output line items
    assert gpt["logged_usd"] == 10 * GPT4O_CALL
    assert gpt["diff_usd"] == gpt["invisible_usd"] == Decimal("0.3") - 10 * GPT4O_CALL
    assert gpt["capture_rate"] == pytest.approx(float(10 * GPT4O_CALL / Decimal("0.3")))
    # key_b's batch traffic bypassed the gateway: all of it is invisible spend
    o4 = _row(rows, 1, "openai", "key_b", "o4-mini")
    assert o4["logged_usd"] is None and o4["provider_input_tokens"] == 5000
    assert (o4["billed_usd"], o4["invisible_usd"], o4["capture_rate"]) == (Decimal("0.0055"), Decimal("0.0055"), 0.0)
    # a bill line without a model (web search) sits in its own row beside the logged tool cost
    web = _row(rows, 2, "openai")
    assert (web["billed_usd"], web["logged_usd"], web["invisible_usd"]) == (Decimal("0.7"), None, Decimal("0.7"))
    # Anthropic's cost report has models but no keys: model/day, the calls of every key together
    sonnet = _row(rows, 2, "anthropic", "", "claude-sonnet-4-0")
    assert sonnet["grain"] == "model"
    assert (sonnet["provider_input_tokens"], sonnet["logged_input_tokens"]) == (20100, 20100)
    assert sonnet["billed_usd"] == Decimal("0.333333333333")  # "33.3333333333" cents
    assert sonnet["logged_usd"] == SONNET_CALL and sonnet["logged_calls"] == 1
    summary = capture(wh, Scope.all(), NOV[1], NOV[6]).rows_by_key("provider", named=True)
    openai, anthropic = summary["openai"][0], summary["anthropic"][0]
    assert openai["billed_usd"] == Decimal("2.2978456789012345")
    assert openai["logged_usd"] == 10 * GPT4O_CALL
    assert openai["invisible_usd"] == Decimal("2.2978456789012345") - 10 * GPT4O_CALL  # every row under-logged
    assert openai["capture_rate"] == pytest.approx(float(10 * GPT4O_CALL / Decimal("2.2978456789012345")))
    assert (anthropic["grain"], anthropic["billed_usd"]) == ("model", Decimal("11.638083333333"))
    assert anthropic["invisible_usd"] == Decimal("11.638083333333") - SONNET_CALL
    # another tenant sees nothing
    assert reconcile(wh, Scope.of("someone-else"), NOV[1], NOV[6]).height == 0


def test_cost_lines_without_model_reconcile_per_key_or_provider(settings: Settings, wh: Warehouse,
                                                               pipeline: Pipeline) -> None:
    """Bills not split by model: dollars are compared per key (OpenAI) or per provider (Anthropic)
    and day, never read as a model '' that no call has (which showed 100% unlogged)."""
    with provider_server() as server, admin_keys():
        s = configured(settings, server)
        s.collectors.openai.cost_group_by = ["project_id", "api_key_id"]
        s.collectors.anthropic.cost_group_by = ["workspace_id"]
        assert run_collector("openai", s, wh, since=NOV[1], until=UNTIL).ok
        assert run_collector("anthropic", s, wh, since=NOV[1], until=UNTIL).ok
    assert wh.scalar("SELECT countIf(line_item != '') FROM provider_costs_live") == 0  # no line items at all
    log_calls(pipeline)
    rows = reconcile(wh, Scope.all(), NOV[1], NOV[6], by=("api_key_id", "model"))
    assert set(rows["grain"]) == {"api_key_id", "provider"}
    key_a = _row(rows, 1, "openai", "key_a")
    assert (key_a["grain"], key_a["billed_usd"], key_a["logged_usd"]) == (
        "api_key_id", Decimal("0.3"), 10 * GPT4O_CALL)
    assert (key_a["provider_input_tokens"], key_a["logged_input_tokens"]) == (10000, 10000)
    day2 = _row(rows, 2, "anthropic")
    assert (day2["grain"], day2["billed_usd"], day2["logged_usd"]) == ("provider", Decimal("0.333333333333"),
                                                                     SONNET_CALL)
    assert day2["capture_rate"] == pytest.approx(float(SONNET_CALL / Decimal("0.333333333333")))
    assert day2["invisible_usd"] == Decimal("0.333333333333") - SONNET_CALL
    day1 = _row(rows, 1, "anthropic")  # $1.2345 + $0.00015 + $10 (web search), nothing logged that day
    assert (day1["billed_usd"], day1["invisible_usd"], day1["capture_rate"]) == (
        Decimal("11.23465"), Decimal("11.23465"), 0.0)
    summary = capture(wh, Scope.all(), NOV[1], NOV[6]).rows_by_key("provider", named=True)
    assert summary["anthropic"][0]["billed_usd"] == Decimal("11.638083333333")  # the same bill, whatever the grain
    assert summary["anthropic"][0]["capture_rate"] == pytest.approx(float(SONNET_CALL / Decimal("11.638083333333")))
    assert summary["openai"][0]["grain"] == "api_key_id"


def test_collector_status_reports_success_lag_and_last_error(exported: tuple[Settings, Warehouse, ProviderServer],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings, wh, server = exported
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "wrong")
    assert not run_collector("openai", configured(settings, server), wh, until=UNTIL).ok
    now = datetime(2025, 11, 6, 12, tzinfo=UTC)
    status = collector_status(wh, Scope.all(), now=now).rows_by_key("collector", named=True)
    openai, anthropic = status["openai"][0], status["anthropic"][0]
    assert (openai["runs"], openai["errors"], openai["last_status"]) == (2, 1, "error")
    assert openai["last_error_kind"] == "auth" and "OPENAI_ADMIN_KEY" in openai["last_error"]
    assert openai["data_through"] == datetime(2025, 11, 6, tzinfo=UTC)  # all buckets before Nov 6 complete
    assert openai["lag_s"] == 12 * 3600
    assert anthropic["last_status"] == "ok" and anthropic["last_error"] == ""
