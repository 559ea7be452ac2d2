"""Warehouse figures behind `GET /metrics`: cumulative LLM-traffic aggregates per bounded label set,
and alert incidents by signal and state.

`traffic(...)` sums every stored call of the scope (all time: Prometheus counters are totals since
the series began, and `rate()` / `increase()` make windows of them) grouped by the chosen label
columns and status, all in one ClickHouse statement: the busiest `max_series` label sets (by calls)
keep their values, every other set is summed into one whose labels all read `OTHER`. Latency and
TTFT histograms come out as cumulative bucket counts (`le` in seconds) of successful calls with a
measured value, exactly as Prometheus histograms expect. Money is Decimal(38, 18) USD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries.scope import DIMENSIONS, Scope

OTHER = "(other)"
TOKEN_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")

_TRAFFIC = """
SELECT {outer_labels}, status,
    sum(n_calls) AS calls, sum(s_cost) AS cost_usd,
    sum(s_input) AS input_tokens, sum(s_cache_read) AS cache_read_tokens, sum(s_cache_write) AS cache_write_tokens,
    sum(s_output) AS output_tokens, sum(s_reasoning) AS reasoning_tokens,
    sumForEach(lat_le) AS latency_le, sum(lat_n) AS latency_count, sum(lat_sum_s) AS latency_sum_s,
    sumForEach(ttft_le) AS ttft_le, sum(ttft_n) AS ttft_count, sum(ttft_sum_s) AS ttft_sum_s
FROM (
    SELECT *, dense_rank() OVER (ORDER BY set_calls DESC, set_key) AS set_rank
    FROM (
        SELECT *, sum(n_calls) OVER (PARTITION BY set_key) AS set_calls
        FROM (
            SELECT {inner_labels}, toString(calls.status) AS status, {set_key} AS set_key,
                count() AS n_calls, sum(calls.cost_usd) AS s_cost,
                sum(calls.input_tokens) AS s_input, sum(calls.cache_read_tokens) AS s_cache_read,
                sum(calls.cache_write_5m_tokens + calls.cache_write_1h_tokens) AS s_cache_write,
                sum(calls.output_tokens) AS s_output, sum(calls.reasoning_tokens) AS s_reasoning,
                sumForEach(arrayMap(b -> toUInt64({lat_ok} AND calls.latency_ms <= b), {{bounds_ms:Array(Float64)}}))
                    AS lat_le,
                countIf({lat_ok}) AS lat_n, sumIf(toFloat64(calls.latency_ms), {lat_ok}) / 1000 AS lat_sum_s,
                sumForEach(arrayMap(b -> toUInt64({ttft_ok} AND calls.ttft_ms <= b), {{bounds_ms:Array(Float64)}}))
                    AS ttft_le,
                countIf({ttft_ok}) AS ttft_n, sumIf(toFloat64(calls.ttft_ms), {ttft_ok}) / 1000 AS ttft_sum_s
            FROM calls
            WHERE {scope}
            GROUP BY {group}, status
        )
    )
)
GROUP BY {outer_group}, status
ORDER BY calls DESC, {outer_group}, status
"""


def traffic(
    wh: Warehouse, scope: Scope, labels: Sequence[str], *, max_series: int, buckets_s: Sequence[float],
    tag: str = "metrics:traffic",
) -> pl.DataFrame:
    """Per kept label set (columns named as `labels`) and status: calls, cost_usd, the five token
    kinds, and for successful calls `latency_le` / `ttft_le` (cumulative counts at each bound of
    `buckets_s`), `*_count` and `*_sum_s`. At most `max_series` label sets plus one `OTHER` set."""
    if not labels:
        raise ValueError("metrics need at least one label")
    columns = [identifier(name, DIMENSIONS) for name in labels]
    params: dict[str, Any] = {"cap": int(max_series), "other": OTHER,
                              "bounds_ms": [float(b) * 1000 for b in buckets_s]}
    inner = ", ".join(f"toString(calls.{col}) AS l{i}" for i, col in enumerate(columns))
    outer = ", ".join(f"if(set_rank <= {{cap:UInt32}}, l{i}, {{other:String}}) AS {col}"
                      for i, col in enumerate(columns))
    sql = _TRAFFIC.format(
        inner_labels=inner, outer_labels=outer,
        set_key="concat(" + ", '\\0', ".join(f"toString(calls.{col})" for col in columns) + ", '')",
        group=", ".join(f"l{i}" for i in range(len(columns))),
        outer_group=", ".join(columns),
        lat_ok="calls.status = 'ok' AND isNotNull(calls.latency_ms)",
        ttft_ok="calls.status = 'ok' AND isNotNull(calls.ttft_ms)",
        scope=scope.clause(params, column="calls.project"),
    )
    return wh.query_df(sql, params, tag=tag)


def incident_counts(wh: Warehouse, scope: Scope, *, tag: str = "metrics:incidents") -> pl.DataFrame:
    """Incidents (latest version each) by signal and state: columns signal, state, incidents."""
    params: dict[str, Any] = {}
    sql = (f"SELECT signal, state, count() AS incidents FROM alert_incidents FINAL WHERE {scope.clause(params)} "
           "GROUP BY signal, state ORDER BY signal, state")
    return wh.query_df(sql, params, tag=tag)
