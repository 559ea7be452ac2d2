-- Spend spike warm-up: the first hour each candidate user, route and feature had any call (rollups).
SELECT project, 'user_id' AS dimension, user_id AS key, toDateTime64(min(calls_user_hourly.hour), 3, 'UTC') AS first_hour
FROM calls_user_hourly
WHERE __SCOPE__ AND user_id IN {users:Array(String)}
GROUP BY project, key

UNION ALL

SELECT project, 'route' AS dimension, route AS key, toDateTime64(min(calls_hourly.hour), 3, 'UTC') AS first_hour
FROM calls_hourly
WHERE __SCOPE__ AND route IN {routes:Array(String)}
GROUP BY project, key

UNION ALL

SELECT project, 'feature' AS dimension, feature AS key, toDateTime64(min(calls_hourly.hour), 3, 'UTC') AS first_hour
FROM calls_hourly
WHERE __SCOPE__ AND feature IN {features:Array(String)}
GROUP BY project, key
