"""Operational look-ups: dead letters, unpriced models and the effective price table.

Dead letters carry no project (a record that failed may not name one validly), so callers must
only show them to principals that see every project.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse
from warehouse.queries import hybrid
from warehouse.queries.scope import Scope


def dead_letters(
    wh: Warehouse,
    start: datetime,
    end: datetime,
    *,
    source: str | None = None,
    reason: str | None = None,
    limit: int = 100,
    tag: str = "dead_letters",
) -> pl.DataFrame:
    """Newest first: when, source, reason, detail, line, event id and the (capped) raw payload."""
    params: dict[str, Any] = {"start": start, "end": end, "limit": int(limit)}
    cond = ["ingested_at >= {start:DateTime64(3, 'UTC')}", "ingested_at < {end:DateTime64(3, 'UTC')}"]
    if source is not None:
        params["source"] = source
        cond.append("source = {source:String}")
    if reason is not None:
        params["reason"] = reason
        cond.append("reason = {reason:String}")
    sql = (
        "SELECT ingested_at, batch_id, source, reason, detail, line_no, event_id, raw, raw_bytes, raw_truncated "
        f"FROM dead_letters WHERE {' AND '.join(cond)} ORDER BY ingested_at DESC LIMIT {{limit:UInt32}}"
    )
    return wh.query_df(sql, params, tag=tag)


def dead_letter_counts(wh: Warehouse, start: datetime, end: datetime, *, tag: str = "dead_letter_counts") -> pl.DataFrame:
    """Dead letters per source and reason in the range."""
    sql = (
        "SELECT source, reason, count() AS records FROM dead_letters "
        "WHERE ingested_at >= {start:DateTime64(3, 'UTC')} AND ingested_at < {end:DateTime64(3, 'UTC')} "
        "GROUP BY source, reason ORDER BY records DESC"
    )
    return wh.query_df(sql, {"start": start, "end": end}, tag=tag)


def prices(
    wh: Warehouse,
    *,
    model: str,
    provider: str | None = None,
    at: datetime,
    tag: str = "prices",
) -> pl.DataFrame:
    """Price cells (USD per token; per use for web searches) in force at `at` for a model
    (exact catalogue id), across contexts, time-of-day windows and input tiers."""
    params: dict[str, Any] = {"model": model, "at": at}
    cond = "model = {model:String} AND valid_from <= {at:DateTime64(3, 'UTC')} AND valid_to > {at:DateTime64(3, 'UTC')}"
    if provider is not None:
        params["provider"] = provider
        cond += " AND provider = {provider:String}"
    sql = (
        "SELECT provider, model, context, valid_from, valid_to, tod_from_ms, tod_to_ms, input_above, input_upto, "
        "rate_input, rate_cache_read, rate_cache_write, rate_cache_write_5m, rate_cache_write_1h, rate_output, "
        "rate_output_reasoning, rate_web_search, rate_request, price_source "
        f"FROM prices WHERE {cond} ORDER BY provider, context, tod_from_ms, input_above"
    )
    return wh.query_df(sql, params, tag=tag)


def unpriced_models(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, tag: str = "unpriced_models"
) -> pl.DataFrame:
    """Models whose calls found no price (kept, priced 0, flagged): deployment, provider, model,
    model_raw, calls, tokens, first and last call — what a price override (`[[pricing.models]]`)
    should cover. Self-hosted ones are costed by GPU time instead (`nodes.infra_by`). Whole hours
    come from the unpriced calls' rollup, the partial hours at the edges from raw calls."""
    params: dict[str, Any] = {}
    keys = {k: k for k in ("deployment", "provider", "model", "model_raw")}
    measures = ("calls", "input_tokens", "output_tokens", "first_seen", "last_seen")
    rows = hybrid.rows(scope, start, end, None, keys=keys, measures=measures, params=params, subset=hybrid.UNPRICED)
    if rows is None:  # not one whole hour in the range
        rows = hybrid.raw_rows(scope, start, end, None, keys=keys, measures=measures, params=params,
                               subset=hybrid.UNPRICED)
    sql = f"""
        SELECT deployment, provider, model, model_raw, sum(calls) AS calls, sum(input_tokens) AS input_tokens,
            sum(output_tokens) AS output_tokens, min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM ({rows})
        GROUP BY deployment, provider, model, model_raw ORDER BY calls DESC, provider, model
    """
    return wh.query_df(sql, params, tag=tag)


def price_list(
    wh: Warehouse,
    *,
    at: datetime,
    models: Sequence[str] = (),
    like: str | None = None,
    limit: int = 200,
    tag: str = "price_list",
) -> pl.DataFrame:
    """Standard-context, base-tier prices in force at `at`, in USD per million tokens, of the listed
    catalogue models and of every model whose id contains `like` (case-insensitive): provider, model,
    input_mtok, cache_read_mtok, output_mtok."""
    params: dict[str, Any] = {"at": at, "models": list(models), "like": like or "", "limit": int(limit)}
    match = "model IN {models:Array(String)}"
    if like:
        match = f"({match} OR positionCaseInsensitive(model, {{like:String}}) > 0)"
    sql = f"""
        SELECT toString(provider) AS provider, model,
            rate_input * 1000000 AS input_mtok, rate_cache_read * 1000000 AS cache_read_mtok,
            rate_output * 1000000 AS output_mtok
        FROM prices
        WHERE {match} AND context = '' AND valid_from <= {{at:DateTime64(3, 'UTC')}}
            AND valid_to > {{at:DateTime64(3, 'UTC')}} AND input_above < 1 AND input_upto >= 1
            AND tod_from_ms = 0 AND rate_input IS NOT NULL AND rate_output IS NOT NULL
        ORDER BY output_mtok, provider, model LIMIT {{limit:UInt32}}
    """
    return wh.query_df(sql, params, tag=tag)
