-- One row per ingest batch: where it came from and what became of its records.
CREATE TABLE IF NOT EXISTS ingest_batches
(
    batch_id String,
    source LowCardinality(String),
    origin String,
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    rows_read UInt64,
    rows_written UInt64,
    rows_duplicate UInt64,
    rows_dead UInt64,
    rows_unpriced UInt64,
    unknown_fields Array(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (source, started_at);
