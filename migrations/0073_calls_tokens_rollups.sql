-- Per-call token distributions as mergeable states: for input, output and reasoning tokens, calls
-- counted per log bin (`sumMap` of bin → calls), the max and the sum, per project, hour (and, in
-- `calls_tokens_daily`, UTC day), route, model, provider, team and feature. The attribution and
-- routing pages' box plots, histograms and reasoning p99s read merged bins instead of every call.
-- Bin of a token count v: v itself below 128 (exact), above it 128 bins per doubling
-- (floor(log2(v) × 128) − 768, i.e. within 0.3% of v); bins nest in the histograms' quarter-doubling
-- bins, so histograms stay exact. Raw reads compute the same bins (`warehouse.queries.distributions`),
-- so a read from the rollups equals one over raw calls. Rebuilt with the other rollups.
CREATE TABLE IF NOT EXISTS calls_tokens_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    team LowCardinality(String),
    feature LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    input_bins SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))),
    input_max SimpleAggregateFunction(max, UInt32),
    input_sum SimpleAggregateFunction(sum, UInt64),
    output_bins SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))),
    output_max SimpleAggregateFunction(max, UInt32),
    output_sum SimpleAggregateFunction(sum, UInt64),
    reasoning_bins SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))),
    reasoning_max SimpleAggregateFunction(max, UInt32),
    reasoning_sum SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, route, model, provider, team, feature);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_tokens_hourly_mv TO calls_tokens_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    toUInt64(count()) AS calls,
    sumMap([if(calls.input_tokens < 128, toUInt16(calls.input_tokens), toUInt16(floor(log2(greatest(calls.input_tokens, 128)) * 128) - 768))], [toUInt64(1)]) AS input_bins,
    max(calls.input_tokens) AS input_max,
    toUInt64(sum(calls.input_tokens)) AS input_sum,
    sumMap([if(calls.output_tokens < 128, toUInt16(calls.output_tokens), toUInt16(floor(log2(greatest(calls.output_tokens, 128)) * 128) - 768))], [toUInt64(1)]) AS output_bins,
    max(calls.output_tokens) AS output_max,
    toUInt64(sum(calls.output_tokens)) AS output_sum,
    sumMap([if(calls.reasoning_tokens < 128, toUInt16(calls.reasoning_tokens), toUInt16(floor(log2(greatest(calls.reasoning_tokens, 128)) * 128) - 768))], [toUInt64(1)]) AS reasoning_bins,
    max(calls.reasoning_tokens) AS reasoning_max,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_sum
FROM calls
GROUP BY project, hour, route, model, provider, team, feature;

CREATE TABLE IF NOT EXISTS calls_tokens_daily
(
    project LowCardinality(String),
    day DateTime('UTC'),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    team LowCardinality(String),
    feature LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    input_bins SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))),
    input_max SimpleAggregateFunction(max, UInt32),
    input_sum SimpleAggregateFunction(sum, UInt64),
    output_bins SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))),
    output_max SimpleAggregateFunction(max, UInt32),
    output_sum SimpleAggregateFunction(sum, UInt64),
    reasoning_bins SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64))),
    reasoning_max SimpleAggregateFunction(max, UInt32),
    reasoning_sum SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project, day, route, model, provider, team, feature);

-- Fed by the rows the hourly view writes, merged into their UTC days.
CREATE MATERIALIZED VIEW IF NOT EXISTS calls_tokens_daily_mv TO calls_tokens_daily AS
SELECT
    calls_tokens_hourly.project AS project,
    toStartOfDay(calls_tokens_hourly.hour) AS day,
    calls_tokens_hourly.route AS route,
    calls_tokens_hourly.model AS model,
    calls_tokens_hourly.provider AS provider,
    calls_tokens_hourly.team AS team,
    calls_tokens_hourly.feature AS feature,
    sum(calls_tokens_hourly.calls) AS calls,
    sumMap(calls_tokens_hourly.input_bins) AS input_bins,
    max(calls_tokens_hourly.input_max) AS input_max,
    sum(calls_tokens_hourly.input_sum) AS input_sum,
    sumMap(calls_tokens_hourly.output_bins) AS output_bins,
    max(calls_tokens_hourly.output_max) AS output_max,
    sum(calls_tokens_hourly.output_sum) AS output_sum,
    sumMap(calls_tokens_hourly.reasoning_bins) AS reasoning_bins,
    max(calls_tokens_hourly.reasoning_max) AS reasoning_max,
    sum(calls_tokens_hourly.reasoning_sum) AS reasoning_sum
FROM calls_tokens_hourly
GROUP BY project, day, route, model, provider, team, feature;

-- Back-fill the months stored before this migration (those without rollup rows yet); the insert
-- into the hourly rollup fills the daily one through its view.
INSERT INTO calls_tokens_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    toUInt64(count()) AS calls,
    sumMap([if(calls.input_tokens < 128, toUInt16(calls.input_tokens), toUInt16(floor(log2(greatest(calls.input_tokens, 128)) * 128) - 768))], [toUInt64(1)]) AS input_bins,
    max(calls.input_tokens) AS input_max,
    toUInt64(sum(calls.input_tokens)) AS input_sum,
    sumMap([if(calls.output_tokens < 128, toUInt16(calls.output_tokens), toUInt16(floor(log2(greatest(calls.output_tokens, 128)) * 128) - 768))], [toUInt64(1)]) AS output_bins,
    max(calls.output_tokens) AS output_max,
    toUInt64(sum(calls.output_tokens)) AS output_sum,
    sumMap([if(calls.reasoning_tokens < 128, toUInt16(calls.reasoning_tokens), toUInt16(floor(log2(greatest(calls.reasoning_tokens, 128)) * 128) - 768))], [toUInt64(1)]) AS reasoning_bins,
    max(calls.reasoning_tokens) AS reasoning_max,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_sum
FROM calls
WHERE calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_tokens_hourly)
GROUP BY project, hour, route, model, provider, team, feature;
