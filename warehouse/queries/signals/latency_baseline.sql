-- Signal 7 baseline: each route / model / provider's own normal over the `baseline_days` days
-- before each UTC day given, from the rollup's digests: ok calls, mean latency, p99 of latency
-- and of TTFT (TTFT only where calls were streamed).
SELECT
    project, route, model, provider,
    toDateTime64(day, 3, 'UTC') AS day,
    sum(latency_calls) AS base_calls,
    sum(latency_ms_sum) / greatest(sum(latency_calls), 1) AS base_latency_mean_ms,
    quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_digest)[4] AS base_latency_p99_ms,
    sum(ttft_calls) AS base_ttft_calls,
    quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(ttft_ms_digest)[4] AS base_ttft_p99_ms
FROM calls_hourly
ARRAY JOIN {days:Array(DateTime('UTC'))} AS day
WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
    AND calls_hourly.hour >= day - toIntervalDay({baseline_days:UInt16}) AND calls_hourly.hour < day
GROUP BY project, route, model, provider, day
