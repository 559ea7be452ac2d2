"""Anthropic's Usage & Cost Analytics API (beta) → provider usage and cost buckets.

`GET /v1/organizations/analytics/usage` and `/analytics/cost`, each request with the header
`anthropic-beta: analytics-usage-cost-2026-08-24`. Unlike the legacy reports, a page holds rows,
not buckets: each row is one time bucket × one combination of the grouped dimensions
(`{starting_at, ending_at, group: {...}, usage|cost: {...}}`), buckets without usage have no row,
and a bucket's rows may span pages; `collectors.buckets` reads them as whole buckets
(`rows_paged`). Rows are asked for in time order (`order_by=time`, `order=asc`); one query covers
at most 31 days (24 hours at `1m`). Usage splits input like the legacy report (uncached, cache
reads, 5-minute / 1-hour cache writes; llmledger's `input_tokens` is their sum) and adds request
counts; a grouped `actor` (user, service account, federated identity or API key) becomes the
row's `user_id`. Costs are decimal strings in fractional cents, divided by 100 exactly.
Shapes: the `anthropic` SDK's `beta.organization.analytics` types.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from collectors.buckets import Page, buckets_frame, rows_frame
from collectors.errors import BadResponse

BETA = "analytics-usage-cost-2026-08-24"
USAGE_PATH = "v1/organizations/analytics/usage"
COST_PATH = "v1/organizations/analytics/cost"
MAX_ROWS = 1000
MAX_GROUP_BY = 5


def max_span(width: str) -> timedelta:
    """The longest range one query may ask for."""
    return timedelta(hours=24) if width == "1m" else timedelta(days=31)


# settings group-by names → the provider table columns they fill
USAGE_DIMENSIONS = {"api_key_id": ["api_key_id"], "workspace_id": ["provider_project_id"], "model": ["model"],
                    "service_tier": ["service_tier", "is_batch"], "context_window": ["context_window"],
                    "inference_geo": [], "actor": ["user_id"]}
COST_DIMENSIONS = {"api_key_id": ["api_key_id"], "workspace_id": ["provider_project_id"], "model": ["model"],
                   "service_tier": ["service_tier"], "context_window": ["context_window"],
                   "inference_geo": [], "cost_type": ["cost_type", "line_item"], "token_type": ["token_type"]}

USAGE_SCHEMA: dict[str, pl.DataType] = {
    "bucket_start": pl.Datetime("ms", "UTC"),
    "bucket_end": pl.Datetime("ms", "UTC"),
    "provider_project_id": pl.String(),
    "api_key_id": pl.String(),
    "user_id": pl.String(),
    "model_raw": pl.String(),
    "service_tier": pl.String(),
    "context_window": pl.String(),
    "requests": pl.Int64(),
    "uncached_input_tokens": pl.Int64(),
    "cache_read_tokens": pl.Int64(),
    "cache_write_5m_tokens": pl.Int64(),
    "cache_write_1h_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "web_search_requests": pl.Int64(),
}

COST_SCHEMA: dict[str, pl.DataType] = {
    "bucket_start": pl.Datetime("ms", "UTC"),
    "bucket_end": pl.Datetime("ms", "UTC"),
    "provider_project_id": pl.String(),
    "api_key_id": pl.String(),
    "line_item": pl.String(),
    "cost_type": pl.String(),
    "model_raw": pl.String(),
    "service_tier": pl.String(),
    "context_window": pl.String(),
    "token_type": pl.String(),
    "amount_cents": pl.String(),
    "currency": pl.String(),
}


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise BadResponse(f"anthropic analytics: row time {value!r} is not RFC 3339") from err


def _rows(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponse("anthropic analytics: expected {'data': [...], 'has_more': …, 'next_page': …}")
    return body["data"]


def _actor(actor: Any) -> str | None:
    """The identity a row is attributed to, as one id (user, service account, subject, API key)."""
    if not isinstance(actor, dict):
        return None
    for key in ("user_id", "service_account_id", "subject", "api_key_id"):
        if actor.get(key):
            return str(actor[key])
    return None


def token_counts(usage: dict[str, Any]) -> dict[str, Any]:
    """The token columns of one Anthropic usage result (legacy report and analytics alike)."""
    creation, tools = usage.get("cache_creation") or {}, usage.get("server_tool_use") or {}
    return {"uncached_input_tokens": usage.get("uncached_input_tokens"),
            "cache_read_tokens": usage.get("cache_read_input_tokens"),
            "cache_write_5m_tokens": creation.get("ephemeral_5m_input_tokens"),
            "cache_write_1h_tokens": creation.get("ephemeral_1h_input_tokens"),
            "output_tokens": usage.get("output_tokens"), "web_search_requests": tools.get("web_search_requests")}


def usage_frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Usage rows typed, counts zero-filled, input = uncached + cache reads + 5m/1h writes."""
    counts = list(token_counts({}))
    return rows_frame(rows, schema).with_columns(pl.col(counts).fill_null(0)).with_columns(
        pl.sum_horizontal("uncached_input_tokens", "cache_read_tokens", "cache_write_5m_tokens",
                          "cache_write_1h_tokens").alias("input_tokens"),
        pl.when(pl.col("service_tier").is_not_null()).then(pl.col("service_tier") == "batch").alias("is_batch"),
    )


def cost_frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType], source: str) -> pl.DataFrame:
    """Cost rows typed, `amount_cents` (decimal text) → exact dollars in `amount` / `cost_usd`."""
    frame = rows_frame(rows, schema)
    cents = pl.col("amount_cents").str.strip_chars().cast(pl.Decimal(38, 18), strict=False)
    frame = frame.with_columns((cents / 100).alias("amount"), pl.col("currency").str.to_lowercase())
    bad = frame.filter(pl.col("amount").is_null())
    if bad.height:
        raise BadResponse(f"{source}: cost amount {bad['amount_cents'][0]!r} is not a decimal string")
    return frame.drop("amount_cents").with_columns(
        pl.when(pl.col("currency") == "usd").then(pl.col("amount")).alias("cost_usd"))


def _page(body: dict[str, Any], frame: pl.DataFrame, bounds: list[tuple[datetime, datetime]]) -> Page:
    return Page(frame, buckets_frame(sorted(set(bounds))), bool(body.get("has_more")), body.get("next_page"))


def parse_usage_page(body: Any) -> Page:
    """Rows of an analytics usage page in provider-usage columns (model still raw)."""
    rows: list[dict[str, Any]] = []
    bounds: list[tuple[datetime, datetime]] = []
    for item in _rows(body):
        start, end = _time(item.get("starting_at")), _time(item.get("ending_at"))
        bounds.append((start, end))
        group, usage = item.get("group") or {}, item.get("usage") or {}
        rows.append({
            "bucket_start": start, "bucket_end": end, "provider_project_id": group.get("workspace_id"),
            "api_key_id": group.get("api_key_id"), "user_id": _actor(group.get("actor")),
            "model_raw": group.get("model"), "service_tier": group.get("service_tier"),
            "context_window": group.get("context_window"), "requests": usage.get("requests"), **token_counts(usage),
        })
    return _page(body, usage_frame(rows, USAGE_SCHEMA), bounds)


def parse_cost_page(body: Any) -> Page:
    """Rows of an analytics cost page; `amount` in dollars, exact (fractional cents as text)."""
    rows: list[dict[str, Any]] = []
    bounds: list[tuple[datetime, datetime]] = []
    for item in _rows(body):
        start, end = _time(item.get("starting_at")), _time(item.get("ending_at"))
        bounds.append((start, end))
        group, cost = item.get("group") or {}, item.get("cost") or {}
        kind = group.get("token_type") or group.get("cost_type")
        rows.append({
            "bucket_start": start, "bucket_end": end, "provider_project_id": group.get("workspace_id"),
            "api_key_id": group.get("api_key_id"), "line_item": kind, "cost_type": group.get("cost_type"),
            "model_raw": group.get("model"), "service_tier": group.get("service_tier"),
            "context_window": group.get("context_window"), "token_type": group.get("token_type"),
            "amount_cents": None if cost.get("amount") is None else str(cost["amount"]),
            "currency": cost.get("currency") or "USD",
        })
    return _page(body, cost_frame(rows, COST_SCHEMA, "anthropic analytics"), bounds)


def query(group_by: list[str], width: str):  # noqa: ANN201 - a params builder
    """Request parameters: time-bucketed rows in ascending time order, `group_by[]` in brackets."""

    def params(start: datetime, end: datetime, limit: int, page: str | None) -> list[tuple[str, Any]]:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        q: list[tuple[str, Any]] = [("starting_at", start.strftime(fmt)), ("ending_at", end.strftime(fmt)),
                                    ("time_bucket_width", width), ("order_by", "time"), ("order", "asc"),
                                    ("limit", limit)]
        q += [("group_by[]", g) for g in group_by]
        if page:
            q.append(("page", page))
        return q

    return params
