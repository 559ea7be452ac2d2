-- Hourly prompt-cache rollup for the dashboards (caching page, cache savings), kept incrementally
-- by a materialized view: cache read / write tokens and their billed cost per project, hour, route,
-- model, provider and price context (batch, service tier), and — for the "long enough to cache"
-- minimums most providers document (1024, 2048, 4096 input tokens) — the ok calls at or above each,
-- those of them that neither read nor wrote the cache, and their input tokens. Rows are partial
-- sums: read with sum() and GROUP BY. Rebuilt with the other rollups after a reprice
-- (`warehouse.rollups`); a query needing another minimum reads raw calls instead.
CREATE TABLE IF NOT EXISTS calls_cache_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    is_batch Bool,
    service_tier LowCardinality(String),

    calls SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    cache_write_cost_usd SimpleAggregateFunction(sum, Decimal(38, 18)),
    eligible_1024 SimpleAggregateFunction(sum, UInt64),
    uncached_1024 SimpleAggregateFunction(sum, UInt64),
    uncached_input_1024 SimpleAggregateFunction(sum, UInt64),
    eligible_2048 SimpleAggregateFunction(sum, UInt64),
    uncached_2048 SimpleAggregateFunction(sum, UInt64),
    uncached_input_2048 SimpleAggregateFunction(sum, UInt64),
    eligible_4096 SimpleAggregateFunction(sum, UInt64),
    uncached_4096 SimpleAggregateFunction(sum, UInt64),
    uncached_input_4096 SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, route, model, provider, is_batch, service_tier);

-- Source columns are qualified (`calls.x`): an output alias equal to a source column name would
-- otherwise capture it inside the aggregate.
CREATE MATERIALIZED VIEW IF NOT EXISTS calls_cache_hourly_mv TO calls_cache_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.is_batch AS is_batch,
    calls.service_tier AS service_tier,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(calls.cache_write_5m_tokens + calls.cache_write_1h_tokens)) AS cache_write_tokens,
    sum(calls.cache_read_cost_usd) AS cache_read_cost_usd,
    sum(calls.cache_write_cost_usd) AS cache_write_cost_usd,
    toUInt64(countIf(calls.status = 'ok' AND calls.input_tokens >= 1024)) AS eligible_1024,
    toUInt64(countIf(calls.status = 'ok' AND calls.input_tokens >= 1024 AND calls.cache_read_tokens
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_1024,
    toUInt64(sumIf(calls.input_tokens, calls.status = 'ok' AND calls.input_tokens >= 1024 AND calls.cache_read_tokens
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_input_1024,
    toUInt64(countIf(calls.status = 'ok' AND calls.input_tokens >= 2048)) AS eligible_2048,
    toUInt64(countIf(calls.status = 'ok' AND calls.input_tokens >= 2048 AND calls.cache_read_tokens
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_2048,
    toUInt64(sumIf(calls.input_tokens, calls.status = 'ok' AND calls.input_tokens >= 2048 AND calls.cache_read_tokens
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_input_2048,
    toUInt64(countIf(calls.status = 'ok' AND calls.input_tokens >= 4096)) AS eligible_4096,
    toUInt64(countIf(calls.status = 'ok' AND calls.input_tokens >= 4096 AND calls.cache_read_tokens
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_4096,
    toUInt64(sumIf(calls.input_tokens, calls.status = 'ok' AND calls.input_tokens >= 4096 AND calls.cache_read_tokens
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_input_4096
FROM calls
GROUP BY project, hour, route, model, provider, is_batch, service_tier;
