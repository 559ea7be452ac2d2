-- Signals 1 and 1b, per project / route / model / minute, ok calls only: cache read and write
-- tokens, calls with any cache tokens, and calls long enough to cache (the longest matching
-- `provider/model` prefix sets the minimum) split by whether they read or wrote the cache at all,
-- with their input and cache-read tokens; and the hit ratio's hit and base tokens per call as
-- `warehouse/queries/cache_ratio.py` defines them (read / (read + write) for providers reporting
-- writes, cached / input of eligible calls for automatic caching), with the calls that have a base.
SELECT
    project, route, model, provider,
    any(team) AS team,
    toDateTime64(toStartOfMinute(ts), 3, 'UTC') AS bucket,
    sum(cache_read_tokens) AS read_tokens,
    sum(cache_write_5m_tokens + cache_write_1h_tokens) AS write_tokens,
    countIf(cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens > 0) AS cached_calls,
    countIf(eligible) AS eligible_calls,
    countIf(eligible AND cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens = 0) AS uncached_calls,
    sumIf(input_tokens, eligible) AS eligible_input_tokens,
    sumIf(cache_read_tokens, eligible) AS eligible_read_tokens,
    sum(hit) AS hit_tokens,
    sum(base) AS base_tokens,
    countIf(base > 0) AS ratio_calls
FROM
(
    SELECT
        project, route, model, provider, team, ts, input_tokens, cache_read_tokens, cache_write_5m_tokens,
        cache_write_1h_tokens,
        __HIT_TOKENS__ AS hit,
        __BASE_TOKENS__ AS base,
        arrayFirstIndex(p -> startsWith(concat(provider, '/', model), p), {prefixes:Array(String)}) AS rule_index,
        rule_index > 0 AND input_tokens >= arrayElement({min_tokens:Array(UInt32)}, greatest(rule_index, 1)) AS eligible
    FROM calls
    WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')} AND status = 'ok'
)
GROUP BY project, route, model, provider, bucket
HAVING cached_calls > 0 OR eligible_calls > 0 OR ratio_calls > 0
