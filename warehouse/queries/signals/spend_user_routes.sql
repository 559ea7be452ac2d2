-- Spend spikes: the given users' cost per route and 5 minutes from raw calls (a user's spike that
-- is one breaching route's money is told once, by the route).
SELECT project, user_id AS key, route, toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC') AS bucket,
    sum(cost_usd) AS cost_usd
FROM calls
WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')}
    AND user_id IN {users:Array(String)}
GROUP BY project, key, route, bucket
