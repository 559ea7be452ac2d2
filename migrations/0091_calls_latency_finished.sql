-- Finished hourly latency: for every closed hour, per project and for all projects together
-- (`all_projects` = 1, `project` = ''), the hour's ok calls, latency / TTFT sums and the latency, TTFT
-- and queue-time quantiles (the digests' levels 0.5, 0.9, 0.95, 0.99) overall (`dimension` '') and per
-- route, model and provider (`key`): what the hourly latency series answers for that hour, merged
-- once from `calls_latency_hourly` instead of on every read. A month of the latency page by the hour
-- merged ~11k t-digest states three times per read (its whole cost, growing with calls per hour);
-- it now reads ~8k finished rows and merges only the hours not finished yet.
-- `source_hash` fingerprints the hour's counts and sums in `calls_latency_hourly` (in the row's
-- scope) when the row was computed: a read uses a finished hour only while the fingerprint still
-- holds, so late calls or a rebuilt rollup send the hour back to live merging until the
-- `rollups.refresh` job finishes it again (`warehouse.latency_hours`). Newer rows of the same
-- scope, dimension, hour and key replace older ones.
CREATE TABLE IF NOT EXISTS calls_latency_finished
(
    all_projects UInt8,
    project LowCardinality(String),
    dimension LowCardinality(String),
    hour DateTime('UTC'),
    key String,
    source_hash UInt64,

    calls UInt64,
    latency_calls UInt64,
    latency_ms_sum UInt64,
    latency_q Array(Float32),
    ttft_calls UInt64,
    ttft_ms_sum UInt64,
    ttft_q Array(Float32),
    queue_calls UInt64,
    queue_q Array(Float32),
    finished_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(finished_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (all_projects, project, dimension, hour, key);

-- The finished rows of every hour of `calls_latency_hourly` (callers pick the hours: a filter on
-- `hour` reaches the rollup's read). One pass, grouping sets: per project and over all projects,
-- the hour and each route, model and provider. `grouping(...)` has a bit set for each column left
-- out of the row's set (project 8, route 4, model 2, provider 1). The fingerprint is taken over the
-- rows of one scope, dimension and hour: their sums are the hour's, in the same snapshot as the digests.
CREATE VIEW IF NOT EXISTS calls_latency_finishing AS
SELECT
    x_all AS all_projects, x_project AS project, x_dimension AS dimension, x_hour AS hour, x_key AS key,
    cityHash64(sum(x_n) OVER w, sum(x_calls) OVER w, sum(x_latency_sum) OVER w, sum(x_ttft_sum) OVER w,
               sum(x_queue_sum) OVER w) AS source_hash,
    x_calls AS calls, x_latency_calls AS latency_calls, x_latency_sum AS latency_ms_sum, x_latency_q AS latency_q,
    x_ttft_calls AS ttft_calls, x_ttft_sum AS ttft_ms_sum, x_ttft_q AS ttft_q,
    x_queue_calls AS queue_calls, x_queue_q AS queue_q
FROM (
    SELECT
        grouping(project, route, model, provider) AS x_set,
        toUInt8(intDiv(x_set, 8)) AS x_all,
        if(x_all = 1, '', toString(project)) AS x_project,
        multiIf(x_set % 8 = 3, 'route', x_set % 8 = 5, 'model', x_set % 8 = 6, 'provider', '') AS x_dimension,
        hour AS x_hour,
        multiIf(x_dimension = 'route', toString(route), x_dimension = 'model', toString(model),
                x_dimension = 'provider', toString(provider), '') AS x_key,
        sum(calls) AS x_n,
        sum(ok_calls) AS x_calls,
        sum(latency_calls) AS x_latency_calls,
        sum(latency_ms_sum) AS x_latency_sum,
        quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_digest) AS x_latency_q,
        sum(ttft_calls) AS x_ttft_calls,
        sum(ttft_ms_sum) AS x_ttft_sum,
        quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(ttft_ms_digest) AS x_ttft_q,
        sum(queue_calls) AS x_queue_calls,
        sum(queue_ms_sum) AS x_queue_sum,
        quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(queue_ms_digest) AS x_queue_q
    FROM calls_latency_hourly
    GROUP BY GROUPING SETS ((project, hour), (project, hour, route), (project, hour, model), (project, hour, provider),
                            (hour), (hour, route), (hour, model), (hour, provider))
)
WINDOW w AS (PARTITION BY x_all, x_project, x_dimension, x_hour);

-- Back-fill the closed hours stored before this migration (those without finished rows yet).
INSERT INTO calls_latency_finished (all_projects, project, dimension, hour, key, source_hash, calls, latency_calls,
                                    latency_ms_sum, latency_q, ttft_calls, ttft_ms_sum, ttft_q, queue_calls, queue_q)
SELECT all_projects, project, dimension, hour, key, source_hash, calls, latency_calls, latency_ms_sum, latency_q,
       ttft_calls, ttft_ms_sum, ttft_q, queue_calls, queue_q
FROM calls_latency_finishing
WHERE hour < toStartOfHour(now()) AND hour NOT IN (SELECT hour FROM calls_latency_finished);
