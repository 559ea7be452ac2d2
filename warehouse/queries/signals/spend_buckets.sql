-- Spend spikes, per project and 5 minutes: cost by user, by route and by feature in one scan
-- (route rows also name the route's feature, so a feature spike that is one route's is not told twice).
SELECT
    project,
    multiIf(grouping(user_id) = 0, 'user_id', grouping(route) = 0, 'route', 'feature') AS dimension,
    multiIf(grouping(user_id) = 0, user_id, grouping(route) = 0, route, feature) AS key,
    any(team) AS team,
    if(grouping(route) = 0, any(feature), '') AS route_feature,
    bucket,
    sum(cost_usd) AS cost_usd,
    count() AS calls
FROM
(
    SELECT project, user_id, route, feature, team, cost_usd,
        toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC') AS bucket
    FROM calls
    WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')}
)
GROUP BY GROUPING SETS ((project, user_id, bucket), (project, route, bucket), (project, feature, bucket))
