"""Cost rows for the FOCUS export, at its grain: per hour × project × provider × model × deployment ×
attribution set (team, feature, route, environment), plus self-hosted GPU time per node-hour.

EffectiveCost is what we priced (catalogue, negotiated discounts and overrides: `calls.cost_usd`).
ListCost re-prices the same calls in the warehouse against the public catalogue alone — the caller
passes its price cells (`catalogue`, the `prices` table's columns), bound as one JSON parameter and
joined by the same `price_calls.sql` ingest uses; a call the catalogue cannot price keeps its
effective cost as list cost. Money is Decimal(38, 18) USD; hours UTC; ranges [start, end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.client import Warehouse, load_sql
from warehouse.queries import nodes
from warehouse.queries.scope import Filters, Scope, where

ATTRIBUTION = ("team", "feature", "route", "environment")

_CELL_COLUMNS = {"provider": "String", "model": "String", "context": "String", "tod_from_ms": "UInt32",
                 "tod_to_ms": "UInt32", "input_above": "Int64", "input_upto": "Int64", "price_source": "String"}


def catalogue_models(wh: Warehouse, scope: Scope, start: datetime, end: datetime, filters: Filters | None = None,
                     *, tag: str = "export:focus") -> list[tuple[str, str]]:
    """(provider, model) pairs with calls in the range, to restrict the list-price cells bound."""
    params: dict[str, Any] = {}
    rows = wh.query_rows(f"SELECT DISTINCT provider, model FROM calls WHERE {where(scope, start, end, filters, params=params)}",
                         params, tag=tag)
    return [(str(p), str(m)) for p, m in rows]


def _cells_relation(cells: pl.DataFrame) -> str:
    """A relation with the `prices` columns read from the bound JSON array `{cells:String}`."""
    parts = [f"JSONExtract(c, '{name}', '{kind}') AS {name}" for name, kind in _CELL_COLUMNS.items()]
    parts += [f"parseDateTime64BestEffort(JSONExtractString(c, '{name}'), 3, 'UTC') AS {name}"
              for name in ("valid_from", "valid_to")]
    parts += [f"toDecimal128OrNull(JSONExtractString(c, '{name}'), 18) AS {name}"
              for name in cells.columns if name.startswith(("rate_", "list_"))]
    return f"(SELECT {', '.join(parts)} FROM (SELECT arrayJoin(JSONExtractArrayRaw({{cells:String}})) AS c))"


def _cells_json(cells: pl.DataFrame) -> str:
    money = [n for n in cells.columns if n.startswith(("rate_", "list_"))]
    return cells.with_columns(
        pl.col(money).cast(pl.String),
        pl.col("valid_from", "valid_to").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
    ).write_json()


def call_costs(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, catalogue: pl.DataFrame,
    filters: Filters | None = None, *, tag: str = "export:focus",
) -> pl.DataFrame:
    """Per hour (`charge_start`) × project × provider × model × deployment × attribution set: calls,
    tokens by kind, `effective_cost_usd` and `list_cost_usd`."""
    params: dict[str, Any] = {"cells": _cells_json(catalogue)}
    source = (f"(SELECT *, cost_usd AS eff_cost FROM calls "
              f"WHERE {where(scope, start, end, filters, params=params)})")
    priced = load_sql("ingest.sql", "price_calls.sql").replace("__SOURCE__", source)
    priced = priced.replace("LEFT JOIN prices AS p", f"LEFT JOIN {_cells_relation(catalogue)} AS p")
    # (`eff_cost`, not `effective_cost_usd`: an output alias equal to a source column would be substituted)
    keys = ", ".join(("project", "provider", "model", "deployment", *ATTRIBUTION))
    sql = f"""
        SELECT toDateTime64(toStartOfHour(ts), 3, 'UTC') AS charge_start, {keys},
            count() AS calls, sum(input_tokens) AS tokens_input, sum(cache_read_tokens) AS tokens_cache_read,
            sum(cache_write_5m_tokens + cache_write_1h_tokens) AS tokens_cache_write,
            sum(output_tokens) AS tokens_output, sum(reasoning_tokens) AS tokens_reasoning,
            sum(eff_cost) AS effective_cost_usd,
            sum(if(unpriced, eff_cost, cost_usd)) AS list_cost_usd
        FROM ({priced})
        GROUP BY charge_start, {keys}
        ORDER BY charge_start, {keys}
    """
    return wh.query_df(sql, params, tag=tag)


def gpu_costs(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, max_gap_s: int = 120, tag: str = "export:focus",
) -> pl.DataFrame:
    """Self-hosted GPU time per hour (`charge_start`) × node × GPU model: gpu_hours, gpu_rate_usd ($/GPU-hour)
    and cost_usd (NULL where no `gpu_prices` row matches), as `nodes.gpu_cost` counts it."""
    params: dict[str, Any] = {"max_gap_ms": max_gap_s * 1000}
    samples = nodes._range(scope, start, end, max_gap_s, params)  # noqa: SLF001 - same package, one definition
    sql = f"""
        SELECT toDateTime64(t.hour, 3, 'UTC') AS charge_start, t.node AS node, t.gpu_model AS gpu_model, toDecimal128(sum(t.gpu_ms), 0) / 3600000 AS gpu_hours,
            any(t.usd_per_gpu_hour) AS gpu_rate_usd,
            if(countIf(t.usd_per_gpu_hour IS NULL) > 0, NULL,
               sum(toDecimal128(t.gpu_ms, 0) * ifNull(t.usd_per_gpu_hour, 0)) / 3600000) AS cost_usd
        FROM ({nodes._priced_gpu_time(samples, hourly=True)}) AS t
        GROUP BY t.hour, t.node, t.gpu_model
        ORDER BY charge_start, node, gpu_model
    """
    return wh.query_df(sql, params, tag=tag)
