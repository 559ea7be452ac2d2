-- Hourly tool / sandbox runs per tool (and the route that ran it), kept by a materialized view:
-- the denominator of "LLM cost per tool invocation" baselines and timeout history.
CREATE TABLE IF NOT EXISTS tool_runs_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    tool_name LowCardinality(String),
    route LowCardinality(String),

    runs SimpleAggregateFunction(sum, UInt64),
    ok_runs SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    timeouts SimpleAggregateFunction(sum, UInt64),
    duration_ms_sum SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, tool_name, route);

CREATE MATERIALIZED VIEW IF NOT EXISTS tool_runs_hourly_mv TO tool_runs_hourly AS
SELECT
    tool_runs.project AS project,
    toStartOfHour(tool_runs.ts) AS hour,
    tool_runs.tool_name AS tool_name,
    tool_runs.route AS route,
    toUInt64(count()) AS runs,
    toUInt64(countIf(tool_runs.status = 'ok')) AS ok_runs,
    toUInt64(countIf(tool_runs.status = 'error')) AS errors,
    toUInt64(countIf(tool_runs.status = 'timeout')) AS timeouts,
    toUInt64(sum(tool_runs.duration_ms)) AS duration_ms_sum
FROM tool_runs
GROUP BY project, hour, tool_name, route;
