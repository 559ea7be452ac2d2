-- Effective prices, one row per (provider, model, context) and non-overlapping validity cell:
-- [valid_from, valid_to) in time, [tod_from_ms, tod_to_ms) in the UTC day (off-peak prices),
-- and (input_above, input_upto] in total input tokens (context-length tiers). Exactly one row
-- matches a priced call. Rates are USD per token (per use for web searches, per request for
-- request fees), overrides and discounts already applied; list_* are the standard-context rates
-- used to report the batch discount. Rebuilt whole by `llmledger prices load`.
CREATE TABLE IF NOT EXISTS prices
(
    provider LowCardinality(String),
    model String,
    context LowCardinality(String),
    valid_from DateTime64(3, 'UTC'),
    valid_to DateTime64(3, 'UTC'),
    tod_from_ms UInt32,
    tod_to_ms UInt32,
    input_above Int64,
    input_upto Int64,
    rate_input Nullable(Decimal(38, 18)),
    rate_cache_read Nullable(Decimal(38, 18)),
    rate_cache_write Nullable(Decimal(38, 18)),
    rate_cache_write_5m Nullable(Decimal(38, 18)),
    rate_cache_write_1h Nullable(Decimal(38, 18)),
    rate_output Nullable(Decimal(38, 18)),
    rate_output_reasoning Nullable(Decimal(38, 18)),
    rate_web_search Nullable(Decimal(38, 18)),
    rate_request Nullable(Decimal(38, 18)),
    list_input Nullable(Decimal(38, 18)),
    list_cache_read Nullable(Decimal(38, 18)),
    list_cache_write Nullable(Decimal(38, 18)),
    list_cache_write_5m Nullable(Decimal(38, 18)),
    list_cache_write_1h Nullable(Decimal(38, 18)),
    list_output Nullable(Decimal(38, 18)),
    list_output_reasoning Nullable(Decimal(38, 18)),
    list_web_search Nullable(Decimal(38, 18)),
    list_request Nullable(Decimal(38, 18)),
    price_source LowCardinality(String),
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (provider, model, context, valid_from, tod_from_ms, input_above);

-- One row per price load: catalogue version, row and model counts, and a checksum of the
-- effective table, so a changed price set is visible and reprice knows what it recomputed with.
CREATE TABLE IF NOT EXISTS price_loads
(
    loaded_at DateTime64(3, 'UTC'),
    catalogue_version String,
    catalogue_timestamp String,
    rows UInt64,
    models UInt64,
    overrides UInt64,
    checksum String
)
ENGINE = MergeTree
ORDER BY loaded_at;
