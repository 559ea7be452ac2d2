-- Time per output token and queue time join the hourly rollup, so latency pages and percentiles
-- over a month read whole hours from `calls_hourly` alone (before, TPOT and queue percentiles
-- scanned raw calls: 0.6-0.8 s at 10M calls). TPOT of a call = (latency - TTFT) / (output - 1) ms,
-- ok calls with both times and more than one output token, as the raw queries define it.
-- The new columns are added, the view is re-created with them, and the months already rolled up
-- get extra rows that carry only the new measures (every other measure 0 or an empty digest):
-- rollup rows are partial aggregates that readers merge, so this back-fills without rebuilding.
ALTER TABLE calls_hourly
    ADD COLUMN IF NOT EXISTS tpot_calls SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS tpot_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float32),
    ADD COLUMN IF NOT EXISTS queue_calls SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS queue_ms_sum SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS queue_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32);

DROP VIEW IF EXISTS calls_hourly_mv;

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
        AS reasoning_tokens_digest,
    toUInt64(countIf(calls.status = 'ok' AND calls.latency_ms IS NOT NULL AND calls.ttft_ms IS NOT NULL
        AND calls.output_tokens > 1)) AS tpot_calls,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        toFloat32((assumeNotNull(calls.latency_ms) - assumeNotNull(calls.ttft_ms)) / (calls.output_tokens - 1)),
        calls.status = 'ok' AND calls.latency_ms IS NOT NULL AND calls.ttft_ms IS NOT NULL AND calls.output_tokens > 1)
        AS tpot_ms_digest,
    toUInt64(countIf(calls.status = 'ok' AND calls.queue_ms IS NOT NULL)) AS queue_calls,
    toUInt64(sumIf(ifNull(calls.queue_ms, 0), calls.status = 'ok')) AS queue_ms_sum,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        assumeNotNull(calls.queue_ms), calls.status = 'ok' AND calls.queue_ms IS NOT NULL) AS queue_ms_digest
FROM calls
GROUP BY project, hour, route, model, provider, team, feature, api_key_id, tool_name, routing_policy;

INSERT INTO calls_hourly (project, hour, route, model, provider, team, feature, api_key_id, tool_name, routing_policy,
                          tpot_calls, tpot_ms_digest, queue_calls, queue_ms_sum, queue_ms_digest)
SELECT
    project, toStartOfHour(ts) AS hour, route, model, provider, team, feature, api_key_id, tool_name, routing_policy,
    toUInt64(countIf(status = 'ok' AND latency_ms IS NOT NULL AND ttft_ms IS NOT NULL AND output_tokens > 1)),
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        toFloat32((assumeNotNull(latency_ms) - assumeNotNull(ttft_ms)) / (output_tokens - 1)),
        status = 'ok' AND latency_ms IS NOT NULL AND ttft_ms IS NOT NULL AND output_tokens > 1),
    toUInt64(countIf(status = 'ok' AND queue_ms IS NOT NULL)),
    toUInt64(sumIf(ifNull(queue_ms, 0), status = 'ok')),
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(assumeNotNull(queue_ms), status = 'ok' AND queue_ms IS NOT NULL)
FROM calls
GROUP BY project, hour, route, model, provider, team, feature, api_key_id, tool_name, routing_policy;
