"""The calls explorer's reads: keyset pages that neither skip nor repeat a call in any order (also
across the widening time windows), every filter and range applied, cursors of another order
refused, one project never seeing another's calls, and a session's calls in order with their
input growth — through the query library and through `GET /v1/calls` / `/v1/sessions/{id}`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from ingest.pipeline import Pipeline
from tests.factories import frame, make_call
from warehouse.client import Warehouse
from warehouse.queries import calls
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 3, tzinfo=UTC)
START, END = T0 - timedelta(days=2), T0 + timedelta(days=3)
DEFAULT = Scope.of("default")


def _records() -> list[dict]:
    """60 calls over two days (some sharing a millisecond, to test the ties), a 4-turn session and
    a call of another project."""
    out = []
    for i in range(60):
        at = T0 + timedelta(hours=i * 0.7) if i % 10 else T0 + timedelta(hours=(i - 1) * 0.7)  # ties on every 10th
        out.append(make_call(event_id=f"c-{i:03d}", ts=at.isoformat().replace("+00:00", "Z"),
                             team="search" if i % 2 else "data", model="gpt-4o" if i % 3 else "gpt-4o-mini",
                             input_tokens=100 + i * 10, output_tokens=20 + i, latency_ms=200 + i * 100,
                             ttft_ms=100 + i, stream=True, status="error" if i % 7 == 0 else "ok"))
    for turn in range(4):
        out.append(make_call(event_id=f"s-{turn}", ts=(T0 + timedelta(minutes=5 * turn)).isoformat().replace("+00:00", "Z"),
                             session_id="sess-1", input_tokens=1000 * (turn + 1), output_tokens=50))
    out.append(make_call(event_id="other-1", project="other", ts=T0.isoformat().replace("+00:00", "Z")))
    return out


@pytest.fixture
def stored(pipeline: Pipeline, wh: Warehouse) -> Warehouse:
    result = pipeline.ingest_frame(frame(_records()), source="test")
    assert not result.rejections and result.written == 65
    return wh


def _all_pages(wh: Warehouse, order: str, *, limit: int) -> list[pl.DataFrame]:
    pages, cursor = [], None
    while True:
        page, cursor = calls.calls_page(wh, DEFAULT, START, END, order=order, cursor=cursor, limit=limit)
        pages.append(page)
        if cursor is None:
            return pages


def test_keyset_pages_list_every_call_once_in_order(stored: Warehouse) -> None:
    for order, key, descending in (("newest", "ts", True), ("oldest", "ts", False), ("costliest", "cost_usd", True),
                                   ("slowest", "latency_ms", True)):
        pages = _all_pages(stored, order, limit=7)
        ids = [i for p in pages for i in p["event_id"].to_list()]
        assert len(ids) == len(set(ids)) == 64, order  # the other project's call is not there
        assert all(p.height == 7 for p in pages[:-1]) and 0 < pages[-1].height <= 7, order
        listed = pl.concat(pages)
        expected = listed.sort([key, "ts", "event_id"], descending=descending, nulls_last=True)
        assert listed["event_id"].to_list() == expected["event_id"].to_list(), order


def test_filters_and_ranges(stored: Warehouse) -> None:
    page, cursor = calls.calls_page(stored, Scope.all(), START, END, {"team": ["search"], "status": ["ok"]},
                                    ranges=calls.Ranges(min_latency_ms=2000, max_latency_ms=4000), limit=100)
    assert cursor is None and page.height > 0
    assert set(page["team"]) == {"search"} and set(page["status"]) == {"ok"}
    assert page["latency_ms"].min() >= 2000 and page["latency_ms"].max() <= 4000
    cheap = calls.calls_page(stored, Scope.all(), START, END, ranges=calls.Ranges(max_cost_usd=Decimal("0.003")),
                             limit=100)[0]
    assert cheap.height > 0 and all(c <= Decimal("0.003") for c in cheap["cost_usd"])
    one = page.row(0, named=True)  # a listed call carries its components, tokens and TPOT
    parts = sum((one[c] for c in ("input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "output_cost_usd",
                                  "tool_cost_usd")), Decimal(0)) - one["batch_discount_usd"]
    assert one["cost_usd"] == parts
    assert one["tpot_ms"] == pytest.approx((one["latency_ms"] - one["ttft_ms"]) / (one["output_tokens"] - 1))


def test_a_cursor_belongs_to_its_order(stored: Warehouse) -> None:
    _, cursor = calls.calls_page(stored, Scope.all(), START, END, order="costliest", limit=3)
    assert cursor
    with pytest.raises(calls.BadCursor):
        calls.calls_page(stored, Scope.all(), START, END, order="newest", cursor=cursor)
    with pytest.raises(calls.BadCursor):
        calls.calls_page(stored, Scope.all(), START, END, cursor="not-a-cursor")


def test_a_session_in_order_with_its_input_growth(stored: Warehouse) -> None:
    turns = calls.session_calls(stored, Scope.of("default"), "sess-1", START, END)
    assert turns["event_id"].to_list() == ["s-0", "s-1", "s-2", "s-3"]
    assert turns["turn"].to_list() == [1, 2, 3, 4]
    assert turns["input_growth_tokens"].to_list() == [0, 1000, 1000, 1000]
    assert turns["cumulative_cost_usd"].to_list()[-1] == sum(turns["cost_usd"], Decimal(0))
    assert calls.session_calls(stored, Scope.of("other"), "sess-1", START, END).is_empty()
