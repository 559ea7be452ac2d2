-- The calls of one staging batch that are not stored yet, ready for pricing: tags decoded from
-- JSON, a missing event_id derived from a hash of the record's content (prefixed 'h:'), and
-- duplicates dropped — within the batch (LIMIT 1 BY) and against calls already stored in the
-- batch's time range (the anti-join that keeps reads free of FINAL). Idempotency is per project:
-- another tenant's call with the same event_id is a different call.
SELECT *
FROM
(
    SELECT * REPLACE (
        JSONExtract(ifNull(tags, ''), 'Map(String, String)') AS tags,
        if(event_id = '',
           concat('h:', lower(hex(sipHash128(
               project, toUnixTimestamp64Milli(ts), provider, model_raw, user_id, session_id, trace_id, span_id,
               route, feature, input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
               output_tokens, reasoning_tokens, ifNull(latency_ms, 0), ifNull(ttft_ms, 0), status)))),
           event_id) AS event_id)
    FROM __STAGE__
)
WHERE (project, event_id) NOT IN (
    SELECT project, event_id FROM calls WHERE ts >= {lo:DateTime64(3, 'UTC')} AND ts <= {hi:DateTime64(3, 'UTC')}
)
LIMIT 1 BY project, event_id
