-- The per-user rollup gains every measure of the attribution queries (cost components, cache and
-- reasoning tokens, unpriced calls), so "what did each user cost last month" reads whole hours from
-- `calls_user_hourly` instead of scanning raw calls. As in 0042: columns added, the view re-created,
-- and months rolled up before get rows carrying only the new measures (readers merge partial rows).
ALTER TABLE calls_user_hourly
    ADD COLUMN IF NOT EXISTS unpriced_calls SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS input_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cache_read_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cache_write_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS output_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS tool_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS batch_discount_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS reasoning_tokens SimpleAggregateFunction(sum, UInt64);

DROP VIEW IF EXISTS calls_user_hourly_mv;

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
    toUInt64(sum(calls.output_tokens)) AS output_tokens,
    toUInt64(countIf(calls.unpriced)) AS unpriced_calls,
    sum(calls.input_cost_usd) AS input_cost_usd,
    sum(calls.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls.output_cost_usd) AS output_cost_usd,
    sum(calls.tool_cost_usd) AS tool_cost_usd,
    sum(calls.batch_discount_usd) AS batch_discount_usd,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens + calls.cache_write_1h_tokens)) AS cache_write_tokens,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_tokens
FROM calls
GROUP BY project, hour, user_id, route, model, provider, team, feature;

INSERT INTO calls_user_hourly (project, hour, user_id, route, model, provider, team, feature,
    unpriced_calls, input_cost_usd, cache_read_cost_usd, cache_write_cost_usd, output_cost_usd, tool_cost_usd,
    batch_discount_usd, cache_read_tokens, cache_write_tokens, reasoning_tokens)
SELECT
    project, toStartOfHour(ts) AS hour, user_id, route, model, provider, team, feature,
    toUInt64(countIf(unpriced)),
    sum(input_cost_usd),
    sum(cache_read_cost_usd),
    sum(cache_write_cost_usd),
    sum(output_cost_usd),
    sum(tool_cost_usd),
    sum(batch_discount_usd),
    toUInt64(sum(cache_read_tokens)),
    toUInt64(sum(cache_write_5m_tokens + cache_write_1h_tokens)),
    toUInt64(sum(reasoning_tokens))
FROM calls
GROUP BY project, hour, user_id, route, model, provider, team, feature;
