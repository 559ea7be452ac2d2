-- Per-user totals: every attribution measure per project, hour (and, in `calls_user_totals_daily`,
-- UTC day) and user, without the route / model / team / feature the per-user rollups also keep. "What
-- did each user cost", "top users of the last 24 hours" and a month of per-user spend read about one
-- row per active user and hour (or day) instead of one per user, route and model. Fed by views on
-- the per-user rollups' own rows (each insert's users merged across their routes and models); money
-- exact (Decimal sums); rebuilt after the per-user rollups by `warehouse.rollups.rebuild_rollups`.
CREATE TABLE IF NOT EXISTS calls_user_totals_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    user_id String,

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
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_user_totals_hourly_mv TO calls_user_totals_hourly AS
SELECT
    calls_user_hourly.project AS project,
    calls_user_hourly.hour AS hour,
    calls_user_hourly.user_id AS user_id,
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
GROUP BY project, hour, user_id;

CREATE TABLE IF NOT EXISTS calls_user_totals_daily
(
    project LowCardinality(String),
    day DateTime('UTC'),
    user_id String,

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
ORDER BY (project, day, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_user_totals_daily_mv TO calls_user_totals_daily AS
SELECT
    calls_user_daily.project AS project,
    calls_user_daily.day AS day,
    calls_user_daily.user_id AS user_id,
    sum(calls_user_daily.calls) AS calls,
    sum(calls_user_daily.errors) AS errors,
    sum(calls_user_daily.cost_usd) AS cost_usd,
    sum(calls_user_daily.input_tokens) AS input_tokens,
    sum(calls_user_daily.output_tokens) AS output_tokens,
    sum(calls_user_daily.unpriced_calls) AS unpriced_calls,
    sum(calls_user_daily.input_cost_usd) AS input_cost_usd,
    sum(calls_user_daily.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls_user_daily.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls_user_daily.output_cost_usd) AS output_cost_usd,
    sum(calls_user_daily.tool_cost_usd) AS tool_cost_usd,
    sum(calls_user_daily.batch_discount_usd) AS batch_discount_usd,
    sum(calls_user_daily.cache_read_tokens) AS cache_read_tokens,
    sum(calls_user_daily.cache_write_tokens) AS cache_write_tokens,
    sum(calls_user_daily.reasoning_tokens) AS reasoning_tokens
FROM calls_user_daily
GROUP BY project, day, user_id;

-- Back-fill the months rolled up before this migration (those without rows yet).
INSERT INTO calls_user_totals_hourly
SELECT
    calls_user_hourly.project AS project,
    calls_user_hourly.hour AS hour,
    calls_user_hourly.user_id AS user_id,
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
WHERE calls_user_hourly._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_user_totals_hourly)
GROUP BY project, hour, user_id;

INSERT INTO calls_user_totals_daily
SELECT
    calls_user_daily.project AS project,
    calls_user_daily.day AS day,
    calls_user_daily.user_id AS user_id,
    sum(calls_user_daily.calls) AS calls,
    sum(calls_user_daily.errors) AS errors,
    sum(calls_user_daily.cost_usd) AS cost_usd,
    sum(calls_user_daily.input_tokens) AS input_tokens,
    sum(calls_user_daily.output_tokens) AS output_tokens,
    sum(calls_user_daily.unpriced_calls) AS unpriced_calls,
    sum(calls_user_daily.input_cost_usd) AS input_cost_usd,
    sum(calls_user_daily.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls_user_daily.cache_write_cost_usd) AS cache_write_cost_usd,
    sum(calls_user_daily.output_cost_usd) AS output_cost_usd,
    sum(calls_user_daily.tool_cost_usd) AS tool_cost_usd,
    sum(calls_user_daily.batch_discount_usd) AS batch_discount_usd,
    sum(calls_user_daily.cache_read_tokens) AS cache_read_tokens,
    sum(calls_user_daily.cache_write_tokens) AS cache_write_tokens,
    sum(calls_user_daily.reasoning_tokens) AS reasoning_tokens
FROM calls_user_daily
WHERE calls_user_daily._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_user_totals_daily)
GROUP BY project, day, user_id;
