-- Spend spike baselines: hourly cost of the candidate users, routes and features at the given
-- hours, from the rollups (users from the per-user rollup).
SELECT project, 'user_id' AS dimension, user_id AS key, toDateTime64(calls_user_hourly.hour, 3, 'UTC') AS hour,
    sum(cost_usd) AS cost_usd
FROM calls_user_hourly
WHERE __SCOPE__ AND calls_user_hourly.hour IN {hours:Array(DateTime('UTC'))} AND user_id IN {users:Array(String)}
GROUP BY project, key, hour

UNION ALL

SELECT project, 'route' AS dimension, route AS key, toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour,
    sum(cost_usd) AS cost_usd
FROM calls_hourly
WHERE __SCOPE__ AND calls_hourly.hour IN {hours:Array(DateTime('UTC'))} AND route IN {routes:Array(String)}
GROUP BY project, key, hour

UNION ALL

SELECT project, 'feature' AS dimension, feature AS key, toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour,
    sum(cost_usd) AS cost_usd
FROM calls_hourly
WHERE __SCOPE__ AND calls_hourly.hour IN {hours:Array(DateTime('UTC'))} AND feature IN {features:Array(String)}
GROUP BY project, key, hour
