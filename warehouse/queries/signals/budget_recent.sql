-- Budgets: cost per project / team / 5 minutes from raw calls (the hours the rollup has not closed).
SELECT project, team, toDateTime64(toStartOfFiveMinutes(ts), 3, 'UTC') AS bucket, sum(cost_usd) AS cost_usd
FROM calls
WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')}
GROUP BY project, team, bucket
