"""The ingest pipeline on real chDB: token semantics per source format, validation reasons and
dead letters, idempotent re-ingest, and the file formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest

from ingest.pipeline import Pipeline
from ingest.validate import Reason
from llmledger.settings import Settings
from tests.factories import make_call, write_jsonl
from tests.conftest import both_transports
from warehouse.client import Warehouse

TOKENS = "input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, web_searches"


def _tokens(wh: Warehouse, event_id: str) -> tuple[int, ...]:
    return wh.query_rows(f"SELECT {TOKENS} FROM calls WHERE event_id = {{e:String}}", {"e": event_id})[0]


@pytest.mark.parametrize(
    "provider,model,usage,expected",
    [
        pytest.param(
            "anthropic", "claude-sonnet-4-5",
            {"input_tokens": 100, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
             "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 200},
             "output_tokens": 400, "output_tokens_details": {"thinking_tokens": 150},
             "server_tool_use": {"web_search_requests": 2}},
            (2600, 2000, 300, 200, 400, 150, 2),
            id="anthropic-messages: input excludes cache reads and writes",
        ),
        pytest.param(
            "anthropic", "claude-haiku-4-5",
            {"input_tokens": 50, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 1200, "output_tokens": 10},
            (1250, 0, 1200, 0, 10, 0, 0),
            id="anthropic-messages: writes without TTL split count as 5m",
        ),
        pytest.param(
            "openai", "gpt-4o",
            {"prompt_tokens": 3000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 2048},
             "completion_tokens_details": {"reasoning_tokens": 0}},
            (3000, 2048, 0, 0, 500, 0, 0),
            id="openai-chat: prompt tokens include cached",
        ),
        pytest.param(
            "openai", "o4-mini",
            {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
             "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 128}},
            (1200, 1024, 0, 0, 300, 128, 0),
            id="openai-responses: cached and reasoning are subsets",
        ),
        pytest.param(
            "gemini", "gemini-2.5-flash",
            {"promptTokenCount": 1000, "cachedContentTokenCount": 200, "candidatesTokenCount": 50,
             "thoughtsTokenCount": 70, "toolUsePromptTokenCount": 30},
            (1030, 200, 0, 0, 120, 70, 0),
            id="gemini: candidates exclude thoughts",
        ),
    ],
)
def test_native_usage_objects_become_canonical_tokens(
    pipeline: Pipeline, wh: Warehouse, tmp_path: Path, provider: str, model: str, usage: dict, expected: tuple
) -> None:
    call = make_call(provider=provider, model=model, usage=usage, input_tokens=None, output_tokens=None)
    summary = pipeline.ingest_file(write_jsonl(tmp_path / "u.jsonl", [call]))
    assert summary.written == 1 and summary.dead == 0
    assert _tokens(wh, call["event_id"]) == expected


def test_canonical_fields_win_over_the_usage_object(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    call = make_call(input_tokens=10, output_tokens=5, usage={"prompt_tokens": 999, "completion_tokens": 999})
    pipeline.ingest_file(write_jsonl(tmp_path / "c.jsonl", [call]))
    assert _tokens(wh, call["event_id"])[0::4] == (10, 5)


def _bad_records() -> dict[Reason, dict]:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    return {
        Reason.INVALID_TYPE: make_call(output_tokens="lots"),
        Reason.MISSING_TIMESTAMP: make_call(ts=None),
        Reason.INVALID_TIMESTAMP: make_call(ts="yesterday-ish"),
        Reason.FUTURE_TIMESTAMP: make_call(ts=future),
        Reason.MISSING_MODEL: make_call(model=""),
        Reason.MISSING_ID: make_call(event_id="  "),
        Reason.NEGATIVE_TOKENS: make_call(output_tokens=-3),
        Reason.IMPOSSIBLE_TOKENS: make_call(input_tokens=900_000_000),
        Reason.CACHE_EXCEEDS_INPUT: make_call(input_tokens=100, cache_read_tokens=80, cache_write_5m_tokens=30),
        Reason.REASONING_EXCEEDS_OUTPUT: make_call(output_tokens=10, reasoning_tokens=11),
        Reason.INVALID_STATUS: make_call(status="exploded"),
        Reason.INVALID_DEPLOYMENT: make_call(deployment="edge"),
        Reason.INVALID_LATENCY: make_call(ttft_ms=2000, latency_ms=1000),
        Reason.INVALID_COST: make_call(provider_reported_cost_usd="twelve dollars"),
    }


@pytest.mark.parametrize("reason", list(_bad_records()))
def test_each_validation_reason_dead_letters_only_the_bad_record(
    pipeline: Pipeline, wh: Warehouse, tmp_path: Path, reason: Reason
) -> None:
    bad = _bad_records()[reason]
    good = [make_call(), make_call()]
    summary = pipeline.ingest_file(write_jsonl(tmp_path / "m.jsonl", [good[0], bad, good[1]]))
    assert (summary.written, summary.dead) == (2, 1)
    assert summary.dead_by_reason == {reason.value: 1}
    letter = wh.query_df("SELECT * FROM dead_letters").row(0, named=True)
    assert letter["reason"] == reason.value
    assert letter["line_no"] == 2
    assert letter["source"] == "m.jsonl"
    assert orjson.loads(letter["raw"]) == bad
    assert letter["detail"]


@both_transports
def test_mixed_file_keeps_good_records_and_names_each_bad_line(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    records = [make_call() for _ in range(5)]
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        records[:3],
        extra_lines=[b"{not json", b"[1, 2, 3]", b"", orjson.dumps(records[3]), orjson.dumps(make_call(input_tokens=-1)),
                     orjson.dumps(records[4])],
    )
    summary = pipeline.ingest_file(path)
    assert summary.written == 5
    assert summary.dead_by_reason == {"malformed_json": 2, "negative_tokens": 1}
    lines = dict(wh.query_rows("SELECT line_no, reason FROM dead_letters"))
    assert lines == {4: "malformed_json", 5: "malformed_json", 8: "negative_tokens"}
    assert wh.scalar("SELECT count() FROM calls") == 5


def test_dead_letter_payload_is_capped(wh: Warehouse, settings: Settings, tmp_path: Path) -> None:
    big = make_call(output_tokens=-1, feature="x" * 50_000)
    with Pipeline(wh, settings) as pipeline:
        pipeline.ingest_file(write_jsonl(tmp_path / "big.jsonl", [big]))
    raw, size, truncated = wh.query_rows("SELECT raw, raw_bytes, raw_truncated FROM dead_letters")[0]
    assert truncated and size > 50_000 and len(raw.encode()) <= settings.ingest.dead_letter_raw_max_bytes


@both_transports
def test_reingesting_a_file_changes_no_totals(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    records = [make_call(model=m, input_tokens=i * 100 + 1) for i, m in enumerate(["gpt-4o", "claude-haiku-4-5"] * 50)]
    records += [{k: v for k, v in make_call(user_id=f"anon-{i}").items() if k != "event_id"} for i in range(20)]
    records.append(dict(records[0]))  # a duplicate inside the file
    path = write_jsonl(tmp_path / "twice.jsonl", records, extra_lines=[b"{not json", orjson.dumps(make_call(input_tokens=-1))])
    first = pipeline.ingest_file(path)
    totals = wh.query_rows("SELECT count(), sum(cost_usd), sum(input_tokens) FROM calls")
    second = pipeline.ingest_file(path)
    assert (first.written, first.duplicates) == (120, 1)
    assert (second.written, second.duplicates) == (0, 121)
    assert wh.query_rows("SELECT count(), sum(cost_usd), sum(input_tokens) FROM calls") == totals
    # each run reports the file's bad records; the ledger of dead letters keeps them once
    assert first.dead_by_reason == second.dead_by_reason == {"malformed_json": 1, "negative_tokens": 1}
    assert wh.query_rows("SELECT reason, count() FROM dead_letters GROUP BY reason ORDER BY reason") == [
        ("malformed_json", 1), ("negative_tokens", 1)]
    derived = wh.scalar("SELECT count() FROM calls WHERE startsWith(event_id, 'h:')")
    assert derived == 20


@both_transports
def test_timestamps_in_every_accepted_form_land_as_utc_milliseconds(
    pipeline: Pipeline, wh: Warehouse, tmp_path: Path
) -> None:
    forms = {
        "iso-z": "2025-11-03T10:00:00.250Z",
        "iso-offset": "2025-11-03T12:00:00.250+02:00",
        "naive": "2025-11-03 10:00:00.250",
        "epoch-s": 1762164000.25,
        "epoch-ms": 1762164000250,
        "epoch-us": 1762164000250000,
    }
    records = [make_call(event_id=k, ts=v) for k, v in forms.items()]
    pipeline.ingest_file(write_jsonl(tmp_path / "ts.jsonl", records))
    stamps = {eid: ts for eid, ts in wh.query_rows("SELECT event_id, toUnixTimestamp64Milli(ts) FROM calls")}
    assert stamps == {k: 1762164000250 for k in forms}


@both_transports
def test_csv_and_parquet_files(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    rows = [make_call(cache_read_tokens=100, reasoning_tokens=20, is_batch=i % 2 == 0) for i in range(6)]
    frame = pl.DataFrame(rows)
    frame.head(3).write_csv(tmp_path / "calls.csv")
    frame.tail(3).write_parquet(tmp_path / "calls.parquet")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("event_id,ts,model,input_tokens,output_tokens\nok1,2025-11-03T10:00:00Z,gpt-4o,10,5\n"
                       "bad1,2025-11-03T10:00:00Z,gpt-4o,ten,5\n")
    assert pipeline.ingest_file(tmp_path / "calls.csv").written == 3
    assert pipeline.ingest_file(tmp_path / "calls.parquet").written == 3
    mixed = pipeline.ingest_file(bad_csv)
    assert (mixed.written, mixed.dead_by_reason) == (1, {"invalid_type": 1})
    assert wh.scalar("SELECT line_no FROM dead_letters") == 3
    assert wh.scalar("SELECT countIf(is_batch) FROM calls") == 3
    assert wh.scalar("SELECT sum(cache_read_tokens) FROM calls") == 600


def test_names_are_normalised_and_raw_names_kept(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    records = [
        make_call(provider="Anthropic", model="claude-3-5-sonnet-20241022"),
        make_call(provider=None, model="gpt-4o-mini-2024-07-18"),
        make_call(provider="vertex_ai", model="gemini-2.5-flash"),
        make_call(provider="vllm", model="Llama-3.1-70B-Instruct"),
    ]
    pipeline.ingest_file(write_jsonl(tmp_path / "n.jsonl", records))
    got = set(wh.query_rows("SELECT provider, model, model_raw, deployment FROM calls"))
    assert got == {
        ("anthropic", "claude-3-5-sonnet", "claude-3-5-sonnet-20241022", "api"),
        ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api"),
        ("google", "gemini-2.5-flash", "gemini-2.5-flash", "api"),
        ("self_hosted", "llama-3.1-70b-instruct", "Llama-3.1-70B-Instruct", "self_hosted"),
    }


@both_transports
def test_batch_records_are_summarised(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    pipeline.ingest_file(write_jsonl(tmp_path / "b.jsonl", [make_call(), make_call(status="nope")]))
    row = wh.query_df("SELECT * FROM ingest_batches").row(0, named=True)
    assert (row["source"], row["rows_read"], row["rows_written"], row["rows_dead"]) == ("b.jsonl", 2, 1, 1)


@both_transports
def test_provider_reported_cost_is_kept_exactly(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    pipeline.ingest_file(write_jsonl(tmp_path / "r.jsonl", [make_call(provider_reported_cost_usd="0.000123456789")]))
    assert wh.scalar("SELECT provider_reported_cost_usd FROM calls") == Decimal("0.000123456789")


def test_a_malformed_usage_column_value_dead_letters_only_its_row(pipeline: Pipeline, wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        "event_id,ts,provider,model,usage\n"
        'a,2025-11-03T10:00:00Z,openai,gpt-4o,"{""prompt_tokens"": 10, ""completion_tokens"": 2}"\n'
        "b,2025-11-03T10:00:00Z,openai,gpt-4o,{not json\n"
    )
    summary = pipeline.ingest_file(path)
    assert (summary.written, summary.dead_by_reason) == (1, {"invalid_type": 1})
    assert wh.query_rows("SELECT event_id, input_tokens FROM calls") == [("a", 10)]
    assert "usage" in wh.scalar("SELECT detail FROM dead_letters")
