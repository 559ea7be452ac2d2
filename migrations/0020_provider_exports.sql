-- Aggregated usage and cost buckets from provider exports (OpenAI Usage/Costs API, Anthropic
-- usage/cost reports), kept apart from `calls` so that reconciliation can compare the two.
--
-- Replacement without FINAL: a provider revises recent buckets after the fact, so every run
-- re-fetches the last few. Rows are never updated in place; each fetched page is written under a
-- new `fetch_id` and then one row per bucket goes into `provider_bucket_fetches` (a single small
-- insert, atomic for readers). The `*_live` views keep only the rows of the latest fetch of
-- each bucket, so a re-fetched bucket replaces the old one the instant its manifest row lands and is
-- never counted twice, and readers need neither FINAL nor a merge. Superseded rows are deleted
-- afterwards as housekeeping only; correctness never depends on that delete having run.
CREATE TABLE IF NOT EXISTS provider_usage
(
    project LowCardinality(String) DEFAULT 'default',
    provider LowCardinality(String),
    stream LowCardinality(String),
    fetch_id String,
    fetched_at DateTime64(3, 'UTC'),
    bucket_width LowCardinality(String),
    bucket_start DateTime64(3, 'UTC'),
    bucket_end DateTime64(3, 'UTC'),
    grouped_by Array(LowCardinality(String)),
    provider_project_id String DEFAULT '',
    api_key_id String DEFAULT '',
    user_id String DEFAULT '',
    model LowCardinality(String) DEFAULT '',
    model_raw LowCardinality(String) DEFAULT '',
    service_tier LowCardinality(String) DEFAULT '',
    context_window LowCardinality(String) DEFAULT '',
    is_batch Nullable(Bool),
    requests Nullable(UInt64),
    input_tokens UInt64,
    uncached_input_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_5m_tokens UInt64,
    cache_write_1h_tokens UInt64,
    output_tokens UInt64,
    web_search_requests UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (project, provider, stream, bucket_start, fetch_id);

CREATE TABLE IF NOT EXISTS provider_costs
(
    project LowCardinality(String) DEFAULT 'default',
    provider LowCardinality(String),
    stream LowCardinality(String),
    fetch_id String,
    fetched_at DateTime64(3, 'UTC'),
    bucket_width LowCardinality(String),
    bucket_start DateTime64(3, 'UTC'),
    bucket_end DateTime64(3, 'UTC'),
    grouped_by Array(LowCardinality(String)),
    provider_project_id String DEFAULT '',
    api_key_id String DEFAULT '',
    model LowCardinality(String) DEFAULT '',
    model_raw LowCardinality(String) DEFAULT '',
    line_item String DEFAULT '',
    cost_type LowCardinality(String) DEFAULT '',
    token_type LowCardinality(String) DEFAULT '',
    service_tier LowCardinality(String) DEFAULT '',
    context_window LowCardinality(String) DEFAULT '',
    quantity Nullable(Decimal(38, 18)),
    quantity_unit LowCardinality(String) DEFAULT '',
    amount Decimal(38, 18),
    currency LowCardinality(String),
    cost_usd Nullable(Decimal(38, 18))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (project, provider, stream, bucket_start, fetch_id);

-- One row per (stream, bucket) per fetch, written after the rows of that fetch: the latest row of a
-- bucket names the fetch that is live for it (an empty bucket has a manifest row and no data).
CREATE TABLE IF NOT EXISTS provider_bucket_fetches
(
    stream LowCardinality(String),
    bucket_start DateTime64(3, 'UTC'),
    bucket_end DateTime64(3, 'UTC'),
    fetch_id String,
    fetched_at DateTime64(3, 'UTC'),
    rows UInt64
)
ENGINE = MergeTree
ORDER BY (stream, bucket_start, fetched_at);

CREATE VIEW IF NOT EXISTS provider_usage_live AS
SELECT * FROM provider_usage
WHERE (stream, bucket_start, fetch_id) IN (
    SELECT stream, bucket_start, argMax(fetch_id, (fetched_at, fetch_id))
    FROM provider_bucket_fetches GROUP BY stream, bucket_start
);

CREATE VIEW IF NOT EXISTS provider_costs_live AS
SELECT * FROM provider_costs
WHERE (stream, bucket_start, fetch_id) IN (
    SELECT stream, bucket_start, argMax(fetch_id, (fetched_at, fetch_id))
    FROM provider_bucket_fetches GROUP BY stream, bucket_start
);
