-- Daily tier of `calls_user_hourly`: per-user spend per UTC day (`day` = midnight). The hourly
-- per-user rollup holds only a few calls per row (users × routes × models × hours), so "what did
-- each user cost this month" grew with traffic; a day row holds a user's whole day per route and
-- model, and a month reads ~30× fewer rows. Money exact (Decimal sums); rebuilt after the hourly
-- rollup by `warehouse.rollups.rebuild_rollups`.
CREATE TABLE IF NOT EXISTS calls_user_daily
(
    project LowCardinality(String),
    day DateTime('UTC'),
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
    output_tokens SimpleAggregateFunction(sum, UInt64),
    unpriced_calls SimpleAggregateFunction(sum, UInt64),
    input_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_read_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_write_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    output_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    tool_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    batch_discount_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project, day, user_id, route, model, provider, team, feature);

-- Fed by the rows the hourly view writes (a view on a view's target): each insert's hours,
-- merged into their days. Source columns qualified, as in the hourly views.
CREATE MATERIALIZED VIEW IF NOT EXISTS calls_user_daily_mv TO calls_user_daily AS
SELECT
    calls_user_hourly.project AS project,
    toStartOfDay(calls_user_hourly.hour) AS day,
    calls_user_hourly.user_id AS user_id,
    calls_user_hourly.team AS team,
    calls_user_hourly.feature AS feature,
    calls_user_hourly.route AS route,
    calls_user_hourly.model AS model,
    calls_user_hourly.provider AS provider,
    sum(calls_user_hourly.calls) AS calls,
    sum(calls_user_hourly.errors) AS errors,
    sum(calls_user_hourly.cost_usd) AS cost_usd,
    sum(calls_user_hourly.input_tokens) AS input_tokens,
    sum(calls_user_hourly.output_tokens) AS output_tokens,
    sum(calls_user_hourly.unpriced_calls) AS unpriced_calls,
    sum(calls_user_hourly.input_cost_usd) AS input_cost_usd,
    sum(calls_user_hourly.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls_user_hourly.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls_user_hourly.output_cost_usd) AS output_cost_usd,
    sum(calls_user_hourly.tool_cost_usd) AS tool_cost_usd,
    sum(calls_user_hourly.batch_discount_usd) AS batch_discount_usd,
    sum(calls_user_hourly.cache_read_tokens) AS cache_read_tokens,
    sum(calls_user_hourly.cache_write_tokens) AS cache_write_tokens,
    sum(calls_user_hourly.reasoning_tokens) AS reasoning_tokens
FROM calls_user_hourly
GROUP BY project, day, user_id, route, model, provider, team, feature;

-- Back-fill the months rolled up before this migration (those without daily rows yet, so a re-run
-- adds nothing twice).
INSERT INTO calls_user_daily
SELECT
    calls_user_hourly.project AS project,
    toStartOfDay(calls_user_hourly.hour) AS day,
    calls_user_hourly.user_id AS user_id,
    calls_user_hourly.team AS team,
    calls_user_hourly.feature AS feature,
    calls_user_hourly.route AS route,
    calls_user_hourly.model AS model,
    calls_user_hourly.provider AS provider,
    sum(calls_user_hourly.calls) AS calls,
    sum(calls_user_hourly.errors) AS errors,
    sum(calls_user_hourly.cost_usd) AS cost_usd,
    sum(calls_user_hourly.input_tokens) AS input_tokens,
    sum(calls_user_hourly.output_tokens) AS output_tokens,
    sum(calls_user_hourly.unpriced_calls) AS unpriced_calls,
    sum(calls_user_hourly.input_cost_usd) AS input_cost_usd,
    sum(calls_user_hourly.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls_user_hourly.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls_user_hourly.output_cost_usd) AS output_cost_usd,
    sum(calls_user_hourly.tool_cost_usd) AS tool_cost_usd,
    sum(calls_user_hourly.batch_discount_usd) AS batch_discount_usd,
    sum(calls_user_hourly.cache_read_tokens) AS cache_read_tokens,
    sum(calls_user_hourly.cache_write_tokens) AS cache_write_tokens,
    sum(calls_user_hourly.reasoning_tokens) AS reasoning_tokens
FROM calls_user_hourly
WHERE calls_user_hourly._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_user_daily)
GROUP BY project, day, user_id, route, model, provider, team, feature;
