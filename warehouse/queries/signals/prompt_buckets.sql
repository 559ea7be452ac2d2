-- Signal 2, per project / route / 5 minutes: ok calls, their input tokens and the sum of squares
-- (the spread of input per call, for a confidence bound on its mean).
SELECT
    project, route,
    any(team) AS team,
    toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC') AS bucket,
    count() AS ok_calls,
    sum(input_tokens) AS input_tokens,
    sum(toFloat64(calls.input_tokens) * toFloat64(calls.input_tokens)) AS input_squares
FROM calls
WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')} AND status = 'ok'
GROUP BY project, route, bucket
