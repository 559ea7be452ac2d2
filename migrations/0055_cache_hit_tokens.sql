-- One cache hit ratio for every provider (warehouse/queries/cache_ratio.py): per call, the tokens
-- that count as cache hits and the tokens they are a share of. Providers reporting cache writes
-- (Anthropic, Bedrock): cache reads, and reads + writes. Automatic caching and providers reporting
-- no writes (OpenAI, Azure, Gemini, DeepSeek, xAI), whose read / (read + write) is 100% by
-- construction: cache reads, and input tokens of eligible calls (ok, and >= 1024 input tokens or
-- using the cache). Summed into the cache rollup so the caching page reads whole hours from it.
-- As in 0042: columns added, the view re-created with them, and the months rolled up before get
-- rows carrying only the new measures (readers merge partial rows).
-- The expressions must stay equal to `cache_ratio.hit_tokens` / `base_tokens` (a test checks).
ALTER TABLE calls_cache_hourly
    ADD COLUMN IF NOT EXISTS cache_hit_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS cache_base_tokens SimpleAggregateFunction(sum, UInt64);

DROP VIEW IF EXISTS calls_cache_hourly_mv;

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
        + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens = 0)) AS uncached_input_4096,
    sum(toUInt64(multiIf(calls.provider IN ('anthropic', 'aws'), calls.cache_read_tokens, calls.provider IN ('openai', 'azure', 'google', 'deepseek', 'x-ai') AND calls.status = 'ok' AND (calls.input_tokens >= 1024 OR calls.cache_read_tokens + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens > 0), calls.cache_read_tokens, 0))) AS cache_hit_tokens,
    sum(toUInt64(multiIf(calls.provider IN ('anthropic', 'aws'), calls.cache_read_tokens + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens, calls.provider IN ('openai', 'azure', 'google', 'deepseek', 'x-ai') AND calls.status = 'ok' AND (calls.input_tokens >= 1024 OR calls.cache_read_tokens + calls.cache_write_5m_tokens + calls.cache_write_1h_tokens > 0), calls.input_tokens, 0))) AS cache_base_tokens
FROM calls
GROUP BY project, hour, route, model, provider, is_batch, service_tier;

INSERT INTO calls_cache_hourly (project, hour, route, model, provider, is_batch, service_tier,
                                cache_hit_tokens, cache_base_tokens)
SELECT
    project, toStartOfHour(ts) AS hour, route, model, provider, is_batch, service_tier,
    sum(toUInt64(multiIf(provider IN ('anthropic', 'aws'), cache_read_tokens, provider IN ('openai', 'azure', 'google', 'deepseek', 'x-ai') AND status = 'ok' AND (input_tokens >= 1024 OR cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens > 0), cache_read_tokens, 0))),
    sum(toUInt64(multiIf(provider IN ('anthropic', 'aws'), cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens, provider IN ('openai', 'azure', 'google', 'deepseek', 'x-ai') AND status = 'ok' AND (input_tokens >= 1024 OR cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens > 0), input_tokens, 0)))
FROM calls
GROUP BY project, hour, route, model, provider, is_batch, service_tier;
