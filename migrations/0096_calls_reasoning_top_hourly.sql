-- Hourly rollup of the calls with the most reasoning tokens per project and UTC hour: the 50
-- largest (reasoning tokens, then earliest time, then event id) as a `groupArraySorted` state of
-- (−reasoning_tokens, ts, event_id), with the count and sum of the calls that reasoned (how
-- `warehouse.rollups` checks it against raw calls). The reasoning outliers read
-- (`distributions.reasoning_outliers`) merges the whole hours of its range here, takes the top n
-- (n ≤ 50) of those and of the raw calls at the partial hours at its edges, and reads just those calls
-- back: the n largest of a range are among the n largest of its hours, so the answer equals a scan
-- of every call, while the read no longer grows with the calls of the range. Months stored before
-- this migration are back-filled here; rebuilt with the other rollups.
CREATE TABLE IF NOT EXISTS calls_reasoning_top_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),

    calls SimpleAggregateFunction(sum, UInt64),
    reasoning_sum SimpleAggregateFunction(sum, UInt64),
    top AggregateFunction(groupArraySorted(50), Tuple(Int64, DateTime64(3, 'UTC'), String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_reasoning_top_hourly_mv TO calls_reasoning_top_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_sum,
    groupArraySortedState(50)((-toInt64(calls.reasoning_tokens), calls.ts, calls.event_id)) AS top
FROM calls
WHERE calls.reasoning_tokens > 0
GROUP BY project, hour;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_reasoning_top_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.reasoning_tokens)) AS reasoning_sum,
    groupArraySortedState(50)((-toInt64(calls.reasoning_tokens), calls.ts, calls.event_id)) AS top
FROM calls
WHERE calls.reasoning_tokens > 0
    AND calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_reasoning_top_hourly)
GROUP BY project, hour;
