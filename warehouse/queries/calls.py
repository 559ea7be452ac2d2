"""Individual calls behind a number: a page of calls matching the read API's filters plus cost and
latency ranges, in a chosen order, paged by keyset (a cursor naming the last row seen, never an
OFFSET, so page 1,000 costs what page 1 costs and concurrent inserts never shift a page); and one
session's calls in order with the growth of their input.

Newest / oldest first reads widening time windows from the cursor (1 h, 4 h, 16 h, …) until the
page is full: the table's key starts with the hour, so a window reads only its own granules and
a busy range's first page reads one hour. Costliest / slowest first scan the range once.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries.scope import Filters, Scope, where

# the columns of a listed call: no prompt or response text exists to list
COLUMNS = """
    ts, event_id, project, team, feature, route, environment, user_id, api_key_id, session_id, trace_id,
    tool_name, prompt_version, provider, model, deployment, node, service_tier, is_batch, stream,
    status, error_type, http_status, routing_policy, cascade_step, escalated, router_score,
    input_tokens, cache_read_tokens, cache_write_5m_tokens + cache_write_1h_tokens AS cache_write_tokens,
    output_tokens, reasoning_tokens, web_searches,
    latency_ms, ttft_ms,
    if(isNotNull(ttft_ms) AND isNotNull(latency_ms) AND output_tokens > 1,
       (latency_ms - ttft_ms) / (output_tokens - 1), NULL) AS tpot_ms,
    queue_ms,
    cost_usd, input_cost_usd, cache_read_cost_usd, cache_write_cost_usd, output_cost_usd, tool_cost_usd,
    batch_discount_usd, provider_reported_cost_usd, unpriced, price_source
"""
# order name → (sort expression, its ClickHouse type for the cursor's bound value, descending?)
ORDERS: dict[str, tuple[str, str, bool]] = {
    "newest": ("ts", "DateTime64(3, 'UTC')", True),
    "oldest": ("ts", "DateTime64(3, 'UTC')", False),
    "costliest": ("cost_usd", "Decimal(38, 18)", True),
    "slowest": ("ifNull(latency_ms, 0)", "UInt32", True),
}
WINDOWS_H = (1, 4, 16, 64, 256)  # then the rest of the range
MAX_LIMIT = 1000


class BadCursor(ValueError):
    """A cursor that this order did not write (or that was mangled)."""


@dataclass(frozen=True)
class Ranges:
    """Bounds on a call's own numbers, each inclusive and optional."""

    min_cost_usd: Decimal | None = None
    max_cost_usd: Decimal | None = None
    min_latency_ms: int | None = None
    max_latency_ms: int | None = None
    min_ttft_ms: int | None = None
    max_ttft_ms: int | None = None

    def clause(self, params: dict[str, Any]) -> str:
        parts = []
        for name, column, kind, op in (
            ("min_cost_usd", "cost_usd", "Decimal(38, 18)", ">="), ("max_cost_usd", "cost_usd", "Decimal(38, 18)", "<="),
            ("min_latency_ms", "latency_ms", "UInt32", ">="), ("max_latency_ms", "latency_ms", "UInt32", "<="),
            ("min_ttft_ms", "ttft_ms", "UInt32", ">="), ("max_ttft_ms", "ttft_ms", "UInt32", "<="),
        ):
            value = getattr(self, name)
            if value is not None:
                params[f"r_{name}"] = value
                parts.append(f"{column} {op} {{r_{name}:{kind}}}")
        return " AND ".join(parts) or "1"


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the order, the last row's sort value, time and event id."""

    order: str
    value: str
    ts_ms: int
    event_id: str

    def encode(self) -> str:
        raw = json.dumps([self.order, self.value, self.ts_ms, self.event_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, order: str) -> Cursor:
        """Raises `BadCursor` for anything this module did not write for `order`."""
        try:
            got = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(str(got[0]), str(got[1]), int(got[2]), str(got[3]))
        except (ValueError, TypeError, IndexError, KeyError) as err:
            raise BadCursor("the cursor is not one this API wrote") from err
        if cursor.order != order:
            raise BadCursor(f"the cursor belongs to order={cursor.order!r}, not {order!r}")
        return cursor


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _after(cursor: Cursor, params: dict[str, Any]) -> str:
    """Rows strictly after the cursor in its order (ties broken by time, then event id)."""
    expr, kind, descending = ORDERS[cursor.order]
    op = "<" if descending else ">"
    params["c_ts"], params["c_id"] = _ts(cursor.ts_ms), cursor.event_id
    if expr == "ts":
        return f"(ts, event_id) {op} ({{c_ts:DateTime64(3, 'UTC')}}, {{c_id:String}})"
    params["c_value"] = Decimal(cursor.value) if kind.startswith("Decimal") else int(cursor.value)
    return f"({expr}, ts, event_id) {op} ({{c_value:{kind}}}, {{c_ts:DateTime64(3, 'UTC')}}, {{c_id:String}})"


def _select(wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None, ranges: Ranges,
            order: str, cursor: Cursor | None, limit: int, tag: str) -> pl.DataFrame:
    expr, _, descending = ORDERS[order]
    params: dict[str, Any] = {"limit": limit}
    conditions = [where(scope, start, end, filters, params=params), ranges.clause(params)]
    if cursor is not None:
        conditions.append(_after(cursor, params))
    direction = "DESC" if descending else "ASC"
    sort = f"ts {direction}, event_id {direction}" if expr == "ts" else \
        f"{expr} {direction}, ts {direction}, event_id {direction}"
    sql = (f"SELECT {COLUMNS}, toString({expr}) AS sort_value FROM calls WHERE {' AND '.join(conditions)} "
           f"ORDER BY {sort} LIMIT {{limit:UInt32}}")
    return wh.query_df(sql, params, tag=tag)


def _windows(start: datetime, end: datetime, cursor: Cursor | None, descending: bool) -> list[tuple[datetime, datetime]]:
    """The widening windows a time-ordered page reads, from the cursor (or the range's edge) on."""
    if cursor is not None:
        at = _ts(cursor.ts_ms)
        start, end = (start, min(end, at + timedelta(milliseconds=1))) if descending else (max(start, at), end)
    out, edge = [], end if descending else start
    for hours in WINDOWS_H:
        if (descending and edge <= start) or (not descending and edge >= end):
            return out
        other = max(start, edge - timedelta(hours=hours)) if descending else min(end, edge + timedelta(hours=hours))
        out.append((other, edge) if descending else (edge, other))
        edge = other
    if (descending and edge > start) or (not descending and edge < end):
        out.append((start, edge) if descending else (edge, end))
    return out


def calls_page(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None, *,
    ranges: Ranges | None = None, order: str = "newest", cursor: str | None = None, limit: int = 50,
    tag: str = "calls:page",
) -> tuple[pl.DataFrame, str | None]:
    """(up to `limit` calls of [start, end) matching `filters` and `ranges` in `order`, the cursor
    of the next page or None when this is the last). `order`: newest, oldest, costliest, slowest.
    Raises `BadCursor` for a cursor of another order, `ValueError` for an unknown order."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {sorted(ORDERS)}")
    limit = max(1, min(int(limit), MAX_LIMIT))
    after = Cursor.decode(cursor, order) if cursor else None
    ranges = ranges or Ranges()
    _, _, descending = ORDERS[order]
    if ORDERS[order][0] != "ts":
        frame = _select(wh, scope, start, end, filters, ranges, order, after, limit + 1, tag)
    else:
        parts: list[pl.DataFrame] = []
        found = 0
        for lo, hi in _windows(start, end, after, descending):
            part = _select(wh, scope, lo, hi, filters, ranges, order, after, limit + 1 - found, tag)
            if part.height:
                parts.append(part)
                found += part.height
            if found > limit:
                break
        frame = pl.concat(parts) if parts else _select(wh, scope, start, start + timedelta(milliseconds=1), filters,
                                                         ranges, order, None, 0, tag)
    more = frame.height > limit
    frame = frame.head(limit)
    next_cursor = None
    if more and frame.height:
        last = frame.row(frame.height - 1, named=True)
        ts = last["ts"] if last["ts"].tzinfo else last["ts"].replace(tzinfo=UTC)
        next_cursor = Cursor(order, str(last["sort_value"]), int(ts.timestamp() * 1000), str(last["event_id"])).encode()
    return frame.drop("sort_value"), next_cursor


def session_calls(
    wh: Warehouse, scope: Scope, session_id: str, start: datetime, end: datetime, filters: Filters | None = None,
    *, limit: int = 500, tag: str = "calls:session",
) -> pl.DataFrame:
    """One session's calls of [start, end) (and `filters`) oldest first (at most `limit`), each with its turn
    number, how much its input grew over the previous call's (`input_growth_tokens`: a session
    re-sending its whole history grows by the last answer and question every turn) and the
    session's cost so far (`cumulative_cost_usd`)."""
    params: dict[str, Any] = {"limit": max(1, min(int(limit), 10_000))}
    sql = f"""
        SELECT *, row_number() OVER (ORDER BY ts, event_id) AS turn,
            toInt64(input_tokens) - toInt64(lagInFrame(input_tokens, 1, input_tokens)
                OVER (ORDER BY ts, event_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) AS input_growth_tokens,
            sum(cost_usd) OVER (ORDER BY ts, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                AS cumulative_cost_usd
        FROM (
            SELECT {COLUMNS} FROM calls
            WHERE {where(scope, start, end, {**(filters or {}), "session_id": [session_id]}, params=params)}
            ORDER BY ts, event_id LIMIT {{limit:UInt32}}
        )
        ORDER BY ts, event_id
    """
    return wh.query_df(sql, params, tag=tag)
