-- Hourly latency rollup per project, hour, route, model and provider: ok calls, the latency / TTFT /
-- queue-time counts and sums (means) and the latency, TTFT, TPOT and queue-time t-digests, as
-- `calls_hourly` keeps them but without its team / feature / key / tool / policy split. A month of
-- latency per hour and route (the latency page) merges one to a few digests per hour and route here
-- instead of every `calls_hourly` row's (about 3x more at 100M calls): merging digests, not reading
-- rows, is what that read costs. Percentiles are t-digest estimates, as from `calls_hourly`.
-- Months stored before this migration are back-filled from `calls_hourly` (its states merged); the
-- view and `warehouse.rollups.rebuild_rollups` build from raw calls.
CREATE TABLE IF NOT EXISTS calls_latency_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    ok_calls SimpleAggregateFunction(sum, UInt64),
    latency_calls SimpleAggregateFunction(sum, UInt64),
    latency_ms_sum SimpleAggregateFunction(sum, UInt64),
    latency_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_calls SimpleAggregateFunction(sum, UInt64),
    ttft_ms_sum SimpleAggregateFunction(sum, UInt64),
    ttft_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    tpot_calls SimpleAggregateFunction(sum, UInt64),
    tpot_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float32),
    queue_calls SimpleAggregateFunction(sum, UInt64),
    queue_ms_sum SimpleAggregateFunction(sum, UInt64),
    queue_ms_digest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, route, model, provider);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_latency_hourly_mv TO calls_latency_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.status = 'ok')) AS ok_calls,
    toUInt64(countIf(calls.status = 'ok' AND calls.latency_ms IS NOT NULL)) AS latency_calls,
    toUInt64(sumIf(ifNull(calls.latency_ms, 0), calls.status = 'ok')) AS latency_ms_sum,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        assumeNotNull(calls.latency_ms), calls.status = 'ok' AND calls.latency_ms IS NOT NULL) AS latency_ms_digest,
    toUInt64(countIf(calls.status = 'ok' AND calls.ttft_ms IS NOT NULL)) AS ttft_calls,
    toUInt64(sumIf(ifNull(calls.ttft_ms, 0), calls.status = 'ok')) AS ttft_ms_sum,
    quantilesTDigestStateIf(0.5, 0.9, 0.95, 0.99)(
        assumeNotNull(calls.ttft_ms), calls.status = 'ok' AND calls.ttft_ms IS NOT NULL) AS ttft_ms_digest,
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
GROUP BY project, hour, route, model, provider;

-- Back-fill the months stored before this migration (those without rollup rows yet) from `calls_hourly`.
INSERT INTO calls_latency_hourly
SELECT
    calls_hourly.project AS project, calls_hourly.hour AS hour, calls_hourly.route AS route,
    calls_hourly.model AS model, calls_hourly.provider AS provider,
    toUInt64(sum(calls_hourly.calls)) AS calls,
    toUInt64(sum(calls_hourly.ok_calls)) AS ok_calls,
    toUInt64(sum(calls_hourly.latency_calls)) AS latency_calls,
    toUInt64(sum(calls_hourly.latency_ms_sum)) AS latency_ms_sum,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(calls_hourly.latency_ms_digest) AS latency_ms_digest,
    toUInt64(sum(calls_hourly.ttft_calls)) AS ttft_calls,
    toUInt64(sum(calls_hourly.ttft_ms_sum)) AS ttft_ms_sum,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(calls_hourly.ttft_ms_digest) AS ttft_ms_digest,
    toUInt64(sum(calls_hourly.tpot_calls)) AS tpot_calls,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(calls_hourly.tpot_ms_digest) AS tpot_ms_digest,
    toUInt64(sum(calls_hourly.queue_calls)) AS queue_calls,
    toUInt64(sum(calls_hourly.queue_ms_sum)) AS queue_ms_sum,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(calls_hourly.queue_ms_digest) AS queue_ms_digest
FROM calls_hourly
WHERE calls_hourly._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_latency_hourly)
GROUP BY project, hour, route, model, provider;
