"""Provider export collectors (OpenAI usage/costs; Anthropic's Usage & Cost Analytics API and its
legacy usage/cost reports) with real httpx against a local server speaking the documented shapes,
into the real embedded warehouse."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from collectors.config import AnthropicConfig, CollectorsSettings, HttpConfig, OpenAIConfig
from collectors.runner import run_collector, run_collectors
from ingest.collector_state import load_cursor, save_cursor
from llmledger.settings import Settings
from tests.servers import ANALYTICS_USAGE, ANTHROPIC_KEY, OPENAI_KEY, ProviderServer, Scripted, provider_server
from warehouse.client import Warehouse

NOV = {d: datetime(2025, 11, d, tzinfo=UTC) for d in range(1, 8)}
UNTIL = NOV[6]
OPENAI_USAGE = "/v1/organization/usage/completions"
OPENAI_COSTS = "/v1/organization/costs"
ANTHROPIC_USAGE = "/v1/organizations/usage_report/messages"
ANTHROPIC_COSTS = "/v1/organizations/cost_report"
FAST = HttpConfig(timeout_s=5, max_attempts=4, backoff_initial_s=0.05, backoff_max_s=2)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ANTHROPIC_KEY)
    with provider_server() as server:
        yield server


def configured(settings: Settings, server: ProviderServer, anthropic_api: str = "legacy", **changes: Any) -> Settings:
    """Settings whose OpenAI/Anthropic collectors point at the local server (2 buckets, or analytics
    rows, per page); Anthropic's legacy reports unless `anthropic_api="analytics"`."""
    common = {"enabled": True, "page_limit": 2, "refetch_buckets": 0, "http": FAST, **changes}
    section = CollectorsSettings(
        openai=OpenAIConfig(base_url=f"{server.url}/v1", **common),
        anthropic=AnthropicConfig(base_url=server.url, api=anthropic_api, **common),
    )
    return settings.model_copy(update={"collectors": section})


def usage_totals(wh: Warehouse, provider: str) -> tuple:
    return wh.query_rows(
        "SELECT count(), sum(input_tokens), sum(cache_read_tokens), sum(cache_write_5m_tokens), "
        "sum(cache_write_1h_tokens), sum(output_tokens), sum(requests), sum(web_search_requests) "
        "FROM provider_usage_live WHERE provider = {p:String}", {"p": provider})[0]


def cost_total(wh: Warehouse, provider: str) -> tuple[int, Decimal]:
    return wh.query_rows("SELECT count(), sum(cost_usd) FROM provider_costs_live WHERE provider = {p:String}",
                         {"p": provider})[0]


def starts(server: ProviderServer, path: str) -> list[str | None]:
    key = "start_time" if "organization/" in path else "starting_at"
    return [r.param(key) for r in server.requests if r.path == path and r.status == 200]


def test_openai_usage_and_costs_paginate_into_exact_totals(settings: Settings, wh: Warehouse,
                                                           api: ProviderServer) -> None:
    report = run_collector("openai", configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert report.ok, report.error
    # 5 daily usage buckets at 2 per page = 3 pages; costs likewise
    assert len(starts(api, OPENAI_USAGE)) == 3 and len(starts(api, OPENAI_COSTS)) == 3
    assert usage_totals(wh, "openai") == (6, 46000, 13024, 500, 0, 7500, 46, 0)
    assert cost_total(wh, "openai") == (7, Decimal("2.2978456789012345"))  # float sum would not be exact
    # models are resolved like calls; the raw name is kept; line items give model and token type
    rows = wh.query_rows("SELECT DISTINCT model, model_raw FROM provider_usage_live ORDER BY model_raw")
    assert rows[0][1] == "gpt-4o-2024-08-06" and rows[0][0] != ""
    items = wh.query_rows("SELECT model_raw, token_type FROM provider_costs_live WHERE line_item LIKE '%cached%'")
    assert items == [("gpt-4o-2024-08-06", "cached input")]
    # the SDK's bracket form was sent, with the configured group-by
    request = next(r for r in api.requests if r.path == OPENAI_USAGE)
    assert request.params["group_by[]"] == ["project_id", "user_id", "api_key_id", "model", "batch", "service_tier"]
    assert wh.scalar("SELECT countIf(is_batch) FROM provider_usage_live") == 2


def test_anthropic_reports_sum_cache_into_input_and_cents_into_dollars(settings: Settings, wh: Warehouse,
                                                                      api: ProviderServer) -> None:
    report = run_collector("anthropic", configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert report.ok, report.error
    # input = uncached + cache reads + 5m and 1h cache writes
    assert usage_totals(wh, "anthropic") == (5, 30800, 23200, 900, 1000, 2640, None, 11)
    # cents as decimal strings: 123.45 + 0.015 + 1000 + 33.3333333333 + 7 + 0.01 = 1163.8083333333 ¢
    assert cost_total(wh, "anthropic") == (6, Decimal("11.638083333333"))
    assert wh.query_rows("SELECT is_batch FROM provider_usage_live WHERE service_tier = 'batch'") == [(True,)]
    request = next(r for r in api.requests if r.path == ANTHROPIC_USAGE)
    assert request.param("starting_at") == "2025-11-01T00:00:00Z" and request.param("bucket_width") == "1d"


def test_anthropic_analytics_api_is_the_default_and_reads_whole_buckets(settings: Settings, wh: Warehouse,
                                                                        api: ProviderServer) -> None:
    assert AnthropicConfig().api == "analytics" and AnthropicConfig(api="legacy").group_by[-1] == "context_window"
    api.datasets[ANALYTICS_USAGE][2]["group"]["service_tier"] = "priority_on_demand"  # a 2026 tier
    # 2 rows a page: Nov 1's two usage rows and three cost rows are split across pages
    report = run_collector("anthropic", configured(settings, api, "analytics"), wh, since=NOV[1], until=UNTIL)
    assert report.ok, report.error
    # the same usage as the legacy report, plus request counts (10 + 11 + 10 + 10 + 10)
    assert usage_totals(wh, "anthropic") == (5, 30800, 23200, 900, 1000, 2640, 51, 11)
    assert cost_total(wh, "anthropic") == (6, Decimal("11.638083333333"))
    assert wh.query_rows("SELECT DISTINCT user_id FROM provider_usage_live ORDER BY 1") == \
        [("user_apikey_01",), ("user_apikey_02",)]  # the grouped actor
    assert wh.query_rows("SELECT is_batch FROM provider_usage_live WHERE service_tier = 'batch'") == [(True,)]
    assert wh.query_rows("SELECT is_batch, input_tokens FROM provider_usage_live "
                         "WHERE service_tier = 'priority_on_demand'") == [(False, 20100)]
    request = next(r for r in api.requests if r.path == ANALYTICS_USAGE)
    assert (request.param("time_bucket_width"), request.param("order_by"), request.param("order")) == \
        ("1d", "time", "asc")
    assert request.params["group_by[]"] == ["api_key_id", "workspace_id", "model", "service_tier", "actor"]
    assert len([r for r in api.requests if r.path == ANALYTICS_USAGE]) == 3  # 5 rows, 2 a page
    grouped = wh.scalar("SELECT any(grouped_by) FROM provider_usage_live")
    assert set(grouped) == {"api_key_id", "provider_project_id", "model", "service_tier", "is_batch", "user_id"}
    # the legacy reports stay a setting away
    assert not [r for r in api.requests if r.path in (ANTHROPIC_USAGE, ANTHROPIC_COSTS)]


def test_anthropic_analytics_429_split_buckets_and_the_31_day_cap(settings: Settings, wh: Warehouse,
                                                                  api: ProviderServer) -> None:
    api.script(ANALYTICS_USAGE, Scripted(429, {"type": "error", "error": {"type": "rate_limit_error",
                                                                          "message": "slow down"}},
                                         headers={"Retry-After": "1"}))
    s = configured(settings, api, "analytics", costs=False, page_limit=1)
    api.outage_after_pages = 3  # rows of Nov 1, Nov 1, Nov 2 served: only Nov 1 is known complete
    first = run_collector("anthropic", s, wh, since=NOV[1], until=UNTIL)
    assert first.status == "error" and first.error_kind == "unavailable"
    assert [r.status for r in api.requests if r.path == ANALYTICS_USAGE][:2] == [429, 200]  # waited, then read
    assert usage_totals(wh, "anthropic")[:2] == (2, 6200)  # Nov 1 whole, Nov 2 held back (not half-written)
    cursor, _ = load_cursor(wh, "anthropic")
    assert cursor["streams"]["anthropic:analytics-usage:1d"]["done_until"] == "2025-11-02T00:00:00+00:00"
    api.outage_after_pages = None
    # a 40-day back-fill is asked for in two queries of at most 31 days
    assert run_collector("anthropic", s, wh, since=datetime(2025, 10, 1, tzinfo=UTC), until=UNTIL).ok
    ranges = {(r.param("starting_at"), r.param("ending_at")) for r in api.requests
              if r.path == ANALYTICS_USAGE and r.status == 200 and r.param("page") is None}
    assert ("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z") in ranges
    assert ("2025-11-01T00:00:00Z", "2025-11-06T00:00:00Z") in ranges
    assert usage_totals(wh, "anthropic")[:2] == (5, 30800)
    # a bucket now without usage (no rows at all) replaces what was stored for it
    api.datasets[ANALYTICS_USAGE] = [r for r in api.datasets[ANALYTICS_USAGE] if r["starting_at"] != "2025-11-05T00:00:00Z"]
    assert run_collector("anthropic", s, wh, since=NOV[1], until=UNTIL).ok
    assert usage_totals(wh, "anthropic")[:2] == (4, 30800 - 1000)


def test_rerun_and_refetch_do_not_double_count(settings: Settings, wh: Warehouse, api: ProviderServer) -> None:
    s = configured(settings, api, refetch_buckets=3)
    for _ in range(3):
        assert run_collector("openai", s, wh, since=NOV[1], until=UNTIL).ok
        assert run_collector("anthropic", s, wh, until=UNTIL).ok  # from the cursor, 3 buckets back
    assert usage_totals(wh, "openai")[:2] == (6, 46000)
    assert usage_totals(wh, "anthropic")[:2] == (5, 30800)
    assert cost_total(wh, "openai")[1] == Decimal("2.2978456789012345")
    # superseded fetches were garbage-collected as well
    assert wh.scalar("SELECT count() FROM provider_usage") == 11


def test_late_revised_bucket_replaces_the_stored_one(settings: Settings, wh: Warehouse, api: ProviderServer) -> None:
    s = configured(settings, api, refetch_buckets=2)
    assert run_collector("anthropic", s, wh, since=NOV[1], until=UNTIL).ok
    # the provider revises Nov 5 (late-arriving usage) and Nov 4's cost
    api.revise(ANTHROPIC_USAGE, "2025-11-05T00:00:00Z", [
        {"uncached_input_tokens": 9000, "cache_read_input_tokens": 1000, "cache_creation": {
            "ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 450,
         "server_tool_use": {"web_search_requests": 0}, "api_key_id": "apikey_02", "workspace_id": None,
         "model": "claude-haiku-4-5-20251001", "service_tier": "standard", "context_window": "0-200k"},
    ])
    api.revise(ANTHROPIC_COSTS, "2025-11-04T00:00:00Z", [{"currency": "USD", "amount": "9.5", "workspace_id": None,
                                                          "description": "Claude Haiku 4.5 Usage - Input Tokens"}])
    assert run_collector("anthropic", s, wh, until=UNTIL).ok
    # second run re-read only the last 2 complete buckets plus nothing new
    assert starts(api, ANTHROPIC_USAGE)[-1] == "2025-11-04T00:00:00Z"
    assert usage_totals(wh, "anthropic")[:2] == (5, 30800 - 1000 + 10000)
    assert usage_totals(wh, "anthropic")[5] == 2640 - 50 + 450
    assert cost_total(wh, "anthropic") == (6, Decimal("11.638083333333") - Decimal("0.07") + Decimal("0.095"))


def test_retries_honour_retry_after_and_recover_from_5xx(settings: Settings, wh: Warehouse,
                                                         api: ProviderServer) -> None:
    api.script(OPENAI_USAGE, Scripted(429, headers={"Retry-After": "1"}), Scripted(500), Scripted(502))
    began = time.monotonic()
    report = run_collector("openai", configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert report.ok, report.error
    assert time.monotonic() - began >= 1.0  # waited as told
    assert [r.status for r in api.requests if r.path == OPENAI_USAGE][:4] == [429, 500, 502, 200]
    assert usage_totals(wh, "openai")[:2] == (6, 46000)


def test_rate_limit_that_never_clears_is_reported(settings: Settings, wh: Warehouse, api: ProviderServer) -> None:
    api.script(OPENAI_COSTS, *[Scripted(429, headers={"Retry-After": "0"})] * 4)
    report = run_collector("openai", configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert report.status == "error" and report.error_kind == "rate_limited"
    assert usage_totals(wh, "openai")[:2] == (6, 46000)  # the usage stream still landed


def test_crash_between_pages_resumes_after_the_last_written_bucket(settings: Settings, wh: Warehouse,
                                                                   api: ProviderServer) -> None:
    s = configured(settings, api, costs=False)
    api.outage_after_pages = 1  # page 1 (Nov 1-2) is served, then the source goes down
    first = run_collector("openai", s, wh, since=NOV[1], until=UNTIL)
    assert first.status == "error" and first.error_kind == "unavailable"
    cursor, _ = load_cursor(wh, "openai")
    assert cursor == {"streams": {"openai:completions:1d": {"done_until": "2025-11-03T00:00:00+00:00",
                                                             "width": "1d"}}}
    assert usage_totals(wh, "openai")[:2] == (4, 36000)
    api.outage_after_pages = None
    second = run_collector("openai", s, wh, until=UNTIL)
    assert second.ok
    resumed = [(r.param("start_time"), r.param("page") is not None) for r in api.requests if r.status == 200][-2:]
    assert resumed == [(str(int(NOV[3].timestamp())), False), (str(int(NOV[3].timestamp())), True)]
    assert usage_totals(wh, "openai")[:2] == (6, 46000)


def test_refused_page_token_restarts_from_the_last_written_bucket(settings: Settings, wh: Warehouse,
                                                                   api: ProviderServer) -> None:
    s = configured(settings, api, costs=False)
    original = api._answer

    def expire_after_first_page(path: str, params: dict, headers: Any) -> tuple:
        answer = original(path, params, headers)
        if path == OPENAI_USAGE and api.pages_served == 1:
            api.invalidate_tokens()  # e.g. the token expired while we were writing
        return answer

    api._answer = expire_after_first_page  # type: ignore[method-assign]
    report = run_collector("openai", s, wh, since=NOV[1], until=UNTIL)
    assert report.ok, report.error
    statuses = [(r.status, r.param("start_time"), r.param("page") is not None)
                for r in api.requests if r.path == OPENAI_USAGE]
    assert statuses[1][0] == 400 and statuses[2] == (200, str(int(NOV[3].timestamp())), False)
    assert usage_totals(wh, "openai")[:2] == (6, 46000)


def test_unreadable_cursor_is_reported_and_backfilled(settings: Settings, wh: Warehouse, api: ProviderServer) -> None:
    save_cursor(wh, "anthropic", {"streams": {"anthropic:messages:1d": {"done_until": "yesterday-ish"}}})
    wh.command("INSERT INTO collector_cursors VALUES ('openai', 'not json', now64(3) + 1)")
    s = configured(settings, api, backfill_days=10)
    report = run_collector("openai", s, wh, until=UNTIL)
    assert report.ok and any("unreadable cursor" in n for n in report.notes)
    assert run_collector("anthropic", s, wh, until=UNTIL).ok
    assert usage_totals(wh, "openai")[:2] == (6, 46000)
    assert usage_totals(wh, "anthropic")[:2] == (5, 30800)


def test_bad_key_is_a_configuration_error_naming_the_variable(settings: Settings, wh: Warehouse,
                                                              api: ProviderServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-wrong-value")
    report = run_collector("openai", configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert report.error_kind == "auth" and "OPENAI_ADMIN_KEY" in report.error
    assert "sk-admin-wrong-value" not in report.error
    monkeypatch.delenv("ANTHROPIC_ADMIN_API_KEY")
    missing = run_collector("anthropic", configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert missing.error_kind == "config" and "ANTHROPIC_ADMIN_API_KEY" in missing.error
    stored = wh.query_rows("SELECT collector, status, error_kind FROM collector_runs ORDER BY started_at")
    assert stored == [("openai", "error", "auth"), ("anthropic", "error", "config")]


def test_rejected_group_by_names_the_setting(settings: Settings, wh: Warehouse, api: ProviderServer) -> None:
    s = configured(settings, api, costs=False)
    api.script(OPENAI_USAGE, Scripted(400, {"error": {"message": "Invalid value for group_by"}}))
    report = run_collector("openai", s, wh, since=NOV[1], until=UNTIL)
    assert report.error_kind == "config" and "collectors.openai.group_by" in report.error


def test_one_failing_collector_does_not_stop_the_others(settings: Settings, wh: Warehouse, api: ProviderServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY")
    reports = run_collectors(configured(settings, api), wh, since=NOV[1], until=UNTIL)
    assert [(r.collector, r.status) for r in reports] == [("openai", "error"), ("anthropic", "ok")]
    assert usage_totals(wh, "anthropic")[:2] == (5, 30800)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from collectors.http import retry_after_seconds

    now = datetime(2025, 11, 3, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now=now) == 7.0
    assert retry_after_seconds("Mon, 03 Nov 2025 10:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Mon, 03 Nov 2025 09:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None and retry_after_seconds(None) is None


def test_two_projects_collecting_the_same_export_keep_their_own_bills(settings: Settings, wh: Warehouse,
                                                                      api: ProviderServer) -> None:
    """Two llmledger projects, each with its own OpenAI organisation, collect the same stream: the
    second project's fetch of a bucket must not replace (hide, then delete) the first's bill."""
    totals = "SELECT project, count(), sum(cost_usd) FROM provider_costs_live GROUP BY project ORDER BY project"
    team_a = configured(settings, api, project="team-a")
    team_b = configured(settings, api, project="team-b")
    assert run_collector("openai", team_a, wh, since=NOV[1], until=UNTIL).ok
    assert run_collector("openai", team_b, wh, since=NOV[1], until=UNTIL).ok
    assert run_collector("openai", team_b, wh, since=NOV[1], until=UNTIL).ok  # team-b re-fetches its own
    bill = Decimal("2.2978456789012345")
    assert wh.query_rows(totals) == [("team-a", 7, bill), ("team-b", 7, bill)]
    # team-b's re-fetch superseded (and garbage-collected) only team-b's first fetch
    assert wh.query_rows("SELECT project, count() FROM provider_costs GROUP BY project ORDER BY project") == [
        ("team-a", 7), ("team-b", 7)]


def test_bills_fetched_before_the_manifest_had_a_project_stay_live(fresh_wh: Warehouse) -> None:
    """Migration 0090 gives the fetch manifest a project: each older manifest row is copied to the
    projects with rows in its stream, so every bucket keeps the fetch that was live for it, and
    re-running the copy changes nothing."""
    from warehouse.migrate import discover, migrate

    older = [m for m in discover() if m.version < 90]
    migrate(fresh_wh, older)
    for fetch, at, amount in (("f1", "2025-11-02 01:00:00", "1.25"), ("f2", "2025-11-03 01:00:00", "2.5")):
        fresh_wh.command(
            "INSERT INTO provider_costs (project, provider, stream, fetch_id, fetched_at, bucket_width, bucket_start, "
            "bucket_end, amount, currency, cost_usd) VALUES ('team-a', 'openai', 'openai:costs:1d', {f:String}, "
            "{at:String}, '1d', '2025-11-01 00:00:00', '2025-11-02 00:00:00', {x:Decimal(38, 18)}, 'usd', "
            "{x:Decimal(38, 18)})", {"f": fetch, "at": at, "x": Decimal(amount)})
        fresh_wh.command(
            "INSERT INTO provider_bucket_fetches (stream, bucket_start, bucket_end, fetch_id, fetched_at, rows) "
            "VALUES ('openai:costs:1d', '2025-11-01 00:00:00', '2025-11-02 00:00:00', {f:String}, {at:String}, 1)",
            {"f": fetch, "at": at})
    migration = next(m for m in discover() if m.version == 90)
    migrate(fresh_wh, [*older, migration])
    live = "SELECT project, fetch_id, cost_usd FROM provider_costs_live"
    assert fresh_wh.query_rows(live) == [("team-a", "f2", Decimal("2.5"))]
    for statement in migration.statements():  # idempotent: a re-run adds copies of the same fetches only
        fresh_wh.ddl(statement)
    assert fresh_wh.query_rows(live) == [("team-a", "f2", Decimal("2.5"))]
