-- Signal 4: the calls whose reasoning tokens reach the outlier floor (rare by design).
SELECT
    ts, event_id, project, route, model, team, user_id, session_id,
    reasoning_tokens, output_tokens, latency_ms, status
FROM calls
WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')}
    AND reasoning_tokens >= {floor:UInt32}
ORDER BY ts
