-- Scheduled and manual job runs: one row version when a run starts (state running) and one when
-- it ends (ok / failed, with the error). Kept 90 days.
CREATE TABLE IF NOT EXISTS job_runs
(
    run_id String,
    job LowCardinality(String),
    trigger LowCardinality(String),
    state LowCardinality(String),
    scheduled_for Nullable(DateTime64(3, 'UTC')),
    started_at DateTime64(3, 'UTC'),
    finished_at Nullable(DateTime64(3, 'UTC')),
    duration_ms UInt64,
    error String,
    detail String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (job, started_at, run_id)
TTL toDateTime(started_at) + INTERVAL 90 DAY;
