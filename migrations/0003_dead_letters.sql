-- Records that could not be ingested, with the reason and the (size-capped) raw payload, so
-- nothing is lost silently. Kept 90 days.
CREATE TABLE IF NOT EXISTS dead_letters
(
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    batch_id String,
    source LowCardinality(String),
    reason LowCardinality(String),
    detail String,
    line_no UInt64,
    event_id String DEFAULT '',
    raw String,
    raw_bytes UInt64,
    raw_truncated Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (source, ingested_at)
TTL toDateTime(ingested_at) + INTERVAL 90 DAY;
