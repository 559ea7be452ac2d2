"""Self-hosted node metrics: GPU utilisation, inference load, throughput, latency quantiles and the
economics of GPU time — derived at query time from raw samples (the GPU chart's whole five-minute
buckets and hours from the `gpu_samples_5m` / `gpu_samples_hourly` rollups of the GPU gauges).

Counters (vLLM `*_total`) are turned into increases sample to sample, where a value lower than
the previous one is a restart and counts from zero (as PromQL's `increase`). Rates divide an
increase by the time its samples cover; a series' first sample in range uses one sample before
the range (`lookback_s`). Histogram quantiles interpolate linearly inside the cumulative bucket
holding the rank, like PromQL's `histogram_quantile` (the +Inf bucket answers with the highest
finite edge). GPU time counts the interval between consecutive samples of a GPU, up to
`max_gap_s`; its cost is the most specific `gpu_prices` row (node and GPU model, node, GPU
model, any). Money is Decimal(38, 18) USD; rates are per second; times UTC; ranges [start, end).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from warehouse.client import Warehouse, identifier
from warehouse.queries import hybrid
from warehouse.queries.scope import DIMENSIONS, Filters, Scope, where

HISTOGRAM_METRICS = ("ttft_s", "itl_s", "e2e_s", "queue_s", "prefill_s", "decode_s")


SELF_HOSTED_DEPLOYMENT = "self_hosted"  # the `deployment` of every call `hybrid.SELF_HOSTED` selects


def _range(scope: Scope, start: datetime, end: datetime, lookback_s: int, params: dict[str, Any]) -> str:
    params.update(start=start, end=end, read_from=start - timedelta(seconds=lookback_s))
    return (f"{scope.clause(params)} AND ts >= {{read_from:DateTime64(3, 'UTC')}} "
            "AND ts < {end:DateTime64(3, 'UTC')}")


def _increase(column: str) -> str:
    """Increase of a cumulative counter since the previous sample of its series (resets → from 0)."""
    prev = f"prev_{column}"
    return f"if({prev} IS NULL OR {column} IS NULL, NULL, if({column} >= {prev}, {column} - {prev}, {column}))"


def _bucket(step_s: int | None, params: dict[str, Any], column: str = "ts") -> str:
    if step_s is None:
        return "toDateTime64({start:DateTime64(3, 'UTC')}, 3, 'UTC')"
    params["step"] = int(step_s)
    # as DateTime64: a bare toStartOfInterval of a bound interval reaches Arrow as epoch seconds
    return f"toDateTime64(toStartOfInterval({column}, INTERVAL {{step:UInt32}} SECOND), 3, 'UTC')"


_INFERENCE_DELTAS = """
    SELECT project, node, model, engine, ts,
        dateDiff('millisecond', prev_ts, ts) AS dt_ms,
        {prompt} AS d_prompt, {generation} AS d_generation, {queries} AS d_queries, {hits} AS d_hits,
        {finished} AS d_finished
    FROM (
        SELECT project, node, model, engine, ts,
            prompt_tokens_total, generation_tokens_total, prefix_cache_queries_total, prefix_cache_hits_total,
            requests_finished_total,
            lagInFrame(toNullable(ts)) OVER w AS prev_ts,
            lagInFrame(prompt_tokens_total) OVER w AS prev_prompt_tokens_total,
            lagInFrame(generation_tokens_total) OVER w AS prev_generation_tokens_total,
            lagInFrame(prefix_cache_queries_total) OVER w AS prev_prefix_cache_queries_total,
            lagInFrame(prefix_cache_hits_total) OVER w AS prev_prefix_cache_hits_total,
            lagInFrame(requests_finished_total) OVER w AS prev_requests_finished_total
        FROM inference_samples
        WHERE {where}
        WINDOW w AS (PARTITION BY project, node, model, engine ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
    WHERE prev_ts IS NOT NULL AND ts >= {{start:DateTime64(3, 'UTC')}}
"""


def _inference_deltas(where: str) -> str:
    return _INFERENCE_DELTAS.format(
        where=where, prompt=_increase("prompt_tokens_total"), generation=_increase("generation_tokens_total"),
        queries=_increase("prefix_cache_queries_total"), hits=_increase("prefix_cache_hits_total"),
        finished=_increase("requests_finished_total"),
    )


def token_throughput(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, step_s: int | None = 60, lookback_s: int = 300,
    tag: str = "nodes:throughput",
) -> pl.DataFrame:
    """Tokens/s (prompt, generation), requests/s and prefix-cache hit rate per time bucket, node and
    model (engines of one server summed). `step_s=None`: one row per node and model for the range."""
    params: dict[str, Any] = {}
    where = _range(scope, start, end, lookback_s, params)
    bucket = _bucket(step_s, params)
    sql = f"""
        SELECT bucket, node, model,
            sum(prompt_tokens) AS prompt_tokens, sum(generation_tokens) AS generation_tokens,
            sum(prompt_tokens_per_s) AS prompt_tokens_per_s, sum(generation_tokens_per_s) AS generation_tokens_per_s,
            sum(requests_per_s) AS requests_per_s,
            if(sum(queries) > 0, sum(hits) / sum(queries), NULL) AS prefix_cache_hit_rate
        FROM (
            SELECT {bucket} AS bucket, node, model, engine,
                sum(d_prompt) AS prompt_tokens, sum(d_generation) AS generation_tokens,
                sum(d_queries) AS queries, sum(d_hits) AS hits,
                sum(d_prompt) / (sum(dt_ms) / 1000) AS prompt_tokens_per_s,
                sum(d_generation) / (sum(dt_ms) / 1000) AS generation_tokens_per_s,
                sum(d_finished) / (sum(dt_ms) / 1000) AS requests_per_s
            FROM ({_inference_deltas(where)})
            GROUP BY bucket, node, model, engine
        )
        GROUP BY bucket, node, model
        ORDER BY bucket, node, model
    """
    return wh.query_df(sql, params, tag=tag)


def inference_load(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, step_s: int = 60, tag: str = "nodes:load",
) -> pl.DataFrame:
    """Running and waiting requests (mean and max of the per-scrape sum over engines) and KV-cache
    usage (fraction 0–1, mean and max) per time bucket, node and model."""
    params: dict[str, Any] = {}
    where = _range(scope, start, end, 0, params)
    bucket = _bucket(step_s, params)
    sql = f"""
        SELECT {bucket} AS bucket, node, model,
            avg(running) AS requests_running_mean, max(running) AS requests_running_max,
            avg(waiting) AS requests_waiting_mean, max(waiting) AS requests_waiting_max,
            avg(kv) AS kv_cache_usage_mean, max(kv) AS kv_cache_usage_max
        FROM (
            SELECT node, model, ts, sum(requests_running) AS running, sum(requests_waiting) AS waiting,
                avg(kv_cache_usage) AS kv
            FROM inference_samples WHERE {where}
            GROUP BY node, model, ts
        )
        GROUP BY bucket, node, model
        ORDER BY bucket, node, model
    """
    return wh.query_df(sql, params, tag=tag)


def gpu_utilisation(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, step_s: int = 60,
    nodes: Sequence[str] | None = None, tag: str = "nodes:gpu",
) -> pl.DataFrame:
    """Per time bucket, node and GPU: mean utilisation (%) and the exporter field(s) it came from
    (`util_source`, comma-separated), SM activity (0–1), framebuffer used / free (MiB) and used
    share, power (W), max temperature (°C). With a step of whole five-minute buckets (or hours), those
    come from the `gpu_samples_5m` rollup (or its hourly tier) and only the partial ones at the range's
    edges from raw samples (means as sums over counts: equal to the raw means up to float rounding)."""
    params: dict[str, Any] = {}
    chosen = scope.clause(params)
    if nodes:
        params["nodes"] = list(nodes)
        chosen += " AND node IN {nodes:Array(String)}"
    mean = {g: f"if(sum({g}_n) = 0, NULL, sum({g}_sum) / sum({g}_n)) AS {g}" for g in _GPU_GAUGES}
    sql = f"""
        SELECT {_bucket(step_s, params, "b")} AS bucket, node, gpu, any(gpu_model) AS gpu_model,
            {mean["util_pct"]}, arrayStringConcat(arraySort(groupUniqArrayArray(util_sources)), ',') AS util_source,
            {", ".join(mean[g] for g in _GPU_GAUGES[1:])},
            max(temp_c_max) AS temp_c_max, sum(samples) AS samples
        FROM ({_gpu_rows(chosen, start, end, step_s, params)})
        GROUP BY bucket, node, gpu
        ORDER BY bucket, node, gpu
    """
    return wh.query_df(sql, params, tag=tag)


FIVE_MINUTES_S = 300  # the bucket of `gpu_samples_5m`
HOUR_S = 3600  # the bucket of its hourly tier, `gpu_samples_hourly`
_GPU_GAUGES = ("util_pct", "sm_active", "tensor_active", "fb_used_mib", "fb_free_mib", "fb_used_share", "power_w")


def _whole(start: datetime, end: datetime, seconds: int) -> tuple[datetime, datetime] | None:
    """The whole buckets of `seconds` (from the epoch) inside [start, end) as [first, last), None when none."""
    step = timedelta(seconds=seconds)
    epoch = datetime(1970, 1, 1, tzinfo=start.tzinfo)
    first = epoch - ((epoch - start) // step) * step  # start rounded up to a bucket boundary
    last = epoch + ((end - epoch) // step) * step  # end rounded down
    return (first, last) if first < last else None


def _five_minutes(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The whole five-minute buckets inside [start, end), None when there are none."""
    return _whole(start, end, FIVE_MINUTES_S)


def _gpu_rows(chosen: str, start: datetime, end: datetime, step_s: int, params: dict[str, Any]) -> str:
    """The chosen GPUs' samples in [start, end) as partial sums and counts (time column `b`): with a
    step of whole hours, whole hours from `gpu_samples_hourly`; with a step of whole five-minute
    buckets, the other whole buckets from `gpu_samples_5m`; one row per raw sample for the rest."""
    params.update(start=start, end=end)
    gauge = {g: "fb_used_mib / nullIf(fb_total_mib, 0)" if g == "fb_used_share" else g for g in _GPU_GAUGES}
    partial = ", ".join(f"ifNull({expr}, 0) AS {g}_sum, toUInt64(isNotNull({expr})) AS {g}_n"
                        for g, expr in gauge.items())
    raw = (f"SELECT ts AS b, node, gpu, gpu_model, toUInt64(1) AS samples, {partial}, "
           "if(util_source = '', [], [toString(util_source)]) AS util_sources, temp_c AS temp_c_max "
           f"FROM gpu_samples WHERE {chosen} AND ts >= {{start:DateTime64(3, 'UTC')}} "
           "AND ts < {end:DateTime64(3, 'UTC')}")
    five = _five_minutes(start, end) if step_s % FIVE_MINUTES_S == 0 else None
    if five is None:
        return raw
    params.update(five_first=five[0], five_last=five[1])
    hours = _whole(start, end, HOUR_S) if step_s % HOUR_S == 0 else None
    if hours is not None:
        params.update(hour_first=hours[0], hour_last=hours[1])
    summed = ", ".join(f"{g}_sum, {g}_n" for g in _GPU_GAUGES)

    def rollup(table: str, column: str, first: str, last: str, outside: str = "") -> str:
        return (f"SELECT toDateTime64({column}, 3, 'UTC') AS b, node, gpu, gpu_model, samples, {summed}, "
                f"util_sources, temp_c_max FROM {table} WHERE {chosen} AND {column} >= {{{first}:DateTime64(3, 'UTC')}} "
                f"AND {column} < {{{last}:DateTime64(3, 'UTC')}}{outside}")

    between = (" AND (bucket < {hour_first:DateTime64(3, 'UTC')} OR bucket >= {hour_last:DateTime64(3, 'UTC')})"
               if hours else "")
    parts = [f"{raw} AND (ts < {{five_first:DateTime64(3, 'UTC')}} OR ts >= {{five_last:DateTime64(3, 'UTC')}})",
             rollup("gpu_samples_5m", "bucket", "five_first", "five_last", between)]
    if hours:
        parts.append(rollup("gpu_samples_hourly", "hour", "hour_first", "hour_last"))
    return " UNION ALL ".join(parts)


def latency_quantiles(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, metric: str = "ttft_s",
    quantiles: Sequence[float] = (0.5, 0.95, 0.99), step_s: int | None = None, lookback_s: int = 300,
    tag: str = "nodes:latency",
) -> pl.DataFrame:
    """Quantiles (seconds) of a vLLM latency histogram (`ttft_s`, `itl_s`, `e2e_s`, `queue_s`,
    `prefill_s`, `decode_s`) over the increase of its buckets in the range, per node and model
    (and time bucket with `step_s`); also the observation count and mean."""
    if metric not in HISTOGRAM_METRICS:
        raise ValueError(f"metric must be one of {HISTOGRAM_METRICS}, got {metric!r}")
    params: dict[str, Any] = {"metric": metric, "qs": [float(q) for q in quantiles]}
    where = _range(scope, start, end, lookback_s, params) + " AND metric = {metric:String}"
    bucket = _bucket(step_s, params)
    sql = f"""
        SELECT bucket, node, model, q,
            multiIf(total <= 0, nan,
                    isInfinite(les[i]), les[length(les) - 1],
                    i = 1, if(les[1] > 0, les[1] * rank / cnt[1], les[1]),
                    les[i - 1] + (les[i] - les[i - 1]) * (rank - cnt[i - 1]) / (cnt[i] - cnt[i - 1])) AS value_s,
            total AS observations, if(total > 0, sum_s / total, nan) AS mean_s
        FROM (
            SELECT bucket, node, model, les, cnt, total, sum_s, q, q * total AS rank,
                arrayFirstIndex(c -> c >= q * total, cnt) AS i
            FROM (
                SELECT bucket, node, model, sum_s,
                    arrayMap(x -> x.1, sorted) AS les,
                    arrayMap(k -> arrayMax(arraySlice(arrayMap(x -> x.2, sorted), 1, k)),
                             arrayEnumerate(sorted)) AS cnt,  -- cumulative counts made monotonic
                    cnt[length(cnt)] AS total
                FROM (
                    SELECT bucket, node, model, arraySort(x -> x.1, groupArray((le, n))) AS sorted,
                        sumIf(s, isInfinite(le)) AS sum_s
                    FROM (
                        SELECT {bucket} AS bucket, node, model, le, sum(d) AS n, sum(ds) AS s
                        FROM (
                            SELECT project, node, model, engine, le, ts,
                                {_increase('count')} AS d, {_increase('sum')} AS ds
                            FROM (
                                SELECT project, node, model, engine, le, ts, count, sum,
                                    lagInFrame(toNullable(count)) OVER w AS prev_count,
                                    lagInFrame(toNullable(sum)) OVER w AS prev_sum
                                FROM inference_histograms WHERE {where}
                                WINDOW w AS (PARTITION BY project, node, model, engine, le
                                             ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                            )
                            WHERE ts >= {{start:DateTime64(3, 'UTC')}}
                        )
                        GROUP BY bucket, node, model, le
                    )
                    GROUP BY bucket, node, model
                )
            )
            ARRAY JOIN {{qs:Array(Float64)}} AS q
        )
        ORDER BY bucket, node, model, q
    """
    return wh.query_df(sql, params, tag=tag)


_GPU_TIME = """
    SELECT project, node, gpu{hour}, any(gpu_model) AS gpu_model, max(series_ms) AS gpu_ms, avg(series_util) AS util_pct
    FROM (
        -- one series per GPU (or MIG instance); instances of one GPU share its time, hence max above
        SELECT project, node, gpu, gpu_instance{hour_of_ts}, any(gpu_model) AS gpu_model,
            sum(if(dt_ms <= {{max_gap_ms:UInt64}}, dt_ms, 0)) AS series_ms, avg(util_pct) AS series_util
        FROM (
            SELECT project, node, gpu, gpu_instance, gpu_model, ts, util_pct,
                -- the interval since the previous sample, clipped at the range start
                dateDiff('millisecond', greatest(lagInFrame(toNullable(ts)) OVER w, {{start:DateTime64(3, 'UTC')}}), ts)
                    AS dt_ms
            FROM gpu_samples WHERE {where}
            WINDOW w AS (PARTITION BY project, node, gpu, gpu_instance ORDER BY ts
                         ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        )
        WHERE ts >= {{start:DateTime64(3, 'UTC')}} AND dt_ms IS NOT NULL
        GROUP BY project, node, gpu, gpu_instance{hour}
    )
    GROUP BY project, node, gpu{hour}
"""

# every price row as (node, GPU model, $/GPU-hour), read once per query (the table is a handful of rows)
_PRICES = "(SELECT groupArray((node, gpu_model, usd_per_gpu_hour)) FROM gpu_prices)"
# a price row's specificity: node and GPU model > node > GPU model > any
_RANK = "(p.1 != '') * 2 + (p.2 != '')"

_PRICED_GPU_TIME = """
    SELECT node, gpu{hour}, gpu_model, gpu_ms, util_pct,
        if(empty(matching), NULL, arrayFirst(p -> {rank} = arrayMax(p -> {rank}, matching), matching).3)
            AS usd_per_gpu_hour
    FROM (
        SELECT node, gpu{hour}, gpu_model, gpu_ms, util_pct,
            arrayFilter(p -> (p.1 = '' OR p.1 = node) AND (p.2 = '' OR positionCaseInsensitive(gpu_model, p.2) > 0),
                        {prices}) AS matching
        FROM ({gpu_time})
    )
"""


def _priced_gpu_time(where: str, *, hourly: bool = False) -> str:
    """GPU time and its $/GPU-hour per node and GPU over the range (and per clock hour: an
    interval counts in the hour its closing sample falls in). The price is the most specific
    `gpu_prices` row matching the node and GPU model, NULL when none does; matched against the
    aggregated rows, so the samples are read once."""
    gpu_time = _GPU_TIME.format(where=where, hour=", hour" if hourly else "",
                                hour_of_ts=", toStartOfHour(ts) AS hour" if hourly else "")
    return _PRICED_GPU_TIME.format(gpu_time=gpu_time, hour=", hour" if hourly else "", prices=_PRICES,
                                   rank=_RANK)


def gpu_cost(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, max_gap_s: int = 120, tag: str = "nodes:gpu_cost",
) -> pl.DataFrame:
    """Per node and GPU: GPU-hours observed, mean utilisation, $/GPU-hour and infra cost (NULL when
    no price matches: set `collectors.gpu_prices`)."""
    params: dict[str, Any] = {"max_gap_ms": max_gap_s * 1000}
    where = _range(scope, start, end, max_gap_s, params)
    sql = f"""
        SELECT node, gpu, gpu_model, gpu_ms / 3600000 AS gpu_hours, util_pct, usd_per_gpu_hour,
            toDecimal128(gpu_ms, 0) * usd_per_gpu_hour / 3600000 AS infra_cost_usd
        FROM ({_priced_gpu_time(where)})
        ORDER BY node, gpu
    """
    return wh.query_df(sql, params, tag=tag)


def self_host_cost(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, max_gap_s: int = 120, lookback_s: int = 300,
    tag: str = "nodes:self_host_cost",
) -> pl.DataFrame:
    """Per node and served model: the node's infra cost allocated by share of tokens served, the
    tokens, cost per 1M tokens (prompt + generation) and per 1M generated tokens, and measured
    generation throughput per GPU — the inputs of the API-vs-self-host comparison."""
    params: dict[str, Any] = {}
    sql = _self_host_cost_sql(scope, start, end, params, max_gap_s=max_gap_s, lookback_s=lookback_s)
    return wh.query_df(sql + " ORDER BY node, model", params, tag=tag)


def _self_host_cost_sql(
    scope: Scope, start: datetime, end: datetime, params: dict[str, Any], *, max_gap_s: int, lookback_s: int,
    peak_step_s: int | None = None,
) -> str:
    """`self_host_cost`'s rows (unordered); with `peak_step_s` also `peak_tokens_per_s`, the highest
    generation tokens/s of a node and model in any `peak_step_s` bucket (engines summed, as
    `token_throughput` at that step), from the same pass over the counters."""
    params["max_gap_ms"] = max_gap_s * 1000
    where = _range(scope, start, end, max(lookback_s, max_gap_s), params)
    gpu_time = _priced_gpu_time(where)
    if peak_step_s is None:
        served = f"""
            SELECT node, model, sum(d_prompt) AS prompt_tokens, sum(d_generation) AS generation_tokens,
                sum(d_finished) AS requests, max(covered_ms) AS covered_ms
            FROM (
                SELECT node, model, engine, sum(d_prompt) AS d_prompt, sum(d_generation) AS d_generation,
                    sum(d_finished) AS d_finished, sum(dt_ms) AS covered_ms
                FROM ({_inference_deltas(where)})
                GROUP BY node, model, engine
            )
            GROUP BY node, model"""
    else:
        # per bucket and engine, then per bucket (engines' rates summed, their covered time kept
        # apart), then per node and model: covered time is the longest engine's, as above
        served = f"""
            SELECT node, model, sum(d_prompt) AS prompt_tokens, sum(d_generation) AS generation_tokens,
                sum(d_finished) AS requests, arrayMax(sumMap(engine_ms).2) AS covered_ms,
                max(bucket_tokens_per_s) AS peak_tokens_per_s
            FROM (
                SELECT node, model, bucket, sum(e_prompt) AS d_prompt, sum(e_generation) AS d_generation,
                    sum(e_finished) AS d_finished, sumMap([toString(engine)], [e_ms]) AS engine_ms,
                    sum(tokens_per_s) AS bucket_tokens_per_s
                FROM (
                    SELECT {_bucket(peak_step_s, params)} AS bucket, node, model, engine, sum(d_prompt) AS e_prompt,
                        sum(d_generation) AS e_generation, sum(d_finished) AS e_finished, sum(dt_ms) AS e_ms,
                        e_generation / (e_ms / 1000) AS tokens_per_s
                    FROM ({_inference_deltas(where)})
                    GROUP BY bucket, node, model, engine
                )
                GROUP BY node, model, bucket
            )
            GROUP BY node, model"""
    return f"""
        WITH nodes AS (
            SELECT node, count() AS gpus, any(gpu_model) AS node_gpu_model, sum(gpu_ms) AS node_gpu_ms,
                avg(util_pct) AS node_util_pct,
                sum(toDecimal128(gpu_ms, 0) * usd_per_gpu_hour) / 3600000 AS node_cost_usd,
                countIf(usd_per_gpu_hour IS NULL) AS unpriced_gpus,
                sum(toDecimal128(gpu_ms, 0) * usd_per_gpu_hour) / nullIf(toDecimal128(sum(gpu_ms), 0), 0)
                    AS node_usd_per_gpu_hour
            FROM ({gpu_time})
            GROUP BY node
        ),
        served AS ({served}
        )
        SELECT s.node AS node, s.model AS model, n.gpus AS gpus, n.node_gpu_model AS gpu_model,
            n.node_util_pct AS util_pct, n.node_usd_per_gpu_hour AS usd_per_gpu_hour, n.unpriced_gpus AS unpriced_gpus,
            s.prompt_tokens AS prompt_tokens, s.generation_tokens AS generation_tokens, s.requests AS requests,
            (s.prompt_tokens + s.generation_tokens)
                / nullIf(sum(s.prompt_tokens + s.generation_tokens) OVER (PARTITION BY s.node), 0) AS token_share,
            n.node_gpu_ms * token_share / 3600000 AS gpu_hours,
            -- allocate in integers: Decimal × Decimal adds scales (18 + 18) and would overflow
            n.node_cost_usd * toDecimal128(s.prompt_tokens + s.generation_tokens, 0)
                / nullIf(toDecimal128(sum(s.prompt_tokens + s.generation_tokens) OVER (PARTITION BY s.node), 0), 0)
                AS infra_cost_usd,
            if(s.prompt_tokens + s.generation_tokens > 0,
               infra_cost_usd * 1000000 / toDecimal128(s.prompt_tokens + s.generation_tokens, 0), NULL)
                AS cost_per_1m_tokens_usd,
            if(s.generation_tokens > 0, infra_cost_usd * 1000000 / toDecimal128(s.generation_tokens, 0), NULL)
                AS cost_per_1m_output_tokens_usd,
            s.generation_tokens / (s.covered_ms / 1000) / nullIf(n.gpus, 0) AS generation_tokens_per_s_per_gpu,
            if(s.requests > 0, s.generation_tokens / s.requests, NULL) AS output_tokens_per_request
            {", s.peak_tokens_per_s AS peak_tokens_per_s" if peak_step_s is not None else ""}
        FROM served AS s
        LEFT JOIN nodes AS n ON n.node = s.node
    """


IDLE = "(idle capacity)"  # the `key` of GPU time in node-hours that served no call


INFRA_GRAINS: dict[str, str] = {  # node-hours bucketed for a time series of infra cost
    "hour": "toDateTime64(b_hour, 3, 'UTC')",
    "day": "toDateTime64(toStartOfDay(b_hour), 3, 'UTC')",
    "week": "toDateTime64(toMonday(b_hour), 3, 'UTC')",
}


def infra_by(
    wh: Warehouse, scope: Scope, dimension: str, start: datetime, end: datetime, filters: Filters | None = None,
    *, grain: str | None = None, max_gap_s: int = 120, tag: str = "nodes:infra_by",
) -> pl.DataFrame:
    """Self-hosted infra cost attributed to each value of `dimension` (column `key`), most expensive
    first: every node-hour's GPU cost (GPU-hours × $/GPU-hour) is split over the self-hosted calls the
    node served in that hour by their tokens (input + output), so a user's share of a node is what
    it made the node do. Columns: calls, tokens, infra_cost_usd, and `uncosted_calls` (calls in
    node-hours with no GPU samples or no GPU price, which carry no infra cost). Without filters a
    last row `IDLE` holds the GPU cost of node-hours that served no call. With a `grain` (hour, day,
    week) the same per UTC bucket of node-hours (a first column `bucket`)."""
    identifier(dimension, DIMENSIONS)
    if grain is not None and grain not in INFRA_GRAINS:
        raise ValueError(f"grain must be one of {sorted(INFRA_GRAINS)}")
    bucket = f"{INFRA_GRAINS[grain]} AS bucket, " if grain else ""
    params: dict[str, Any] = {"max_gap_ms": max_gap_s * 1000, "idle": IDLE, "self_hosted": SELF_HOSTED_DEPLOYMENT}
    samples = _range(scope, start, end, max_gap_s, params)
    measures = ("calls", "io_tokens")

    def self_hosted(keys: dict[str, str], chosen: Filters | None) -> str:
        """Self-hosted calls and tokens per node-hour (and keys): the node rollup for whole hours. A
        `deployment` key is the one value every self-hosted call has (the rollup need not keep it)."""
        kept = {k: v for k, v in keys.items() if v != "deployment"}
        rows = (hybrid.rows(scope, start, end, chosen, keys=kept, measures=measures, params=params,
                            subset=hybrid.SELF_HOSTED)
                or hybrid.raw_rows(scope, start, end, chosen, keys=kept, measures=measures, params=params,
                                   subset=hybrid.SELF_HOSTED))
        names = "".join(f"{k}, " for k in kept)
        constant = "".join(f"{{self_hosted:String}} AS {k}, " for k in keys if k not in kept)
        return (f"SELECT {constant}{names}toStartOfHour(t) AS hour, toUInt64(sum(calls)) AS n_calls, "
                f"toUInt64(sum(io_tokens)) AS n_tokens FROM ({rows}) GROUP BY {names}hour")

    # the chosen calls per key and node-hour, next to every call of their node-hours (the shares'
    # denominators); node-hours with GPU cost and no call at all are idle capacity (unfiltered only)
    sql = f"""
        SELECT {bucket}key, sum(n_calls) AS calls, sum(n_tokens) AS tokens, sum(share_usd) AS infra_cost_usd,
            sumIf(n_calls, uncosted) AS uncosted_calls
        FROM (
            SELECT if(m.node IS NULL, {{idle:String}}, m.key) AS key, ifNull(m.hour, c.hour) AS b_hour,
                ifNull(m.calls, 0) AS n_calls,
                ifNull(m.tokens, 0) AS n_tokens, m.node IS NOT NULL AND c.cost_usd IS NULL AS uncosted,
                -- by tokens (by calls in a node-hour that served no token); in integers: Decimal × Decimal
                -- adds scales (18 + 18) and would overflow
                if(m.node IS NULL, c.cost_usd,
                   c.cost_usd * toDecimal128(if(m.node_tokens = 0, m.calls, m.tokens), 0)
                       / toDecimal128(if(m.node_tokens = 0, m.node_calls, m.node_tokens), 0)) AS share_usd
            FROM (
                SELECT k.key AS key, k.node AS node, k.hour AS hour, k.n_calls AS calls, k.n_tokens AS tokens,
                    a.n_tokens AS node_tokens, a.n_calls AS node_calls
                FROM ({self_hosted({"key": dimension, "node": "node"}, filters)}) AS k
                JOIN ({self_hosted({"node": "node"}, None)}) AS a ON a.node = k.node AND a.hour = k.hour
            ) AS m
            FULL OUTER JOIN (
                SELECT toString(node) AS node, hour,
                    if(countIf(usd_per_gpu_hour IS NULL) > 0, NULL,
                       sum(toDecimal128(gpu_ms, 0) * ifNull(usd_per_gpu_hour, 0)) / 3600000) AS cost_usd
                FROM ({_priced_gpu_time(samples, hourly=True)})
                GROUP BY node, hour
            ) AS c ON c.node = m.node AND c.hour = m.hour
            {"WHERE m.node IS NOT NULL" if filters else ""}
        )
        GROUP BY {"bucket, " if grain else ""}key
        ORDER BY {"bucket, " if grain else ""}key = {{idle:String}}, infra_cost_usd DESC, key
        SETTINGS join_use_nulls = 1
    """
    return wh.query_df(sql, params, tag=tag)


def breakeven_inputs(
    wh: Warehouse, scope: Scope, start: datetime, end: datetime, *, step_s: int = 300, max_gap_s: int = 120,
    lookback_s: int = 300, max_batch: int = 256, kv_headroom: float = 0.9, tag: str = "nodes:breakeven",
) -> pl.DataFrame:
    """What the API-vs-self-host comparison needs, measured, per node and model: GPUs, $/GPU-hour,
    generation tokens/s per GPU (mean over the range, and the best `step_s` bucket), output tokens
    per request, and the resulting self-host $ per 1M output tokens at the measured and the peak
    throughput ($/h ÷ (tokens/s × 3600) × 1M). Compare with the API's price per 1M output tokens;
    GPU-hours for a workload = calls × output tokens / (tokens/s × 3600).

    Throughput at low load is not capacity, so an estimate comes with it: the measured decode rate
    of one running request × the requests the KV cache admits (`kv_headroom` ÷ the measured KV
    share per running request, at most `max_batch`) → `capacity_tokens_per_s_per_gpu` and its
    $ per 1M output tokens. Batched decoding is slower per request, so read it as an upper bound."""
    params: dict[str, Any] = {}
    cost = _self_host_cost_sql(scope, start, end, params, max_gap_s=max_gap_s, lookback_s=lookback_s,
                               peak_step_s=step_s)
    # one round trip: the cost rows (with their peak bucket) and the mean load over the range's
    # scrapes; `matched` tells a node and model without load samples (NULLs, as a left join gives)
    frame = wh.query_df(f"""
        SELECT c.*, if(l.matched, l.mean_running, NULL) AS mean_running,
            if(l.matched, l.mean_kv_usage, NULL) AS mean_kv_usage
        FROM ({cost}) AS c
        LEFT JOIN (
            SELECT node, model, avg(running) AS mean_running, avg(kv) AS mean_kv_usage, true AS matched
            FROM (
                SELECT node, model, ts, sum(requests_running) AS running, avg(kv_cache_usage) AS kv
                FROM inference_samples
                WHERE {scope.clause(params)} AND ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
                GROUP BY node, model, ts
            )
            GROUP BY node, model
        ) AS l ON l.node = c.node AND l.model = c.model
        ORDER BY node, model
    """, params, tag=tag)
    per_gpu_peak = pl.col("peak_tokens_per_s") / pl.col("gpus")
    price = pl.col("usd_per_gpu_hour").cast(pl.Float64)
    # capacity estimate: the measured decode rate of one request times the requests the KV cache
    # admits (measured KV share per running request), capped at the scheduler's batch limit
    decode = pl.col("generation_tokens_per_s_per_gpu") * pl.col("gpus") / pl.col("mean_running")
    concurrent = pl.min_horizontal(pl.lit(float(max_batch)), pl.lit(kv_headroom) * pl.col("mean_running")
                                   / pl.col("mean_kv_usage"))
    capacity = decode * concurrent / pl.col("gpus")
    return frame.select(
        "node", "model", "gpus", "gpu_model", "usd_per_gpu_hour", "util_pct", "requests", "output_tokens_per_request",
        pl.col("generation_tokens_per_s_per_gpu").alias("tokens_per_s_per_gpu"),
        per_gpu_peak.alias("peak_tokens_per_s_per_gpu"),
        "mean_running", decode.alias("decode_tokens_per_s_per_request"), concurrent.alias("max_concurrent_requests"),
        capacity.alias("capacity_tokens_per_s_per_gpu"),
        (price / (pl.col("generation_tokens_per_s_per_gpu") * 3600) * 1e6).alias("usd_per_1m_output_at_measured"),
        (price / (per_gpu_peak * 3600) * 1e6).alias("usd_per_1m_output_at_peak"),
        (price / (capacity * 3600) * 1e6).alias("usd_per_1m_output_at_capacity"),
        "cost_per_1m_output_tokens_usd",
    ).with_columns(pl.selectors.float().fill_nan(None))
