-- Hourly attribution rollup of `calls`, kept incrementally by a materialized view: cost (Decimal,
-- exact), tokens, calls, errors, cascade steps and latency / TTFT / reasoning digests per
-- project, hour, route, model, provider, team, feature, API key, tool and routing policy.
-- Rows are partial aggregates: always read with sum() / max() / quantilesTDigestMerge() and GROUP BY.
-- The view sees inserts only; `warehouse.rollups.rebuild_rollups` recomputes a month partition
-- after `REPLACE PARTITION` (reprice) and the `rollups.refresh` job repairs any drift.
CREATE TABLE IF NOT EXISTS calls_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    team LowCardinality(String),
    feature LowCardinality(String),
    api_key_id String,
    tool_name LowCardinality(String),
    routing_policy LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    ok_calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    timeouts SimpleAggregateFunction(sum, UInt64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64),

    cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    input_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_read_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_write_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    output_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    tool_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    batch_discount_usd SimpleAggregateFunction(sum, Decimal(38, 18)),

    input_tokens SimpleAggregateFunction(sum, UInt64),
    ok_input_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),

    cascade_step0_calls SimpleAggregateFunction(sum, UInt64),
    cascade_step1_calls SimpleAggregateFunction(sum, UInt64),

    latency_calls SimpleAggregateFunction(sum, UInt64),
    latency_ms_sum SimpleAggregateFunction(sum, UInt64),
    latency_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_calls SimpleAggregateFunction(sum, UInt64),
    ttft_ms_sum SimpleAggregateFunction(sum, UInt64),
    ttft_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    reasoning_calls SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens_max SimpleAggregateFunction(max, UInt32),
    reasoning_tokens_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, route, model, provider, team, feature, api_key_id, tool_name, routing_policy);

-- Source columns are qualified (`calls.x`): an output alias equal to a source column name would
-- otherwise capture it inside the aggregate. Latency and TTFT digests cover status = 'ok' only
-- (timeouts carry the client timeout as their latency).
CREATE MATERIALIZED VIEW IF NOT EXISTS calls_hourly_mv TO calls_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    calls.api_key_id AS api_key_id,
    calls.tool_name AS tool_name,
    calls.routing_policy AS routing_policy,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.status = 'ok')) AS ok_calls,
    toUInt64(countIf(calls.status != 'ok')) AS errors,
    toUInt64(countIf(calls.status = 'timeout')) AS timeouts,
    toUInt64(countIf(calls.unpriced)) AS unpriced_calls,
    sum(calls.cost_usd) AS cost_usd,
    sum(calls.input_cost_usd) AS input_cost_usd,
    sum(calls.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls.output_cost_usd) AS output_cost_usd,
    sum(calls.tool_cost_usd) AS tool_cost_usd,
    sum(calls.batch_discount_usd) AS batch_discount_usd,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sumIf(calls.input_tokens, calls.status = 'ok')) AS ok_input_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens + calls.cache_write_1h_tokens)) AS cache_write_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens,
    toUInt64(countIf(calls.routing_policy != '' AND calls.cascade_step = 0)) AS cascade_step0_calls,
    toUInt64(countIf(calls.routing_policy != '' AND calls.cascade_step = 1)) AS cascade_step1_calls,
    toUInt64(countIf(calls.status = 'ok' AND calls.latency_ms IS NOT NULL)) AS latency_calls,
    toUInt64(sumIf(ifNull(calls.latency_ms, 0), calls.status = 'ok')) AS latency_ms_sum,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        assumeNotNull(calls.latency_ms), calls.status = 'ok' AND calls.latency_ms IS NOT NULL) AS latency_ms_digest,
    toUInt64(countIf(calls.status = 'ok' AND calls.ttft_ms IS NOT NULL)) AS ttft_calls,
    toUInt64(sumIf(ifNull(calls.ttft_ms, 0), calls.status = 'ok')) AS ttft_ms_sum,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        assumeNotNull(calls.ttft_ms), calls.status = 'ok' AND calls.ttft_ms IS NOT NULL) AS ttft_ms_digest,
    toUInt64(countIf(calls.reasoning_tokens > 0)) AS reasoning_calls,
    max(calls.reasoning_tokens) AS reasoning_tokens_max,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(calls.reasoning_tokens, calls.reasoning_tokens > 0)
        AS reasoning_tokens_digest
FROM calls
GROUP BY project, hour, route, model, provider, team, feature, api_key_id, tool_name, routing_policy;
