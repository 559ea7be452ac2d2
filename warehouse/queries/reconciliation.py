"""Reconciliation: what providers billed (cost exports) and counted (usage exports) against what
llmledger logged, at the finest grain each export really has.

Each provider's exports are grouped by whatever their collector asked for (`grouped_by`). The
requested dimensions (`by` ⊆ api_key_id, model, service_tier) are narrowed per provider to those its cost
export carries on every line — OpenAI's costs by line item and key give model/day and key/day,
Anthropic's cost report by description gives model/day only, an export grouped by neither gives
provider/day — so billed dollars are never compared with calls at a grain the bill does not
have (an empty model would otherwise read as 100% unlogged). Each row says its `grain`;
dimensions outside it are ''.

Where the grain has a model, bill lines without one (web search and other tool line items) sit
in a row with model '' beside the logged calls' tool cost, and model rows compare token costs.

Per row: `billed_usd` (the provider's), `logged_usd` (llmledger's price of the logged calls),
`gateway_reported_usd` (the gateway's own figure, when it sent one), `diff_usd` = billed −
logged, `invisible_usd` = the part of the bill no logged call explains (max(diff, 0)), and
`capture_rate` = logged ÷ billed; beside them the provider's and the logged token counts (where
the usage export has the row's grain). Reads the `*_live` views, so a re-fetched bucket is
counted once. Days are UTC; [start, end) should fall on day boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import reduce
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import Scope

DIMENSIONS = ("api_key_id", "model", "service_tier")
DEFAULT_BY = ("api_key_id", "model")  # service_tier on request (OpenAI groups usage by it)

_GROUPINGS = """
SELECT provider, 'costs' AS export, groupUniqArray(grouped_by) AS groupings
FROM provider_costs_live WHERE {where} GROUP BY provider
UNION ALL
SELECT provider, 'usage' AS export, groupUniqArray(grouped_by) AS groupings
FROM provider_usage_live WHERE {where} AND bucket_width = {{width:String}} GROUP BY provider
"""

_ROWS = """
WITH
usage AS (
    SELECT toDate(bucket_start) AS day{keys},
        sum(requests) AS provider_requests,
        sum(input_tokens) AS provider_input_tokens,
        sum(cache_read_tokens) AS provider_cache_read_tokens,
        sum(cache_write_5m_tokens + cache_write_1h_tokens) AS provider_cache_write_tokens,
        sum(output_tokens) AS provider_output_tokens
    FROM provider_usage_live
    WHERE {export_where} AND bucket_width = {{width:String}} AND hasAll(grouped_by, {{grain:Array(String)}})
    GROUP BY day{keys}
),
costs AS (
    SELECT toDate(bucket_start) AS day{keys}, sum(cost_usd) AS billed_usd
    FROM provider_costs_live WHERE {export_where}
    GROUP BY day{keys}
),
logged AS (
    SELECT day{keys},
        sum(n) AS logged_calls, sum(i) AS logged_input_tokens, sum(r) AS logged_cache_read_tokens,
        sum(w) AS logged_cache_write_tokens, sum(o) AS logged_output_tokens,
        sum(c) AS logged_usd, sum(g) AS gateway_reported_usd
    FROM (
        SELECT toDate(ts) AS day{call_keys}, toUInt64(1) AS n, toUInt64(input_tokens) AS i,
            toUInt64(cache_read_tokens) AS r, toUInt64(cache_write_5m_tokens + cache_write_1h_tokens) AS w,
            toUInt64(output_tokens) AS o, cost_usd - {tool_share} AS c, provider_reported_cost_usd AS g
        FROM calls WHERE {calls_where}
        {tool_rows}
    )
    GROUP BY day{keys}
)
SELECT day, {{provider:String}} AS provider, {{grain_name:String}} AS grain, {columns},
    provider_requests, logged_calls,
    provider_input_tokens, logged_input_tokens,
    provider_cache_read_tokens, logged_cache_read_tokens,
    provider_cache_write_tokens, logged_cache_write_tokens,
    provider_output_tokens, logged_output_tokens,
    billed_usd, logged_usd, gateway_reported_usd,
    billed_usd - ifNull(logged_usd, toDecimal128(0, 18)) AS diff_usd,
    greatest(diff_usd, toDecimal128(0, 18)) AS invisible_usd,
    toFloat64(ifNull(logged_usd, 0)) / nullIf(toFloat64(billed_usd), 0) AS capture_rate
FROM usage
FULL OUTER JOIN costs USING (day{keys})
FULL OUTER JOIN logged USING (day{keys})
ORDER BY day{keys}
SETTINGS join_use_nulls = 1
"""

# the rows of the logged calls' tool cost (web searches …) under model '', beside bill lines without a model
_TOOL_ROWS = """
        UNION ALL
        SELECT toDate(ts) AS day{call_keys_no_model}, '' AS model, toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
            toUInt64(0), tool_cost_usd, NULL
        FROM calls WHERE {calls_where} AND tool_cost_usd != 0
"""

SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(), "provider": pl.String(), "grain": pl.String(), "api_key_id": pl.String(),
    "model": pl.String(), "service_tier": pl.String(), "provider_requests": pl.UInt64(), "logged_calls": pl.UInt64(),
    **{f"{side}_{t}_tokens": pl.UInt64() for t in ("input", "cache_read", "cache_write", "output")
       for side in ("provider", "logged")},
    "billed_usd": pl.Decimal(38, 18), "logged_usd": pl.Decimal(38, 18), "gateway_reported_usd": pl.Decimal(38, 18),
    "diff_usd": pl.Decimal(38, 18), "invisible_usd": pl.Decimal(38, 18), "capture_rate": pl.Float64(),
}


def _grains(wh: Warehouse, scope: Scope, start: datetime, end: datetime, by: Sequence[str], width: str,
            tag: str) -> dict[str, list[str]]:
    """Per provider with exports in the range: the dimensions of `by` that every line of its cost
    export (else, without one, of its usage export) is grouped by."""
    params: dict[str, Any] = {"start": start, "end": end, "width": width}
    where = (f"{scope.clause(params)} AND bucket_start >= {{start:DateTime64(3, 'UTC')}} "
             "AND bucket_start < {end:DateTime64(3, 'UTC')}")
    found: dict[str, dict[str, list[list[str]]]] = {}
    for provider, export, groupings in wh.query_rows(_GROUPINGS.format(where=where), params, tag=tag):
        found.setdefault(provider, {})[export] = groupings
    grains = {}
    for provider, exports in sorted(found.items()):
        groupings = exports.get("costs") or exports.get("usage") or [[]]
        common = reduce(lambda a, b: a & b, (set(g) for g in groupings))
        grains[provider] = [d for d in DIMENSIONS if d in by and d in common]
    return grains


def reconcile(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    by: Sequence[str] = DEFAULT_BY,
    bucket_width: str = "1d",
    tag: str = "reconcile",
) -> pl.DataFrame:
    """Billed against logged per day, provider and the finest grain of `by` each provider's
    exports have (see the module docstring for the columns). `bucket_width` picks the usage
    stream when several widths were collected."""
    for name in by:
        identifier(name, DIMENSIONS)  # refuses anything else
    frames = [
        _provider_rows(wh, scope, start, end, provider, grain, bucket_width, tag)
        for provider, grain in _grains(wh, scope, start, end, by, bucket_width, tag).items()
    ]
    if not frames:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat([f.cast(SCHEMA) for f in frames]).sort("day", "provider", "api_key_id", "model", "service_tier")  # type: ignore[arg-type]


def _provider_rows(wh: Warehouse, scope: Scope, start: datetime, end: datetime, provider: str, grain: list[str],
                   width: str, tag: str) -> pl.DataFrame:
    params: dict[str, Any] = {"start": start, "end": end, "width": width, "provider": provider, "grain": grain,
                              "grain_name": ", ".join(grain) or "provider"}
    export_where = (f"{scope.clause(params)} AND provider = {{provider:String}} "
                    "AND bucket_start >= {start:DateTime64(3, 'UTC')} AND bucket_start < {end:DateTime64(3, 'UTC')}")
    calls_where = (f"{scope.clause(params)} AND provider = {{provider:String}} AND deployment = 'api' "
                   "AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}")
    keys = "".join(f", {d}" for d in grain)
    call_keys = "".join(f", toString({d}) AS {d}" for d in grain)
    by_model = "model" in grain
    tool_rows = ""
    if by_model:
        no_model = "".join(f", toString({d}) AS {d}" for d in grain if d != "model")
        tool_rows = _TOOL_ROWS.format(call_keys_no_model=no_model, calls_where=calls_where)
    columns = ", ".join(f"toString({d}) AS {d}" if d in grain else f"'' AS {d}" for d in DIMENSIONS)
    sql = _ROWS.format(keys=keys, call_keys=call_keys, export_where=export_where, calls_where=calls_where,
                       tool_share="tool_cost_usd" if by_model else "0", tool_rows=tool_rows, columns=columns)
    return wh.query_df(sql, params, tag=tag)


def capture(
    wh: Warehouse,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    by: Sequence[str] = DEFAULT_BY,
    tag: str = "reconcile:capture",
) -> pl.DataFrame:
    """Per provider over the days its cost export covers in the range: the grain it was
    reconciled at, billed and logged dollars, `capture_rate` (logged ÷ billed) and
    `invisible_usd` (the bill no logged call explains, summed over the rows of `reconcile`: per
    key/model/day where the exports have it). A provider without a cost export has no row."""
    rows = reconcile(wh, scope, start, end, by=by, tag=tag)
    billed_days = rows.filter(pl.col("billed_usd").is_not_null()).select("provider", "day").unique()
    money = pl.Decimal(38, 18)
    return (
        rows.join(billed_days, on=["provider", "day"], how="semi")
        .group_by("provider")
        .agg(
            pl.col("grain").first(),
            pl.col("day").n_unique().alias("days"),
            pl.col("billed_usd").sum().cast(money),
            pl.col("logged_usd").sum().cast(money),
            pl.col("invisible_usd").sum().cast(money),
            pl.col("logged_calls").sum(),
        )
        .with_columns(
            pl.when(pl.col("billed_usd") > 0)
            .then(pl.col("logged_usd").cast(pl.Float64) / pl.col("billed_usd").cast(pl.Float64))
            .alias("capture_rate"),
        )
        .sort("provider")
    )
