-- Hourly tier of `gpu_samples_5m` (migration 0087): the same sums, counts, maximum and util sources
-- per project, node, GPU and UTC hour, merged from its five-minute buckets by a view on it (the
-- pattern of the daily tiers of the call rollups). The nodes page's GPU chart over a month steps by
-- hours (30 days ÷ 360 points = 3 h): it reads whole hours here, the other whole five-minute buckets
-- from `gpu_samples_5m` and raw samples only in the partial buckets at the edges — ~720 rows per GPU
-- for a month instead of ~8,600. Rebuilt after `gpu_samples_5m` (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS gpu_samples_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    node LowCardinality(String),
    gpu UInt16,

    gpu_model SimpleAggregateFunction(any, LowCardinality(String)),
    samples SimpleAggregateFunction(sum, UInt64),
    util_pct_sum SimpleAggregateFunction(sum, Float64),
    util_pct_n SimpleAggregateFunction(sum, UInt64),
    util_sources SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    sm_active_sum SimpleAggregateFunction(sum, Float64),
    sm_active_n SimpleAggregateFunction(sum, UInt64),
    tensor_active_sum SimpleAggregateFunction(sum, Float64),
    tensor_active_n SimpleAggregateFunction(sum, UInt64),
    fb_used_mib_sum SimpleAggregateFunction(sum, Float64),
    fb_used_mib_n SimpleAggregateFunction(sum, UInt64),
    fb_free_mib_sum SimpleAggregateFunction(sum, Float64),
    fb_free_mib_n SimpleAggregateFunction(sum, UInt64),
    fb_used_share_sum SimpleAggregateFunction(sum, Float64),
    fb_used_share_n SimpleAggregateFunction(sum, UInt64),
    power_w_sum SimpleAggregateFunction(sum, Float64),
    power_w_n SimpleAggregateFunction(sum, UInt64),
    temp_c_max SimpleAggregateFunction(max, Nullable(Float64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, node, gpu);

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_samples_hourly_mv TO gpu_samples_hourly AS
SELECT
    gpu_samples_5m.project AS project,
    toStartOfHour(gpu_samples_5m.bucket) AS hour,
    gpu_samples_5m.node AS node,
    gpu_samples_5m.gpu AS gpu,
    any(gpu_samples_5m.gpu_model) AS gpu_model,
    sum(gpu_samples_5m.samples) AS samples,
    sum(gpu_samples_5m.util_pct_sum) AS util_pct_sum,
    sum(gpu_samples_5m.util_pct_n) AS util_pct_n,
    groupUniqArrayArray(gpu_samples_5m.util_sources) AS util_sources,
    sum(gpu_samples_5m.sm_active_sum) AS sm_active_sum,
    sum(gpu_samples_5m.sm_active_n) AS sm_active_n,
    sum(gpu_samples_5m.tensor_active_sum) AS tensor_active_sum,
    sum(gpu_samples_5m.tensor_active_n) AS tensor_active_n,
    sum(gpu_samples_5m.fb_used_mib_sum) AS fb_used_mib_sum,
    sum(gpu_samples_5m.fb_used_mib_n) AS fb_used_mib_n,
    sum(gpu_samples_5m.fb_free_mib_sum) AS fb_free_mib_sum,
    sum(gpu_samples_5m.fb_free_mib_n) AS fb_free_mib_n,
    sum(gpu_samples_5m.fb_used_share_sum) AS fb_used_share_sum,
    sum(gpu_samples_5m.fb_used_share_n) AS fb_used_share_n,
    sum(gpu_samples_5m.power_w_sum) AS power_w_sum,
    sum(gpu_samples_5m.power_w_n) AS power_w_n,
    max(gpu_samples_5m.temp_c_max) AS temp_c_max
FROM gpu_samples_5m
GROUP BY project, hour, node, gpu;

-- Back-fill the months rolled up before this migration (those without hourly rows yet).
INSERT INTO gpu_samples_hourly
SELECT
    gpu_samples_5m.project AS project,
    toStartOfHour(gpu_samples_5m.bucket) AS hour,
    gpu_samples_5m.node AS node,
    gpu_samples_5m.gpu AS gpu,
    any(gpu_samples_5m.gpu_model) AS gpu_model,
    sum(gpu_samples_5m.samples) AS samples,
    sum(gpu_samples_5m.util_pct_sum) AS util_pct_sum,
    sum(gpu_samples_5m.util_pct_n) AS util_pct_n,
    groupUniqArrayArray(gpu_samples_5m.util_sources) AS util_sources,
    sum(gpu_samples_5m.sm_active_sum) AS sm_active_sum,
    sum(gpu_samples_5m.sm_active_n) AS sm_active_n,
    sum(gpu_samples_5m.tensor_active_sum) AS tensor_active_sum,
    sum(gpu_samples_5m.tensor_active_n) AS tensor_active_n,
    sum(gpu_samples_5m.fb_used_mib_sum) AS fb_used_mib_sum,
    sum(gpu_samples_5m.fb_used_mib_n) AS fb_used_mib_n,
    sum(gpu_samples_5m.fb_free_mib_sum) AS fb_free_mib_sum,
    sum(gpu_samples_5m.fb_free_mib_n) AS fb_free_mib_n,
    sum(gpu_samples_5m.fb_used_share_sum) AS fb_used_share_sum,
    sum(gpu_samples_5m.fb_used_share_n) AS fb_used_share_n,
    sum(gpu_samples_5m.power_w_sum) AS power_w_sum,
    sum(gpu_samples_5m.power_w_n) AS power_w_n,
    max(gpu_samples_5m.temp_c_max) AS temp_c_max
FROM gpu_samples_5m
WHERE gpu_samples_5m._partition_id NOT IN (SELECT DISTINCT _partition_id FROM gpu_samples_hourly)
GROUP BY project, hour, node, gpu;
