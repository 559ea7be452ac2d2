-- Signals 3 and 6, per project / tool / minute: tool runs and timeouts, and the LLM calls made
-- inside the tool (calls carrying its tool_name, or parented by one of its runs' spans) with
-- their cost. Runs and calls are aggregated apart and summed, so a minute may have either.
SELECT
    project, tool_name, bucket,
    sum(runs) AS runs,
    sum(timeouts) AS timeouts,
    sum(llm_calls) AS llm_calls,
    sum(llm_cost_usd) AS llm_cost_usd,
    anyIf(route, route != '') AS route
FROM
(
    SELECT
        project, tool_name,
        toDateTime64(toStartOfMinute(ts), 3, 'UTC') AS bucket,
        count() AS runs,
        countIf(status = 'timeout') AS timeouts,
        toUInt64(0) AS llm_calls,
        toDecimal128(0, 18) AS llm_cost_usd,
        any(route) AS route
    FROM tool_runs
    WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')}
    GROUP BY project, tool_name, bucket

    UNION ALL

    SELECT
        c.project AS project,
        if(c.tool_name != '', c.tool_name, s.tool_name) AS tool_name,
        toDateTime64(toStartOfMinute(c.ts), 3, 'UTC') AS bucket,
        toUInt64(0) AS runs,
        toUInt64(0) AS timeouts,
        count() AS llm_calls,
        sum(c.cost_usd) AS llm_cost_usd,
        '' AS route
    FROM calls AS c
    LEFT JOIN
    (
        SELECT span_id, any(tool_name) AS tool_name
        FROM tool_runs
        WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} - INTERVAL 1 HOUR AND ts < {hi:DateTime64(3, 'UTC')}
            AND span_id != ''
        GROUP BY span_id
    ) AS s ON c.parent_span_id = s.span_id
    WHERE __C_SCOPE__ AND c.ts >= {lo:DateTime64(3, 'UTC')} AND c.ts < {hi:DateTime64(3, 'UTC')}
        AND (c.tool_name != '' OR c.parent_span_id != '')
    GROUP BY project, tool_name, bucket
    HAVING tool_name != ''
)
GROUP BY project, tool_name, bucket
