-- Hourly spend per user (with the route / model / feature / team behind it), kept by a
-- materialized view. Separate from `calls_hourly` because user_id multiplies its cardinality
-- (and its latency digests) about fifteen-fold; per-user attribution and spend-spike baselines
-- read this table. Read with sum() and GROUP BY; rebuilt with the other rollups after a reprice.
CREATE TABLE IF NOT EXISTS calls_user_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    user_id String,
    team LowCardinality(String),
    feature LowCardinality(String),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, user_id, route, model, provider, team, feature);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_user_hourly_mv TO calls_user_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.user_id AS user_id,
    calls.team AS team,
    calls.feature AS feature,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.status != 'ok')) AS errors,
    sum(calls.cost_usd) AS cost_usd,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens
FROM calls
GROUP BY project, hour, user_id, route, model, provider, team, feature;
