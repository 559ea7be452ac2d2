-- Which exporter field a GPU sample's utilisation came from: DCGM's DCGM_FI_PROF_GR_ENGINE_ACTIVE
-- (ratio, stored ×100) when the exporter has it, else DCGM_FI_DEV_GPU_UTIL (some H100/H200 set-ups
-- export no profiling fields), or nvidia-smi's utilization.gpu. Samples written before have ''.
ALTER TABLE gpu_samples ADD COLUMN IF NOT EXISTS util_source LowCardinality(String) DEFAULT '' AFTER util_pct;
