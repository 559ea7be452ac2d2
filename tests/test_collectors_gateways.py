"""Gateway log imports (LiteLLM spend logs, Helicone, Portkey, OpenRouter, mapped files) through
the real ingest pipeline: token semantics per source, cached / reasoning / tool-parented calls,
mixed good and bad records, totals to the Decimal, idempotent re-import."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from collectors.runner import run_collector
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


def test_helicone_export(settings: Settings, wh: Warehouse) -> None:
    report = run_collector("helicone", settings, wh, path=FIXTURES / "helicone" / "requests.json")
    assert report.ok, report.error
    assert (report.written, report.dead) == (4, 3)
    # Claude's prompt_tokens exclude the cache (100 + 2000 + 500); current Helicone stores OpenAI's
    # minus cached tokens: h-oa-1's inclusive 3000 comes from its response body, h-oa-2's from
    # its total (1200 + 1024 cached + 300 = 2524), so its input is 2224
    assert totals(wh) == (4, 7824, 5072, 500, 0, 1200, 128, 0, Decimal("0.01832"))
    assert set(dead(wh)) == {"invalid_type", "malformed_json", "invalid_timestamp"}
    assert one(wh, "h-oa-1", "latency_ms, ttft_ms, user_id, feature, route, session_id, tags['region'], "
                             "tags['helicone_session_path']") == \
        (1500, 300, "u-1", "answers", "/chat", "sess-9", "eu", "/agent")
    assert one(wh, "h-oa-2", "tool_name, parent_span_id, span_id, trace_id, reasoning_tokens") == \
        ("web_search", "sp-1", "sp-2", "tr-1", 128)
    assert one(wh, "h-err", "status, http_status") == ("error", 429)
    again = run_collector("helicone", settings, wh, path=FIXTURES / "helicone" / "requests.json")
    assert again.written == 0 and totals(wh)[0] == 4


def test_portkey_export_cost_in_cents(settings: Settings, wh: Warehouse) -> None:
    report = run_collector("portkey", settings, wh, path=FIXTURES / "portkey" / "logs.jsonl")
    assert report.ok, report.error
    assert (report.written, report.dead) == (5, 3)
    # cents ÷ 100: 0.512 + 0.09 + 1.23 + 0 + 0.05 ¢
    assert totals(wh) == (5, 7850, 6072, 500, 0, 1220, 128, 0, Decimal("0.01882"))
    assert set(dead(wh)) == {"malformed_json", "invalid_type", "reasoning_exceeds_output"}
    assert one(wh, "pk-3", "provider, input_tokens, cache_read_tokens, cache_write_5m_tokens") == \
        ("anthropic", 2600, 2000, 500)
    assert one(wh, "pk-5", "input_tokens, cache_read_tokens, output_tokens") == (1050, 1000, 20)  # native shape
    assert one(wh, "pk-2", "tool_name, parent_span_id, span_id, user_id, api_key_id, latency_ms, stream") == \
        ("web_search", "sp-1", "sp-2", "u-1", "vk-openai", 4000, True)
    assert one(wh, "pk-4", "input_tokens, output_tokens, tags['portkey_cache_status']") == (0, 0, "HIT")
    assert one(wh, "pk-1", "feature, tags['region']") == ("answers", "eu")


def test_openrouter_generations(settings: Settings, wh: Warehouse) -> None:
    report = run_collector("openrouter", settings, wh, path=FIXTURES / "openrouter" / "generations.jsonl")
    assert report.ok, report.error
    assert (report.written, report.dead) == (4, 3)
    assert totals(wh) == (4, 6900, 5072, 0, 0, 1200, 278, 0, Decimal("0.01842"))
    assert one(wh, "gen-1", "provider, model_raw, latency_ms, ttft_ms, user_id, tags['openrouter_provider']") == \
        ("openrouter", "openai/gpt-4o", 1500, 300, "u-1", "OpenAI")
    assert one(wh, "gen-2", "ttft_ms, stream") == (None, False)  # not streamed: no first-token time
    assert one(wh, "gen-4", "status") == ("cancelled",)
    assert set(dead(wh)) == {"malformed_json", "invalid_type", "invalid_timestamp"}


def test_mapped_csv_with_anthropic_semantics_and_cents(settings: Settings, wh: Warehouse) -> None:
    report = run_collector("mapped", settings, wh, path=FIXTURES / "mapped" / "acme_calls.csv",
                           mapping=FIXTURES / "mapped" / "acme.toml")
    assert report.ok, report.error
    assert (report.written, report.dead) == (2, 2)
    # input excludes the cache in this source: 100 + 2000 + 500 and 50 + 0 + 1200
    assert totals(wh) == (2, 3850, 2000, 1700, 0, 410, 150, 0, Decimal("0.014345"))
    assert one(wh, "a-2", "toUnixTimestamp64Milli(ts), source, tool_name, parent_span_id, environment, tags['region']") \
        == (1762164001500, "acme-gateway", "search", "a-1", "prod", "eu")
    assert set(dead(wh)) == {"invalid_type", "missing_timestamp"}


@pytest.mark.parametrize("as_parquet", [False, True])
def test_mapped_nested_json_paths_and_native_usage(settings: Settings, wh: Warehouse, tmp_path: Path,
                                                   as_parquet: bool) -> None:
    import polars as pl

    path = FIXTURES / "mapped" / "nested.jsonl"
    if as_parquet:  # nested objects as Parquet structs; the bad row's usage cannot be a struct there
        frame = pl.read_ndjson(path.read_bytes().rsplit(b"\n", 2)[0] + b"\n")
        path = tmp_path / "nested.parquet"
        frame.write_parquet(path)
    report = run_collector("mapped", settings, wh, path=path, mapping=FIXTURES / "mapped" / "nested.toml")
    assert report.ok, report.error
    assert totals(wh)[:7] == (2, 4000, 2048, 0, 0, 600, 64)
    assert report.dead == (0 if as_parquet else 1)
    assert one(wh, "n-2", "user_id, route, tool_name, parent_span_id, span_id") == ("u-2", "/chat", "calculator", "s-1", "s-2")


def test_mapping_errors_name_the_problem(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[columns]\nts = "t"\nmodel = "m"\ncolour = "c"\n')
    report = run_collector("mapped", settings, wh, path=FIXTURES / "mapped" / "acme_calls.csv", mapping=bad)
    assert report.error_kind == "config" and "colour" in report.error and "bad.toml" in report.error


def test_compact_api_answer_is_read_as_one_json_document(tmp_path: Path) -> None:
    from collectors.gateways.source import detect

    compact = tmp_path / "answer.json"
    compact.write_text('{"data": [{"request_id": "a"}, {"request_id": "b"}], "error": null}')
    lines = tmp_path / "lines.json"
    lines.write_text('{"request_id": "a"}\n{"request_id": "b"}\n')
    assert (detect(compact, "auto"), detect(lines, "auto")) == ("json", "jsonl")
