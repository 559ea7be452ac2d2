"""`llmledger export calls`: every stored call of the range and filters, in bounded chunks that
together hold each call exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pyarrow.parquet as pq

from llmledger.exports.calls import chunks, export_calls
from tests.factories import frame, make_call
from warehouse.queries import attribution
from warehouse.queries.scope import Scope

SINCE, UNTIL = datetime(2025, 11, 3, 10, 30, tzinfo=UTC), datetime(2025, 11, 3, 16, tzinfo=UTC)


def test_chunks_cut_at_hours_within_the_bound() -> None:
    h = [datetime(2025, 11, 3, i, tzinfo=UTC) for i in range(10, 16)]
    got = list(chunks(list(zip(h, [3, 3, 3, 9, 1, 1], strict=True)), 6, SINCE, UNTIL))
    assert got == [(SINCE, h[2]), (h[2], h[3]), (h[3], h[4]), (h[4], UNTIL)]


def test_export_streams_every_call_of_the_range_and_filter(wh, pipeline, tmp_path) -> None:
    calls = [make_call(ts=f"2025-11-03T{10 + i // 4:02d}:{(i % 4) * 15:02d}:00Z", team="ads" if i % 3 else "search",
                       tags={"env": "prod"}) for i in range(24)]
    pipeline.ingest_frame(frame(calls), source="t")
    out = tmp_path / "calls.parquet"
    written = export_calls(wh, Scope.all(), SINCE, UNTIL, out, {"team": ["ads"]}, chunk_rows=5)
    back = pl.read_parquet(out)
    expected = attribution.totals(wh, Scope.all(), SINCE, UNTIL, {"team": ["ads"]}).row(0, named=True)
    assert written == back.height == expected["calls"] == 15 and back["event_id"].n_unique() == 15
    assert set(back["team"]) == {"ads"} and back["ts"].min() >= SINCE
    assert sum(back["cost_usd"].to_list(), Decimal(0)) == expected["cost_usd"]
    assert pq.ParquetFile(out).metadata.num_row_groups >= 3  # written chunk by chunk
    assert "batch_id" not in back.columns and back["tags"].dtype != pl.String
