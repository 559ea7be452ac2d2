-- Price calls: every row of the source relation (one with the columns of `calls`) with its cost
-- columns recomputed from the `prices` table. Used by ingest (source = the staging batch) and by
-- reprice (source = stored calls of a partition), so both price identically.
--
-- The join finds the one price cell for the call's provider, model and context (batch, service
-- tier) whose validity interval, time-of-day window and input-token tier contain the call.
-- Token decomposition follows genai-prices: a token class without its own rate is charged at
-- its parent's rate (cache reads without a cache-read price are charged as input, and so on).
-- Costs are Decimal(38, 18) USD; nothing here is floating point.
SELECT * EXCEPT (
        r_in, r_cr, r_cw, r_cw5, r_cw1h, r_out, r_rs, r_ws, r_req,
        l_in, l_cr, l_cw, l_cw5, l_cw1h, l_out, l_rs, l_ws, l_req,
        n_in, n_cr, n_cw, n_cw5, n_cw1h, n_out, n_rs,
        m_in, m_cr, m_cw, m_cw5, m_cw1h, m_out, m_rs,
        matched_source, applied_cost, list_cost)
    REPLACE (
        n_in * ifNull(r_in, 0) AS input_cost_usd,
        n_cr * ifNull(r_cr, 0) AS cache_read_cost_usd,
        n_cw * ifNull(r_cw, 0) + n_cw5 * ifNull(r_cw5, 0) + n_cw1h * ifNull(r_cw1h, 0) AS cache_write_cost_usd,
        n_out * ifNull(r_out, 0) + n_rs * ifNull(r_rs, 0) AS output_cost_usd,
        toDecimal128(web_searches, 0) * ifNull(r_ws, 0) + if(matched_source = '', 0, ifNull(r_req, 0)) AS tool_cost_usd,
        applied_cost AS cost_usd,
        if(is_batch, list_cost - applied_cost, toDecimal128(0, 18)) AS batch_discount_usd,
        if(matched_source = '', 'unpriced', matched_source) AS price_source,
        matched_source = '' AS unpriced)
FROM
(
    SELECT
        *,
        n_in * ifNull(r_in, 0) + n_cr * ifNull(r_cr, 0)
            + n_cw * ifNull(r_cw, 0) + n_cw5 * ifNull(r_cw5, 0) + n_cw1h * ifNull(r_cw1h, 0)
            + n_out * ifNull(r_out, 0) + n_rs * ifNull(r_rs, 0)
            + toDecimal128(web_searches, 0) * ifNull(r_ws, 0)
            + if(matched_source = '', 0, ifNull(r_req, 0)) AS applied_cost,
        m_in * ifNull(l_in, 0) + m_cr * ifNull(l_cr, 0)
            + m_cw * ifNull(l_cw, 0) + m_cw5 * ifNull(l_cw5, 0) + m_cw1h * ifNull(l_cw1h, 0)
            + m_out * ifNull(l_out, 0) + m_rs * ifNull(l_rs, 0)
            + toDecimal128(web_searches, 0) * ifNull(l_ws, 0)
            + if(matched_source = '', 0, ifNull(l_req, 0)) AS list_cost
    FROM
    (
        SELECT
            *,
            -- token counts charged at each applied rate (n_*) and at each list rate (m_*)
            toDecimal128(if(isNotNull(r_cw1h), cache_write_1h_tokens, 0), 0) AS n_cw1h,
            toDecimal128(if(isNotNull(r_cw5), cache_write_5m_tokens, 0), 0) AS n_cw5,
            toDecimal128(if(isNotNull(r_cw),
                toInt64(cache_write_5m_tokens) + cache_write_1h_tokens - n_cw1h - n_cw5, 0), 0) AS n_cw,
            toDecimal128(if(isNotNull(r_cr), cache_read_tokens, 0), 0) AS n_cr,
            toDecimal128(toInt64(input_tokens), 0) - n_cr - n_cw - n_cw1h - n_cw5 AS n_in,
            toDecimal128(if(isNotNull(r_rs), reasoning_tokens, 0), 0) AS n_rs,
            toDecimal128(toInt64(output_tokens), 0) - n_rs AS n_out,
            toDecimal128(if(isNotNull(l_cw1h), cache_write_1h_tokens, 0), 0) AS m_cw1h,
            toDecimal128(if(isNotNull(l_cw5), cache_write_5m_tokens, 0), 0) AS m_cw5,
            toDecimal128(if(isNotNull(l_cw),
                toInt64(cache_write_5m_tokens) + cache_write_1h_tokens - m_cw1h - m_cw5, 0), 0) AS m_cw,
            toDecimal128(if(isNotNull(l_cr), cache_read_tokens, 0), 0) AS m_cr,
            toDecimal128(toInt64(input_tokens), 0) - m_cr - m_cw - m_cw1h - m_cw5 AS m_in,
            toDecimal128(if(isNotNull(l_rs), reasoning_tokens, 0), 0) AS m_rs,
            toDecimal128(toInt64(output_tokens), 0) - m_rs AS m_out
        FROM
        (
            SELECT
                c.*,
                p.rate_input AS r_in, p.rate_cache_read AS r_cr, p.rate_cache_write AS r_cw,
                p.rate_cache_write_5m AS r_cw5, p.rate_cache_write_1h AS r_cw1h, p.rate_output AS r_out,
                p.rate_output_reasoning AS r_rs, p.rate_web_search AS r_ws, p.rate_request AS r_req,
                p.list_input AS l_in, p.list_cache_read AS l_cr, p.list_cache_write AS l_cw,
                p.list_cache_write_5m AS l_cw5, p.list_cache_write_1h AS l_cw1h, p.list_output AS l_out,
                p.list_output_reasoning AS l_rs, p.list_web_search AS l_ws, p.list_request AS l_req,
                p.price_source AS matched_source
            FROM __SOURCE__ AS c
            LEFT JOIN prices AS p
                ON p.provider = c.provider
                AND p.model = c.model
                AND p.context = multiIf(
                    c.is_batch, 'processing=batch',
                    c.service_tier IN ('default', 'flex', 'priority', 'fast'), concat('service_tier=', c.service_tier),
                    '')
                AND c.ts >= p.valid_from AND c.ts < p.valid_to
                AND toUInt32(toUnixTimestamp64Milli(c.ts) % 86400000) >= p.tod_from_ms
                AND toUInt32(toUnixTimestamp64Milli(c.ts) % 86400000) < p.tod_to_ms
                AND toInt64(c.input_tokens) > p.input_above
                AND toInt64(c.input_tokens) <= p.input_upto
        )
    )
)
