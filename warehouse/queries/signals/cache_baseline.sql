-- Signals 1 and 1b baseline: each route / model / provider's own normal over the `baseline_days`
-- days before each UTC day given, from the rollups: cache read, write and input tokens (hit ratio),
-- and the ok calls long enough to cache at 1024, 2048 and 4096 input tokens with those that neither
-- read nor wrote the cache (the share not applied); and the hit ratio's hit and base tokens
-- (`warehouse/queries/cache_ratio.py`: the product's one definition).
SELECT
    h.project AS project, h.route AS route, h.model AS model, h.provider AS provider, h.day AS day,
    h.read_tokens AS base_read_tokens, h.write_tokens AS base_write_tokens, h.input_tokens AS base_input_tokens,
    c.eligible_1024 AS base_eligible_1024, c.uncached_1024 AS base_uncached_1024,
    c.eligible_2048 AS base_eligible_2048, c.uncached_2048 AS base_uncached_2048,
    c.eligible_4096 AS base_eligible_4096, c.uncached_4096 AS base_uncached_4096,
    c.hit_tokens AS base_hit_tokens, c.base_tokens AS base_base_tokens
FROM
(
    SELECT project, route, model, provider, toDateTime64(day, 3, 'UTC') AS day,
        sum(cache_read_tokens) AS read_tokens, sum(cache_write_tokens) AS write_tokens,
        sum(ok_input_tokens) AS input_tokens
    FROM calls_hourly
    ARRAY JOIN {days:Array(DateTime('UTC'))} AS day
    WHERE __SCOPE__ AND calls_hourly.hour >= {lo:DateTime('UTC')} AND calls_hourly.hour < {hi:DateTime('UTC')}
        AND calls_hourly.hour >= day - toIntervalDay({baseline_days:UInt16}) AND calls_hourly.hour < day
    GROUP BY project, route, model, provider, day
) AS h
LEFT JOIN
(
    SELECT project, route, model, provider, toDateTime64(day, 3, 'UTC') AS day,
        sum(eligible_1024) AS eligible_1024, sum(uncached_1024) AS uncached_1024,
        sum(eligible_2048) AS eligible_2048, sum(uncached_2048) AS uncached_2048,
        sum(eligible_4096) AS eligible_4096, sum(uncached_4096) AS uncached_4096,
        sum(cache_hit_tokens) AS hit_tokens, sum(cache_base_tokens) AS base_tokens
    FROM calls_cache_hourly
    ARRAY JOIN {days:Array(DateTime('UTC'))} AS day
    WHERE __SCOPE__ AND calls_cache_hourly.hour >= {lo:DateTime('UTC')} AND calls_cache_hourly.hour < {hi:DateTime('UTC')}
        AND calls_cache_hourly.hour >= day - toIntervalDay({baseline_days:UInt16}) AND calls_cache_hourly.hour < day
    GROUP BY project, route, model, provider, day
) AS c
ON h.project = c.project AND h.route = c.route AND h.model = c.model AND h.provider = c.provider AND h.day = c.day
