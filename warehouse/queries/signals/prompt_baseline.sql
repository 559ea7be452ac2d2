-- Signal 2 baseline, per project / route / hour from the rollup: ok calls and their input tokens.
SELECT
    project, route,
    toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour,
    sum(ok_calls) AS ok_calls,
    sum(ok_input_tokens) AS input_tokens
FROM calls_hourly
WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
GROUP BY project, route, hour
