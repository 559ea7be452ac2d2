-- Alert lifecycle (design.md §5): one incident per (signal, scope) from open to RESOLVED, its
-- transitions, and the notification outbox. Each incident / outbox change is a new row version
-- (ReplacingMergeTree on `version`): small tables, read with FINAL. Ids are deterministic hashes,
-- so evaluating the same window twice writes the same rows again, which collapse.
CREATE TABLE IF NOT EXISTS alert_incidents
(
    incident_id String,
    signal LowCardinality(String),
    scope_key String,
    scope Map(LowCardinality(String), String),
    project LowCardinality(String),
    team LowCardinality(String),
    state LowCardinality(String),
    level UInt8,
    severity LowCardinality(String),
    stage String,
    opened_at DateTime64(3, 'UTC'),
    changed_at DateTime64(3, 'UTC'),
    observed_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    value Float64,
    threshold Float64,
    unit LowCardinality(String),
    summary String,
    cause String,
    next_step String,
    detail String,
    series Array(Float64),
    notified_at Nullable(DateTime64(3, 'UTC')),
    acked_by String DEFAULT '',
    acked_at Nullable(DateTime64(3, 'UTC')),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY incident_id;

-- Every transition (opened, escalated, downgraded, resolved, renotified, acknowledged): the history.
CREATE TABLE IF NOT EXISTS alert_events
(
    event_id String,
    incident_id String,
    signal LowCardinality(String),
    scope_key String,
    scope Map(LowCardinality(String), String),
    project LowCardinality(String),
    team LowCardinality(String),
    at DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    from_state LowCardinality(String),
    to_state LowCardinality(String),
    severity LowCardinality(String),
    stage String,
    value Float64,
    threshold Float64,
    unit LowCardinality(String),
    summary String,
    cause String,
    next_step String,
    detail String,
    series Array(Float64),
    actor String DEFAULT '',
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(created_at)
PARTITION BY toYYYYMM(at)
ORDER BY (incident_id, at, event_id);

-- Notifications, written before they are sent. state: pending → sending → sent | logged |
-- suppressed (silenced) | failed (a permanent Slack error; `llmledger alerts retry` re-queues).
CREATE TABLE IF NOT EXISTS alert_outbox
(
    notification_id String,
    event_id String,
    incident_id String,
    kind LowCardinality(String),
    destination LowCardinality(String),
    channel String,
    payload String,
    created_at DateTime64(3, 'UTC'),
    state LowCardinality(String),
    attempts UInt16,
    next_attempt_at DateTime64(3, 'UTC'),
    last_error String,
    sent_at Nullable(DateTime64(3, 'UTC')),
    message_ts String,
    thread_ts String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY notification_id;

-- Silences: matching incidents keep their lifecycle but notify nobody until ends_at.
CREATE TABLE IF NOT EXISTS alert_silences
(
    silence_id String,
    signal LowCardinality(String),
    matchers Map(String, String),
    starts_at DateTime64(3, 'UTC'),
    ends_at DateTime64(3, 'UTC'),
    created_by String,
    reason String,
    created_at DateTime64(3, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY silence_id;

-- How far each signal rule has been evaluated: an instant at or before it is never evaluated again.
CREATE TABLE IF NOT EXISTS signal_watermarks
(
    rule LowCardinality(String),
    evaluated_until DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(evaluated_until)
ORDER BY rule;
