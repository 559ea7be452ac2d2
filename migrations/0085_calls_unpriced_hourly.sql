-- Hourly rollup of the unpriced calls (no price covered them: kept at $0, flagged `unpriced`) per
-- project, hour, deployment, provider, model and raw model name: calls, tokens, first and last call.
-- The health page's "models without a price" (`warehouse.queries.ops.unpriced_models`) reads whole
-- hours here: self-hosted calls are all unpriced and spread over every granule of `calls`, so its
-- skip index on `unpriced` cannot skip them. Exact (counts, sums, min / max); rebuilt with the other
-- rollups (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS calls_unpriced_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    deployment LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    model_raw LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, deployment, provider, model, model_raw);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_unpriced_hourly_mv TO calls_unpriced_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.deployment AS deployment,
    calls.provider AS provider,
    calls.model AS model,
    calls.model_raw AS model_raw,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    min(calls.ts) AS first_seen,
    max(calls.ts) AS last_seen
FROM calls
WHERE calls.unpriced
GROUP BY project, hour, deployment, provider, model, model_raw;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_unpriced_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.deployment AS deployment,
    calls.provider AS provider,
    calls.model AS model,
    calls.model_raw AS model_raw,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    min(calls.ts) AS first_seen,
    max(calls.ts) AS last_seen
FROM calls
WHERE calls.unpriced AND calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_unpriced_hourly)
GROUP BY project, hour, deployment, provider, model, model_raw;
