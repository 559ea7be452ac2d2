-- Signal 5, per project / routing policy / 5 minutes: first-step calls and escalations (step 1).
SELECT
    project, routing_policy,
    any(route) AS route,
    any(team) AS team,
    toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC') AS bucket,
    countIf(cascade_step = 0) AS step0_calls,
    countIf(cascade_step = 1) AS step1_calls
FROM calls
WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')} AND routing_policy != ''
GROUP BY project, routing_policy, bucket
