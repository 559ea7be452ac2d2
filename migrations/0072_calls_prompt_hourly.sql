-- Hourly prompt-version rollup: calls, first and last call per project, hour, route, feature, team,
-- model, provider, prompt version and prompt-prefix hash, kept by a materialized view. The caching
-- page's release markers ("which prompt versions ran, from when to when, with which prefixes")
-- read whole hours here instead of every call of the range. First / last call keep the calls' own
-- timestamps (min / max), so the markers are as exact as a scan. Read with min() / max() / sum()
-- and GROUP BY; rebuilt with the other rollups (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS calls_prompt_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    route LowCardinality(String),
    feature LowCardinality(String),
    team LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    prompt_version LowCardinality(String),
    prompt_prefix_hash String,

    calls SimpleAggregateFunction(sum, UInt64),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, route, prompt_version, prompt_prefix_hash, model, provider, team, feature);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_prompt_hourly_mv TO calls_prompt_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.feature AS feature,
    calls.team AS team,
    calls.model AS model,
    calls.provider AS provider,
    calls.prompt_version AS prompt_version,
    calls.prompt_prefix_hash AS prompt_prefix_hash,
    toUInt64(count()) AS calls,
    min(calls.ts) AS first_seen,
    max(calls.ts) AS last_seen
FROM calls
GROUP BY project, hour, route, prompt_version, prompt_prefix_hash, model, provider, team, feature;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_prompt_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.feature AS feature,
    calls.team AS team,
    calls.model AS model,
    calls.provider AS provider,
    calls.prompt_version AS prompt_version,
    calls.prompt_prefix_hash AS prompt_prefix_hash,
    toUInt64(count()) AS calls,
    min(calls.ts) AS first_seen,
    max(calls.ts) AS last_seen
FROM calls
WHERE calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_prompt_hourly)
GROUP BY project, hour, route, prompt_version, prompt_prefix_hash, model, provider, team, feature;
