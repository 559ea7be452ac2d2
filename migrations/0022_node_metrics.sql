-- Self-hosted inference nodes. Gauges and counters are stored raw, one row per scrape; rates,
-- utilisation over time and histogram quantiles are derived at query time
-- (warehouse/queries/nodes.py), with counter resets handled there.
--
-- gpu_samples: one row per GPU (or MIG instance) per scrape, from the DCGM exporter or
-- nvidia-smi. Units in the names; NULL where the source had no value (DCGM blank sentinels,
-- nvidia-smi [N/A]).
CREATE TABLE IF NOT EXISTS gpu_samples
(
    project LowCardinality(String) DEFAULT 'default',
    ts DateTime64(3, 'UTC'),
    node LowCardinality(String),
    gpu UInt16,
    gpu_instance LowCardinality(String) DEFAULT '',
    gpu_uuid String DEFAULT '',
    gpu_model LowCardinality(String) DEFAULT '',
    hostname LowCardinality(String) DEFAULT '',
    source LowCardinality(String),
    util_pct Nullable(Float64),
    sm_active Nullable(Float64),
    gr_engine_active Nullable(Float64),
    tensor_active Nullable(Float64),
    dram_active Nullable(Float64),
    mem_copy_util_pct Nullable(Float64),
    fb_used_mib Nullable(Float64),
    fb_free_mib Nullable(Float64),
    fb_total_mib Nullable(Float64),
    power_w Nullable(Float64),
    power_limit_w Nullable(Float64),
    temp_c Nullable(Float64),
    mem_temp_c Nullable(Float64),
    sm_clock_mhz Nullable(Float64),
    energy_mj Nullable(Float64),
    pod String DEFAULT '',
    namespace LowCardinality(String) DEFAULT ''
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (project, node, gpu, gpu_instance, ts);

-- inference_samples: one row per (node, served model, engine) per vLLM scrape. Counters
-- (`*_total`) are cumulative since the server started and reset to 0 on restart.
CREATE TABLE IF NOT EXISTS inference_samples
(
    project LowCardinality(String) DEFAULT 'default',
    ts DateTime64(3, 'UTC'),
    node LowCardinality(String),
    model LowCardinality(String),
    engine LowCardinality(String) DEFAULT '',
    source LowCardinality(String),
    requests_running Nullable(Float64),
    requests_waiting Nullable(Float64),
    kv_cache_usage Nullable(Float64),
    prompt_tokens_total Nullable(Float64),
    generation_tokens_total Nullable(Float64),
    prefix_cache_queries_total Nullable(Float64),
    prefix_cache_hits_total Nullable(Float64),
    requests_finished_total Nullable(Float64),
    preemptions_total Nullable(Float64)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (project, node, model, engine, ts);

-- inference_histograms: cumulative histogram buckets per scrape (le = +inf is the count);
-- `sum` repeats the _sum of the series on each of its bucket rows.
CREATE TABLE IF NOT EXISTS inference_histograms
(
    project LowCardinality(String) DEFAULT 'default',
    ts DateTime64(3, 'UTC'),
    node LowCardinality(String),
    model LowCardinality(String),
    engine LowCardinality(String) DEFAULT '',
    metric LowCardinality(String),
    le Float64,
    count Float64,
    sum Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (project, node, model, metric, engine, le, ts);

-- $/GPU-hour per node and/or GPU model (empty = any), rebuilt from settings
-- (`collectors.gpu_prices`) on every collector run; the most specific match wins.
CREATE TABLE IF NOT EXISTS gpu_prices
(
    node String,
    gpu_model String,
    usd_per_gpu_hour Decimal(38, 18),
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (node, gpu_model);
