-- Signal 3 baseline, per project / tool / hour from the rollups: runs and the LLM cost of calls
-- carrying the tool's name.
SELECT project, tool_name, hour, sum(runs) AS runs, sum(llm_cost_usd) AS llm_cost_usd
FROM
(
    SELECT project, tool_name, toDateTime64(tool_runs_hourly.hour, 3, 'UTC') AS hour, sum(runs) AS runs,
        toDecimal128(0, 18) AS llm_cost_usd
    FROM tool_runs_hourly
    WHERE __SCOPE__ AND tool_runs_hourly.hour >= {lo:DateTime('UTC')} AND tool_runs_hourly.hour < {hi:DateTime('UTC')}
    GROUP BY project, tool_name, hour

    UNION ALL

    SELECT project, tool_name, toDateTime64(calls_hourly.hour, 3, 'UTC') AS hour, toUInt64(0) AS runs,
        sum(cost_usd) AS llm_cost_usd
    FROM calls_hourly
    WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
        AND tool_name != ''
    GROUP BY project, tool_name, hour
)
GROUP BY project, tool_name, hour
