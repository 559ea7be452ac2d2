-- Budgets: cost per project / team / hour from the rollup.
SELECT project, team, toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour, sum(cost_usd) AS cost_usd
FROM calls_hourly
WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
GROUP BY project, team, hour
