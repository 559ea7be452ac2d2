-- Spend spikes: cost per project / user, route and feature and whole hour from the rollups (users
-- from the per-user rollup), for the given keys or — with `all` — every key. Calls without a
-- user / route / feature are no scope (reported under the project, never judged as '').
SELECT project, 'user_id' AS dimension, user_id AS key, toDateTime64(calls_user_hourly.hour, 3, 'UTC') AS hour,
    sum(cost_usd) AS cost_usd
FROM calls_user_hourly
WHERE __SCOPE__ AND calls_user_hourly.hour >= {lo:DateTime('UTC')} AND calls_user_hourly.hour < {hi:DateTime('UTC')}
    AND user_id != '' AND ({all:Bool} OR user_id IN {users:Array(String)})
GROUP BY project, key, hour

UNION ALL

SELECT project, 'route' AS dimension, route AS key, toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour,
    sum(cost_usd) AS cost_usd
FROM calls_hourly
WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
    AND route != '' AND ({all:Bool} OR route IN {routes:Array(String)})
GROUP BY project, key, hour

UNION ALL

SELECT project, 'feature' AS dimension, feature AS key, toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour,
    sum(cost_usd) AS cost_usd
FROM calls_hourly
WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
    AND feature != '' AND ({all:Bool} OR feature IN {features:Array(String)})
GROUP BY project, key, hour
