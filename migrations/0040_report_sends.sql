-- The weekly report's delivery ledger: one row per attempt to send one report (a period and an
-- audience: a team, or '*' for the company-wide list). A period and audience whose latest row
-- is `sent` is never sent again; a `failed` one is retried on the next run. Small, append-only.
CREATE TABLE IF NOT EXISTS report_sends
(
    report LowCardinality(String),
    period String,
    audience String,
    recipients Array(String),
    status LowCardinality(String),
    attempt UInt16,
    message_id String,
    error_kind LowCardinality(String) DEFAULT '',
    error String DEFAULT '',
    attempted_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (report, period, audience, attempted_at);
