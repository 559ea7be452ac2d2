-- Collector bookkeeping. `collector_cursors`: the resumable position of each collector (JSON),
-- saved after every written page; the latest row wins (argMax on updated_at). `collector_runs`:
-- one row per run with its outcome, so operations can see the last success of each collector, lag
-- and last error. Kept 90 days.
CREATE TABLE IF NOT EXISTS collector_cursors
(
    collector LowCardinality(String),
    cursor String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY collector;

CREATE TABLE IF NOT EXISTS collector_runs
(
    run_id String,
    collector LowCardinality(String),
    project LowCardinality(String) DEFAULT 'default',
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    status LowCardinality(String),
    error_kind LowCardinality(String) DEFAULT '',
    error String DEFAULT '',
    batches UInt64,
    rows_written UInt64,
    rows_duplicate UInt64,
    rows_dead UInt64,
    data_through Nullable(DateTime64(3, 'UTC'))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (collector, started_at)
TTL toDateTime(started_at) + INTERVAL 90 DAY;
