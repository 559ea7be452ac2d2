-- Daily rollup of every call per project, UTC day, route, routing policy, cascade step, model,
-- provider, price context (is_batch, service_tier), whether it is a tool call, and — for the
-- step-0 calls of a routing policy that carry one — the router score rounded to 4 decimals (-1
-- otherwise). The router threshold advisor (`warehouse.queries.advice`) reads whole days here: the
-- route's traffic per step and model, and its logged score distribution repriced on the cheap and
-- the frontier model. Repricing a group's summed token classes is exact (pricing is linear in the
-- tokens once the price cell is fixed), so the group also keeps its smallest and largest input
-- (the price cell's input-token tier) and its web searches; where no single cell holds a group over
-- the range read, every call is priced on its own instead. Money stays exact; rebuilt with the other rollups.
CREATE TABLE IF NOT EXISTS calls_route_scores_daily
(
    project LowCardinality(String),
    day DateTime('UTC'),
    route LowCardinality(String),
    routing_policy LowCardinality(String),
    cascade_step UInt8,
    model LowCardinality(String),
    provider LowCardinality(String),
    is_batch Bool,
    service_tier LowCardinality(String),
    is_tool Bool,
    score Float64,

    calls SimpleAggregateFunction(sum, UInt64),
    scored_calls SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_5m_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_1h_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),
    web_searches SimpleAggregateFunction(sum, UInt64),
    input_min SimpleAggregateFunction(min, UInt32),
    input_max SimpleAggregateFunction(max, UInt32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project, route, day, routing_policy, cascade_step, model, provider, is_batch, service_tier, is_tool, score);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_route_scores_daily_mv TO calls_route_scores_daily AS
SELECT
    calls.project AS project,
    toStartOfDay(calls.ts) AS day,
    calls.route AS route,
    calls.routing_policy AS routing_policy,
    calls.cascade_step AS cascade_step,
    calls.model AS model,
    calls.provider AS provider,
    calls.is_batch AS is_batch,
    calls.service_tier AS service_tier,
    calls.tool_name != '' AS is_tool,
    if(calls.routing_policy != '' AND calls.cascade_step = 0 AND calls.router_score IS NOT NULL,
       round(toFloat64(assumeNotNull(calls.router_score)), 4), -1.) AS score,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.router_score IS NOT NULL)) AS scored_calls,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens)) AS cache_write_5m_tokens,
    toUInt64(sum(calls.cache_write_1h_tokens)) AS cache_write_1h_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens,
    toUInt64(sum(calls.web_searches)) AS web_searches,
    toUInt32(min(calls.input_tokens)) AS input_min,
    toUInt32(max(calls.input_tokens)) AS input_max
FROM calls
GROUP BY project, day, route, routing_policy, cascade_step, model, provider, is_batch, service_tier, is_tool, score;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_route_scores_daily
SELECT
    calls.project AS project,
    toStartOfDay(calls.ts) AS day,
    calls.route AS route,
    calls.routing_policy AS routing_policy,
    calls.cascade_step AS cascade_step,
    calls.model AS model,
    calls.provider AS provider,
    calls.is_batch AS is_batch,
    calls.service_tier AS service_tier,
    calls.tool_name != '' AS is_tool,
    if(calls.routing_policy != '' AND calls.cascade_step = 0 AND calls.router_score IS NOT NULL,
       round(toFloat64(assumeNotNull(calls.router_score)), 4), -1.) AS score,
    toUInt64(count()) AS calls,
    toUInt64(countIf(calls.router_score IS NOT NULL)) AS scored_calls,
    toUInt64(sum(calls.input_tokens)) AS input_tokens,
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens)) AS cache_write_5m_tokens,
    toUInt64(sum(calls.cache_write_1h_tokens)) AS cache_write_1h_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens,
    toUInt64(sum(calls.web_searches)) AS web_searches,
    toUInt32(min(calls.input_tokens)) AS input_min,
    toUInt32(max(calls.input_tokens)) AS input_max
FROM calls
WHERE calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_route_scores_daily)
GROUP BY project, day, route, routing_policy, cascade_step, model, provider, is_batch, service_tier, is_tool, score;
