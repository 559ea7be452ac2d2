-- Signal 4 baseline: each route / model's p99 of reasoning tokens (calls that reason) over the
-- `days` days before each UTC day given, from the rollup's digests.
SELECT
    project, route, model,
    toDateTime64(day, 3, 'UTC') AS day,
    quantilesTDigestMerge(0.99)(reasoning_tokens_digest)[1] AS p99_tokens,
    sum(calls_hourly.reasoning_calls) AS reasoning_calls_n
FROM calls_hourly
ARRAY JOIN {days:Array(DateTime('UTC'))} AS day
WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
    AND calls_hourly.hour >= day - toIntervalDay({baseline_days:UInt16}) AND calls_hourly.hour < day
    AND calls_hourly.reasoning_calls > 0 AND route IN {routes:Array(String)}
GROUP BY project, route, model, day
