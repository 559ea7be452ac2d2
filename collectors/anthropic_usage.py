"""Anthropic usage and cost exports → provider usage and cost buckets: the Usage & Cost Analytics
API by default (`collectors/anthropic_analytics.py`), the legacy Admin API reports below with
`api = "legacy"`.

Legacy: the usage report (messages) and the cost report.

Usage rows split input into uncached, cache reads and 5-minute / 1-hour cache writes; llmledger's
`input_tokens` is their sum (Anthropic's own `input_tokens` excludes the cache). Cost amounts
are decimal *strings in cents* (`"123.45"` = $1.2345) and are divided by 100 exactly. Bucket
times are RFC 3339 strings. The key comes from the variable `collectors.anthropic.api_key_env`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import polars as pl

from collectors import anthropic_analytics as analytics
from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.buckets import (
    MAX_LIMIT,
    Page,
    StreamSpec,
    buckets_frame,
    collect_streams,
    grouped_columns,
)
from collectors.config import AnthropicConfig
from collectors.errors import BadResponse, ConfigError
from collectors.http import ApiClient

PROVIDER = "anthropic"

# the analytics API's columns without the ones the legacy reports lack (users, request counts)
USAGE_SCHEMA = {k: v for k, v in analytics.USAGE_SCHEMA.items() if k not in ("user_id", "requests")}
COST_SCHEMA = {k: v for k, v in analytics.COST_SCHEMA.items() if k != "api_key_id"}

_USAGE_DIMENSIONS = {"api_key_id": ["api_key_id"], "workspace_id": ["provider_project_id"], "model": ["model"],
                     "service_tier": ["service_tier", "is_batch"], "context_window": ["context_window"],
                     "inference_geo": []}
_COST_DIMENSIONS = {"workspace_id": ["provider_project_id"],
                    "description": ["line_item", "model", "token_type", "service_tier", "context_window"]}


def rfc3339(ts: datetime) -> str:
    """`2025-08-01T00:00:00Z` form of a UTC time."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise BadResponse(f"anthropic: bucket time {value!r} is not RFC 3339") from err


def _buckets(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponse("anthropic: expected {'data': [...], 'has_more': …} from the admin API")
    return body["data"]


def parse_usage_page(body: Any) -> Page:
    """Rows of a messages usage-report page, in provider-usage columns (model still raw)."""
    rows: list[dict[str, Any]] = []
    bounds: list[tuple[datetime, datetime]] = []
    for bucket in _buckets(body):
        start, end = _time(bucket.get("starting_at")), _time(bucket.get("ending_at"))
        bounds.append((start, end))
        for r in bucket.get("results") or []:
            rows.append({
                "bucket_start": start, "bucket_end": end,
                "provider_project_id": r.get("workspace_id"), "api_key_id": r.get("api_key_id"),
                "model_raw": r.get("model"), "service_tier": r.get("service_tier"),
                "context_window": r.get("context_window"), **analytics.token_counts(r),
            })
    frame = analytics.usage_frame(rows, USAGE_SCHEMA).with_columns(
        pl.lit(None, dtype=pl.Int64).alias("requests"),  # the usage report has no request counts
    )
    return Page(frame, buckets_frame(bounds), bool(body.get("has_more")), body.get("next_page"))


def parse_cost_page(body: Any) -> Page:
    """Rows of a cost-report page; `amount` in dollars, exact (the report gives cents as text)."""
    rows: list[dict[str, Any]] = []
    bounds: list[tuple[datetime, datetime]] = []
    for bucket in _buckets(body):
        start, end = _time(bucket.get("starting_at")), _time(bucket.get("ending_at"))
        bounds.append((start, end))
        for r in bucket.get("results") or []:
            rows.append({
                "bucket_start": start, "bucket_end": end, "provider_project_id": r.get("workspace_id"),
                "line_item": r.get("description"), "cost_type": r.get("cost_type"), "model_raw": r.get("model"),
                "service_tier": r.get("service_tier"), "context_window": r.get("context_window"),
                "token_type": r.get("token_type"), "amount_cents": None if r.get("amount") is None else str(r["amount"]),
                "currency": r.get("currency") or "USD",
            })
    frame = analytics.cost_frame(rows, COST_SCHEMA, "anthropic")
    return Page(frame, buckets_frame(bounds), bool(body.get("has_more")), body.get("next_page"))


def _query(group_by: list[str], width: str):  # noqa: ANN202 - a params builder
    def params(start: datetime, end: datetime, limit: int, page: str | None) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = [("starting_at", rfc3339(start)), ("ending_at", rfc3339(end)),
                                        ("bucket_width", width), ("limit", limit)]
        query += [("group_by[]", g) for g in group_by]
        if page:
            query.append(("page", page))
        return query

    return params


class AnthropicUsageCollector:
    """Pulls Anthropic's organization usage report (messages) and cost report."""

    name: ClassVar[str] = "anthropic"
    Config: ClassVar[type[AnthropicConfig]] = AnthropicConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.PULL,
        outputs=frozenset({Output.PROVIDER_USAGE, Output.PROVIDER_COSTS}),
        incremental=True,
        backfill=True,
        provider=PROVIDER,
        summary="Anthropic Usage & Cost Analytics API (default) or legacy usage/cost report buckets",
    )

    def __init__(self, config: AnthropicConfig) -> None:
        self.config = config

    def streams(self) -> list[StreamSpec]:
        """The endpoints this configuration reads."""
        c = self.config
        if c.api == "analytics":
            return self._analytics_streams()
        specs: list[StreamSpec] = []
        if c.usage:
            w = c.bucket_width
            specs.append(StreamSpec(
                f"anthropic:messages:{w}", "v1/organizations/usage_report/messages", Output.PROVIDER_USAGE, w,
                min(c.page_limit or MAX_LIMIT[w], MAX_LIMIT[w]), _query(c.group_by, w), parse_usage_page,
                "collectors.anthropic.group_by / bucket_width",
            ))
        if c.costs:
            specs.append(StreamSpec(
                "anthropic:costs:1d", "v1/organizations/cost_report", Output.PROVIDER_COSTS, "1d",
                min(c.page_limit or 31, 31), _query(c.cost_group_by, "1d"), parse_cost_page,
                "collectors.anthropic.cost_group_by",
            ))
        return specs

    def _analytics_streams(self) -> list[StreamSpec]:
        c, w = self.config, self.config.bucket_width
        limit = min(c.page_limit or analytics.MAX_ROWS, analytics.MAX_ROWS)
        specs: list[StreamSpec] = []
        if c.usage:
            specs.append(StreamSpec(
                f"anthropic:analytics-usage:{w}", analytics.USAGE_PATH, Output.PROVIDER_USAGE, w, limit,
                analytics.query(c.group_by, w), analytics.parse_usage_page, "collectors.anthropic.group_by / "
                "bucket_width (or api = \"legacy\")", rows_paged=True, max_span=analytics.max_span(w)))
        if c.costs:
            specs.append(StreamSpec(
                f"anthropic:analytics-cost:{w}", analytics.COST_PATH, Output.PROVIDER_COSTS, w, limit,
                analytics.query(c.cost_group_by, w), analytics.parse_cost_page, "collectors.anthropic.cost_group_by "
                "(or api = \"legacy\")", rows_paged=True, max_span=analytics.max_span(w)))
        return specs

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Read every stream from its cursor (or `window`); a failing stream does not stop the next."""
        key = os.environ.get(self.config.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"anthropic: set the environment variable {self.config.api_key_env} to an Anthropic Admin API "
                "key (sk-ant-admin…)", setting=self.config.api_key_env,
            )
        headers = {"x-api-key": key, "anthropic-version": self.config.anthropic_version, "Accept": "application/json"}
        if self.config.api == "analytics":
            headers["anthropic-beta"] = analytics.BETA
        with ApiClient(base_url=self.config.base_url, headers=headers, config=self.config.http,
                       source="anthropic", key_env=self.config.api_key_env) as client:
            yield from collect_streams(client, self.streams(), window, cursor,
                                       refetch=self.config.refetch_buckets,
                                       backfill_days=self.config.backfill_days, label=self._label)

    def _label(self, frame: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
        usage = spec.output is Output.PROVIDER_USAGE
        legacy = self.config.api == "legacy"
        dimensions = (_USAGE_DIMENSIONS if legacy else analytics.USAGE_DIMENSIONS) if usage else \
            (_COST_DIMENSIONS if legacy else analytics.COST_DIMENSIONS)
        grouped = grouped_columns(self.config.group_by if usage else self.config.cost_group_by, dimensions)
        return frame.with_columns(
            pl.lit(self.config.project).alias("project"),
            pl.lit(PROVIDER).alias("provider"),
            pl.lit(spec.name).alias("stream"),
            pl.lit(spec.width).alias("bucket_width"),
            pl.lit(grouped, dtype=pl.List(pl.String)).alias("grouped_by"),
        )
