-- Hourly rollup of every attribution measure per project, hour, deployment, node, model and provider
-- (without the route / team / feature / key `calls_hourly` keeps, and with the deployment it does not).
-- Usage of one deployment per model — the nodes page's self-hosted models, `deployment = self_hosted`
-- — reads a few rows per model and hour here instead of every call of the range (no other rollup
-- keeps `deployment`). Money exact (Decimal sums); read with sum() and GROUP BY; rebuilt with the
-- other rollups (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS calls_deployment_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    deployment LowCardinality(String),
    node LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),

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
PARTITION BY toYYYYMM(hour)
ORDER BY (project, deployment, hour, node, model, provider);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_deployment_hourly_mv TO calls_deployment_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.deployment AS deployment,
    calls.node AS node,
    calls.model AS model,
    calls.provider AS provider,
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
GROUP BY project, hour, deployment, node, model, provider;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_deployment_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.deployment AS deployment,
    calls.node AS node,
    calls.model AS model,
    calls.provider AS provider,
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
WHERE calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_deployment_hourly)
GROUP BY project, hour, deployment, node, model, provider;
