-- Five-minute tier of the attribution measures per project, bucket, route, model, provider, team and
-- feature: ~15 rows a bucket whether a month holds 10M or 100M calls (7 MiB a month). A range up to
-- a week ("the last 7 days", "the last 24 hours") starts and ends inside an hour; for what this tier
-- keeps, `warehouse.queries.hybrid` reads every whole five-minute bucket of it here (one part to plan
-- instead of the daily and hourly tiers plus raw edge hours) and raw calls for under five minutes at
-- each edge.
-- Money exact (Decimal sums). Fed from raw calls by a view; rebuilt with the other rollups
-- (`warehouse.rollups`). Months stored before this migration are back-filled from raw calls,
-- aggregated in the sort order of `calls` (project, hour) so memory holds one hour's groups at a time.
CREATE TABLE IF NOT EXISTS calls_5m
(
    project LowCardinality(String),
    bucket DateTime('UTC'),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    team LowCardinality(String),
    feature LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    input_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_read_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_write_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    output_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    tool_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    batch_discount_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (project, bucket, route, model, provider, team, feature);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_5m_mv TO calls_5m AS
SELECT
    calls.project AS project,
    toStartOfFiveMinutes(calls.ts) AS bucket,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.status != 'ok')) AS errors,
    toUInt64(countIf(calls.unpriced)) AS unpriced_calls,
    sum(calls.cost_usd) AS cost_usd,
    sum(calls.input_cost_usd) AS input_cost_usd,
    sum(calls.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls.output_cost_usd) AS output_cost_usd,
    sum(calls.tool_cost_usd) AS tool_cost_usd,
    sum(calls.batch_discount_usd) AS batch_discount_usd,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens + calls.cache_write_1h_tokens)) AS cache_write_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens
FROM calls
GROUP BY project, bucket, route, model, provider, team, feature;

-- Back-fill the months stored before this migration (those without rows yet).
INSERT INTO calls_5m
SELECT
    calls.project AS project,
    toStartOfFiveMinutes(calls.ts) AS bucket,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.status != 'ok')) AS errors,
    toUInt64(countIf(calls.unpriced)) AS unpriced_calls,
    sum(calls.cost_usd) AS cost_usd,
    sum(calls.input_cost_usd) AS input_cost_usd,
    sum(calls.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls.output_cost_usd) AS output_cost_usd,
    sum(calls.tool_cost_usd) AS tool_cost_usd,
    sum(calls.batch_discount_usd) AS batch_discount_usd,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens + calls.cache_write_1h_tokens)) AS cache_write_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens
FROM calls
WHERE calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_5m)
GROUP BY project, toStartOfHour(calls.ts), bucket, route, model, provider, team, feature
SETTINGS optimize_aggregation_in_order = 1;
