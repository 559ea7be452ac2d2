-- Signal 2, per project / route / 5 minutes: ok calls and their input tokens.
SELECT
    project, route,
    any(team) AS team,
    toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC') AS bucket,
    count() AS ok_calls,
    sum(input_tokens) AS input_tokens
FROM calls
WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')} AND status = 'ok'
GROUP BY project, route, bucket
