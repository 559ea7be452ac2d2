-- Hourly rollup of the calls of cascade routing policies (routing_policy set): calls, cost and the
-- token classes per project, hour, policy, cascade step, model, provider, route, team, feature and
-- price context (is_batch, service_tier), kept by a materialized view. The routing page's cost per
-- step and its "all on the frontier model" repricing (which prices token classes per hour and price
-- context) read whole hours here instead of every routed call. Money exact (Decimal sums); token
-- classes are the raw queries' own differences (uncached input = input − cache reads − cache writes,
-- visible output = output − reasoning). Rebuilt with the other rollups (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS calls_routing_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    routing_policy LowCardinality(String),
    cascade_step UInt8,
    model LowCardinality(String),
    provider LowCardinality(String),
    route LowCardinality(String),
    team LowCardinality(String),
    feature LowCardinality(String),
    is_batch Bool,
    service_tier LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    uncached_input_tokens SimpleAggregateFunction(sum, Int64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_5m_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_1h_tokens SimpleAggregateFunction(sum, UInt64),
    visible_output_tokens SimpleAggregateFunction(sum, Int64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, routing_policy, cascade_step, model, provider, route, team, feature, is_batch, service_tier);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_routing_hourly_mv TO calls_routing_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.routing_policy AS routing_policy,
    calls.cascade_step AS cascade_step,
    calls.model AS model,
    calls.provider AS provider,
    calls.route AS route,
    calls.team AS team,
    calls.feature AS feature,
    calls.is_batch AS is_batch,
    calls.service_tier AS service_tier,
    toUInt64(count()) AS calls,
    sum(calls.cost_usd) AS cost_usd,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toInt64(sum(calls.input_tokens - calls.cache_read_tokens - calls.cache_write_5m_tokens - calls.cache_write_1h_tokens)) AS uncached_input_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens)) AS cache_write_5m_tokens,
    toUInt64(sum(calls.cache_write_1h_tokens)) AS cache_write_1h_tokens,
    toInt64(sum(calls.output_tokens - calls.reasoning_tokens)) AS visible_output_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens
FROM calls
WHERE calls.routing_policy != ''
GROUP BY project, hour, routing_policy, cascade_step, model, provider, route, team, feature, is_batch, service_tier;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_routing_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.routing_policy AS routing_policy,
    calls.cascade_step AS cascade_step,
    calls.model AS model,
    calls.provider AS provider,
    calls.route AS route,
    calls.team AS team,
    calls.feature AS feature,
    calls.is_batch AS is_batch,
    calls.service_tier AS service_tier,
    toUInt64(count()) AS calls,
    sum(calls.cost_usd) AS cost_usd,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toInt64(sum(calls.input_tokens - calls.cache_read_tokens - calls.cache_write_5m_tokens - calls.cache_write_1h_tokens)) AS uncached_input_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens)) AS cache_write_5m_tokens,
    toUInt64(sum(calls.cache_write_1h_tokens)) AS cache_write_1h_tokens,
    toInt64(sum(calls.output_tokens - calls.reasoning_tokens)) AS visible_output_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens
FROM calls
WHERE calls.routing_policy != ''
    AND calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_routing_hourly)
GROUP BY project, hour, routing_policy, cascade_step, model, provider, route, team, feature, is_batch, service_tier;
