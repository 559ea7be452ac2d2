-- One row per LLM call, canonical token semantics (design.md §3): input_tokens includes cache
-- reads and writes; output_tokens includes reasoning tokens. Money is Decimal(38, 18) USD.
-- Idempotent on event_id: the writer anti-joins each batch against stored ids in the batch's
-- time range, so reads need no FINAL; ReplacingMergeTree on ingested_at is the backstop.
CREATE TABLE IF NOT EXISTS calls
(
    event_id String,
    ts DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    batch_id String DEFAULT '',
    source LowCardinality(String),

    project LowCardinality(String) DEFAULT 'default',
    api_key_id String DEFAULT '',
    user_id String DEFAULT '',
    team LowCardinality(String) DEFAULT '',
    feature LowCardinality(String) DEFAULT '',
    route LowCardinality(String) DEFAULT '',
    environment LowCardinality(String) DEFAULT '',
    session_id String DEFAULT '',
    trace_id String DEFAULT '',
    span_id String DEFAULT '',
    parent_span_id String DEFAULT '',
    tool_name LowCardinality(String) DEFAULT '',
    prompt_version LowCardinality(String) DEFAULT '',
    prompt_prefix_hash String DEFAULT '',
    tags Map(LowCardinality(String), String),

    provider LowCardinality(String),
    model LowCardinality(String),
    model_raw LowCardinality(String),
    deployment LowCardinality(String) DEFAULT 'api',
    node LowCardinality(String) DEFAULT '',
    service_tier LowCardinality(String) DEFAULT '',
    is_batch Bool DEFAULT false,
    stream Bool DEFAULT false,

    input_tokens UInt32,
    cache_read_tokens UInt32,
    cache_write_5m_tokens UInt32,
    cache_write_1h_tokens UInt32,
    output_tokens UInt32,
    reasoning_tokens UInt32,
    web_searches UInt32,

    ttft_ms Nullable(UInt32),
    latency_ms Nullable(UInt32),
    queue_ms Nullable(UInt32),

    status LowCardinality(String) DEFAULT 'ok',
    error_type LowCardinality(String) DEFAULT '',
    http_status UInt16 DEFAULT 0,

    routing_policy LowCardinality(String) DEFAULT '',
    cascade_step UInt8 DEFAULT 0,
    escalated Bool DEFAULT false,
    router_score Nullable(Float32),

    cost_usd Decimal(38, 18),
    input_cost_usd Decimal(38, 18),
    cache_read_cost_usd Decimal(38, 18),
    cache_write_cost_usd Decimal(38, 18),
    output_cost_usd Decimal(38, 18),
    tool_cost_usd Decimal(38, 18),
    batch_discount_usd Decimal(38, 18),
    price_source LowCardinality(String) DEFAULT '',
    provider_reported_cost_usd Nullable(Decimal(38, 18)),
    unpriced Bool DEFAULT false,

    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_trace trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (project, toStartOfHour(ts), route, model, event_id);
