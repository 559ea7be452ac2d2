-- Five-minute rollup of the GPU samples per project, node and GPU (MIG instances together, as the
-- nodes page shows them): samples, the sums and non-null counts of each gauge the page averages,
-- the highest temperature, the exporter fields utilisation came from and the GPU model. The nodes
-- page's GPU chart (`warehouse.queries.nodes.gpu_utilisation`) reads whole five-minute buckets here
-- when its step is a multiple of five minutes, and raw samples only for the partial buckets at the
-- edges of a range: a month is ~8,600 rows per GPU instead of one per scrape. Means are sums over
-- counts (as avg() computes them, up to float rounding); rebuilt with the other rollups
-- (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS gpu_samples_5m
(
    project LowCardinality(String),
    bucket DateTime('UTC'),
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
PARTITION BY toYYYYMM(bucket)
ORDER BY (project, bucket, node, gpu);

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_samples_5m_mv TO gpu_samples_5m AS
SELECT
    gpu_samples.project AS project,
    toStartOfFiveMinutes(gpu_samples.ts) AS bucket,
    gpu_samples.node AS node,
    gpu_samples.gpu AS gpu,
    any(gpu_samples.gpu_model) AS gpu_model,
    toUInt64(count()) AS samples,
    sum(ifNull(gpu_samples.util_pct, 0)) AS util_pct_sum,
    toUInt64(count(gpu_samples.util_pct)) AS util_pct_n,
    groupUniqArrayIf(toString(gpu_samples.util_source), gpu_samples.util_source != '') AS util_sources,
    sum(ifNull(gpu_samples.sm_active, 0)) AS sm_active_sum,
    toUInt64(count(gpu_samples.sm_active)) AS sm_active_n,
    sum(ifNull(gpu_samples.tensor_active, 0)) AS tensor_active_sum,
    toUInt64(count(gpu_samples.tensor_active)) AS tensor_active_n,
    sum(ifNull(gpu_samples.fb_used_mib, 0)) AS fb_used_mib_sum,
    toUInt64(count(gpu_samples.fb_used_mib)) AS fb_used_mib_n,
    sum(ifNull(gpu_samples.fb_free_mib, 0)) AS fb_free_mib_sum,
    toUInt64(count(gpu_samples.fb_free_mib)) AS fb_free_mib_n,
    sum(ifNull(gpu_samples.fb_used_mib / nullIf(gpu_samples.fb_total_mib, 0), 0)) AS fb_used_share_sum,
    toUInt64(count(gpu_samples.fb_used_mib / nullIf(gpu_samples.fb_total_mib, 0))) AS fb_used_share_n,
    sum(ifNull(gpu_samples.power_w, 0)) AS power_w_sum,
    toUInt64(count(gpu_samples.power_w)) AS power_w_n,
    max(gpu_samples.temp_c) AS temp_c_max
FROM gpu_samples
GROUP BY project, bucket, node, gpu;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO gpu_samples_5m
SELECT
    gpu_samples.project AS project,
    toStartOfFiveMinutes(gpu_samples.ts) AS bucket,
    gpu_samples.node AS node,
    gpu_samples.gpu AS gpu,
    any(gpu_samples.gpu_model) AS gpu_model,
    toUInt64(count()) AS samples,
    sum(ifNull(gpu_samples.util_pct, 0)) AS util_pct_sum,
    toUInt64(count(gpu_samples.util_pct)) AS util_pct_n,
    groupUniqArrayIf(toString(gpu_samples.util_source), gpu_samples.util_source != '') AS util_sources,
    sum(ifNull(gpu_samples.sm_active, 0)) AS sm_active_sum,
    toUInt64(count(gpu_samples.sm_active)) AS sm_active_n,
    sum(ifNull(gpu_samples.tensor_active, 0)) AS tensor_active_sum,
    toUInt64(count(gpu_samples.tensor_active)) AS tensor_active_n,
    sum(ifNull(gpu_samples.fb_used_mib, 0)) AS fb_used_mib_sum,
    toUInt64(count(gpu_samples.fb_used_mib)) AS fb_used_mib_n,
    sum(ifNull(gpu_samples.fb_free_mib, 0)) AS fb_free_mib_sum,
    toUInt64(count(gpu_samples.fb_free_mib)) AS fb_free_mib_n,
    sum(ifNull(gpu_samples.fb_used_mib / nullIf(gpu_samples.fb_total_mib, 0), 0)) AS fb_used_share_sum,
    toUInt64(count(gpu_samples.fb_used_mib / nullIf(gpu_samples.fb_total_mib, 0))) AS fb_used_share_n,
    sum(ifNull(gpu_samples.power_w, 0)) AS power_w_sum,
    toUInt64(count(gpu_samples.power_w)) AS power_w_n,
    max(gpu_samples.temp_c) AS temp_c_max
FROM gpu_samples
WHERE gpu_samples._partition_id NOT IN (SELECT DISTINCT _partition_id FROM gpu_samples_5m)
GROUP BY project, bucket, node, gpu;
