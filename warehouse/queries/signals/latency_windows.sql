-- Signal 7, per project / route / model / provider: for each step-long bucket end `at`, the
-- window of `window_s` seconds before it — ok calls, mean latency, p99 of latency and of TTFT (streamed
-- calls only: a TTFT SLO is about streaming), and
-- how many calls took at least each of the `levels` (ms; a p99 over a level is only believed when
-- enough calls exceed it) — merged from per-bucket states by a window function (one scan, any
-- number of instants).
SELECT
    project, route, model, provider, team,
    toDateTime64(bucket + {step_s:UInt32}, 3, 'UTC') AS at,
    sum(n) OVER w AS calls,
    sum(latency_sum) OVER w / calls AS latency_mean_ms,
    quantilesTDigestMerge(0.99)(latency_digest) OVER w AS latency_q,
    sum(ttft_n) OVER w AS ttft_calls,
    quantilesTDigestMerge(0.99)(ttft_digest) OVER w AS ttft_q,
    sumForEach(over_n) OVER w AS over_levels
FROM
(
    SELECT
        project, route, model, provider,
        any(team) AS team,
        toStartOfInterval(ts, toIntervalSecond({step_s:UInt32})) AS bucket,
        count() AS n,
        sum(assumeNotNull(latency_ms)) AS latency_sum,
        quantilesTDigestState(0.99)(assumeNotNull(latency_ms)) AS latency_digest,
        countIf(ttft_ms IS NOT NULL AND stream) AS ttft_n,
        quantilesTDigestStateIf(0.99)(assumeNotNull(ttft_ms), ttft_ms IS NOT NULL AND stream) AS ttft_digest,
        sumForEach(arrayMap(l -> toUInt64(assumeNotNull(latency_ms) >= l), {levels:Array(UInt32)})) AS over_n
    FROM calls
    WHERE __SCOPE__ AND ts >= {lo:DateTime64(3, 'UTC')} AND ts < {hi:DateTime64(3, 'UTC')}
        AND status = 'ok' AND latency_ms IS NOT NULL
    GROUP BY project, route, model, provider, bucket
)
WINDOW w AS (PARTITION BY project, route, model, provider ORDER BY toUInt32(bucket)
             RANGE BETWEEN {back_s:UInt32} PRECEDING AND CURRENT ROW)
