-- Tool / sandbox executions (OTel execute_tool spans, sandbox logs, the simulator). LLM calls
-- made inside a tool carry tool_name and the tool run's span as parent_span_id in `calls`.
CREATE TABLE IF NOT EXISTS tool_runs
(
    event_id String,
    ts DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    source LowCardinality(String),
    project LowCardinality(String) DEFAULT 'default',
    tool_name LowCardinality(String),
    route LowCardinality(String) DEFAULT '',
    user_id String DEFAULT '',
    session_id String DEFAULT '',
    trace_id String DEFAULT '',
    span_id String DEFAULT '',
    parent_span_id String DEFAULT '',
    duration_ms UInt32,
    status LowCardinality(String) DEFAULT 'ok',
    error_type LowCardinality(String) DEFAULT ''
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (project, toStartOfHour(ts), tool_name, event_id);
