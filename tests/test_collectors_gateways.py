"""Gateway log imports (LiteLLM spend logs, Helicone, Portkey, OpenRouter, mapped files) through
the real ingest pipeline: token semantics per source, cached / reasoning / tool-parented calls,
mixed good and bad records, totals to the Decimal, idempotent re-import."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ingest.collect import run_collector
from llmledger.settings import Settings
from tests.servers import FIXTURES
from warehouse.client import Warehouse

TOTALS = (
    "SELECT count(), sum(input_tokens), sum(cache_read_tokens), sum(cache_write_5m_tokens), sum(cache_write_1h_tokens), "
    "sum(output_tokens), sum(reasoning_tokens), sum(web_searches), sum(provider_reported_cost_usd) FROM calls"
)


def totals(wh: Warehouse) -> tuple:
    return wh.query_rows(TOTALS)[0]


def dead(wh: Warehouse) -> dict[str, str]:
    return dict(wh.query_rows("SELECT reason, any(detail) FROM dead_letters GROUP BY reason"))


def one(wh: Warehouse, event_id: str, columns: str) -> tuple:
    return wh.query_rows(f"SELECT {columns} FROM calls WHERE event_id = {{e:String}}", {"e": event_id})[0]


@pytest.mark.parametrize("name", ["spend_logs.csv", "spend_logs.json"])
def test_litellm_spend_logs(settings: Settings, wh: Warehouse, name: str) -> None:
    path = FIXTURES / "litellm" / name
    report = run_collector("litellm-spend-logs", settings, wh, path=path)
    assert report.ok, report.error
    # 5 calls (one a LiteLLM cache hit, one a failure), 1 MCP tool run, 4 bad rows dead-lettered
    assert (report.by_output, report.dead) == ({"tool_runs": 1, "calls": 5}, 4)
    assert totals(wh) == (5, 6800, 5072, 300, 200, 1200, 278, 2, Decimal("0.018391"))
    assert set(dead(wh)) == {"malformed_json", "invalid_type", "invalid_timestamp", "cache_exceeds_input"}
    assert "prompt_tokens lots" in dead(wh)["invalid_type"]
    # Anthropic: prompt_tokens already holds cache reads and writes; TTL split from the details
    assert one(wh, "msg-an-1", "provider, input_tokens, cache_read_tokens, cache_write_5m_tokens, "
                               "cache_write_1h_tokens, reasoning_tokens, web_searches") == \
        ("anthropic", 2600, 2000, 300, 200, 150, 2)
    # latency, TTFT from completionStartTime, attribution from end_user / team alias / spend_logs_metadata
    assert one(wh, "chatcmpl-oa-1", "latency_ms, ttft_ms, user_id, team, feature, route, environment, session_id, "
                                    "tags['experiment'], tags['litellm_key_alias']") == \
        (1500, 300, "u-42", "search-team", "answers", "/chat", "prod", "sess-1", "b", "prod-key")
    # a call made by a tool: parentage kept
    assert one(wh, "chatcmpl-oa-2", "tool_name, trace_id, span_id, parent_span_id, reasoning_tokens, cache_read_tokens") == \
        ("web_search", "tr-1", "sp-2", "sp-1", 128, 1024)
    assert one(wh, "chatcmpl-cached", "input_tokens, output_tokens, tags['litellm_cache_hit'], "
                                      "tags['litellm_cached_prompt_tokens']") == (0, 0, "true", "3000")
    assert one(wh, "chatcmpl-failed", "status, error_type, http_status") == ("error", "RateLimitError", 429)
    assert wh.query_rows("SELECT tool_name, parent_span_id, duration_ms FROM tool_runs") == \
        [("github/search_issues", "sp-1", 800)]
    # the raw source row is kept with each dead letter
    assert "{not json" in wh.scalar("SELECT raw FROM dead_letters WHERE reason = 'malformed_json'")
    again = run_collector("litellm-spend-logs", settings, wh, path=path)
    assert (again.written, again.duplicates) == (0, 6)
    assert totals(wh)[0] == 5


def test_litellm_older_releases_without_cache_writes_in_prompt(settings: Settings, wh: Warehouse) -> None:
    report = run_collector("litellm-spend-logs", settings, wh, path=FIXTURES / "litellm" / "spend_logs.csv",
                           prompt_includes_cache_writes=False)
    assert report.ok
    assert one(wh, "msg-an-1", "input_tokens") == (3100,)  # the 500 written tokens added to prompt_tokens
    assert one(wh, "chatcmpl-oa-1", "input_tokens") == (3000,)  # OpenAI unaffected


def test_not_a_spend_log_export_is_a_clear_error(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("id,when,what\n1,2,3\n")
    report = run_collector("litellm-spend-logs", settings, wh, path=path)
    assert report.error_kind == "format" and "none of the expected columns" in report.error
