"""NVIDIA DCGM exporter `/metrics` scrapes → one GPU sample row per GPU (or MIG instance).

Label spellings differ by release: `Hostname` (released versions) and `hostname` (repo HEAD) are
both read. DCGM reports "no value" as blank sentinels (int32 ≥ 0x7ffffff0, int64 ≥
0x7ffffffffffffff0, fp64 ≥ 2^47) and as NaN; those become NULL, never numbers. Units follow the
exporter: percent for *_UTIL, ratio 0–1 for PROF metrics, MiB, W, °C, MHz, mJ.

`util_pct` is the GPU's utilisation in percent: `DCGM_FI_PROF_GR_ENGINE_ACTIVE` × 100 (the graphics
engine's active ratio, the finer measure) where the exporter has it, else `DCGM_FI_DEV_GPU_UTIL`
(H100/H200 set-ups may export no profiling fields, NVIDIA/DCGM#226); `util_source` names the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import DcgmConfig, ScrapeTarget
from collectors.prometheus import Clock, samples, scrape_targets, target_node, utc_now

FIELDS = {
    "DCGM_FI_DEV_GPU_UTIL": "util_pct",
    "DCGM_FI_PROF_SM_ACTIVE": "sm_active",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gr_engine_active",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "tensor_active",
    "DCGM_FI_PROF_DRAM_ACTIVE": "dram_active",
    "DCGM_FI_DEV_MEM_COPY_UTIL": "mem_copy_util_pct",
    "DCGM_FI_DEV_FB_USED": "fb_used_mib",
    "DCGM_FI_DEV_FB_FREE": "fb_free_mib",
    "DCGM_FI_DEV_FB_RESERVED": "fb_reserved_mib",
    "DCGM_FI_DEV_FB_TOTAL": "fb_total_mib",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": "power_limit_w",
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
    "DCGM_FI_DEV_MEMORY_TEMP": "mem_temp_c",
    "DCGM_FI_DEV_SM_CLOCK": "sm_clock_mhz",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "energy_mj",
}
COLUMNS = sorted(set(FIELDS.values()))
UTIL_FROM_ENGINE, UTIL_FROM_DEVICE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL"
_LABELS = ("gpu", "UUID", "modelName", "Hostname", "hostname", "GPU_I_ID", "pod", "namespace")
INT32_BLANK = 2147483632.0  # 0x7ffffff0: DCGM_INT32_BLANK and above are "no value"
FP64_BLANK = 140737488355328.0  # 2^47: DCGM_FP64_BLANK (int64 blanks are larger still)
_WIDE_COUNTERS = {"energy_mj"}  # int64 fields that may legitimately exceed the int32 sentinel


def parse_dcgm(text: str, *, node: str | None, ts: datetime, project: str = "default") -> pl.DataFrame:
    """gpu_samples rows of one DCGM exporter scrape; `node` overrides the hostname label."""
    long = samples(text, _LABELS, keep=lambda family: family in FIELDS)
    # prometheus_client appends _total to the samples of a counter family (DCGM's energy counter)
    long = long.with_columns(pl.col("name").str.strip_suffix("_total"))
    mapping = pl.DataFrame({"name": list(FIELDS), "column": list(FIELDS.values())})
    long = long.join(mapping, on="name").with_columns(
        pl.coalesce("Hostname", "hostname").fill_null("").alias("host"),
        pl.col("GPU_I_ID").fill_null("").alias("gpu_instance"),
        pl.col("UUID").fill_null(""), pl.col("modelName").fill_null(""),
        pl.col("pod").fill_null(""), pl.col("namespace").fill_null(""),
    )
    limit = pl.when(pl.col("column").is_in(list(_WIDE_COUNTERS))).then(FP64_BLANK).otherwise(INT32_BLANK)
    long = long.with_columns(
        pl.when(pl.col("value").is_nan() | (pl.col("value") >= limit)).then(None).otherwise(pl.col("value")).alias("value"))
    keys = ["gpu", "gpu_instance", "UUID", "modelName", "host", "pod", "namespace"]
    if long.height == 0:
        wide = pl.DataFrame(schema={k: pl.String for k in keys})
    else:
        wide = long.group_by(*keys, "column").agg(pl.col("value").first()).pivot(
            on="column", index=keys, values="value")
    wide = wide.with_columns(*(pl.lit(None, dtype=pl.Float64).alias(c) for c in COLUMNS if c not in wide.columns))
    engine = pl.col("gr_engine_active").is_not_null()
    utilisation = pl.when(engine).then(pl.col("gr_engine_active") * 100).otherwise(pl.col("util_pct"))
    source = (pl.when(engine).then(pl.lit(UTIL_FROM_ENGINE))
              .when(pl.col("util_pct").is_not_null()).then(pl.lit(UTIL_FROM_DEVICE)).otherwise(pl.lit("")))
    total = pl.coalesce("fb_total_mib", pl.col("fb_used_mib") + pl.col("fb_free_mib")
                        + pl.col("fb_reserved_mib").fill_null(0))
    return wide.select(
        pl.lit(project).alias("project"), pl.lit(ts).cast(pl.Datetime("ms", "UTC")).alias("ts"),
        (pl.lit(node) if node else pl.col("host")).alias("node"),
        pl.col("gpu").cast(pl.UInt16, strict=False).fill_null(0).alias("gpu"), "gpu_instance",
        pl.col("UUID").alias("gpu_uuid"), pl.col("modelName").alias("gpu_model"), pl.col("host").alias("hostname"),
        pl.lit("dcgm").alias("source"), utilisation.alias("util_pct"), source.alias("util_source"),
        *(c for c in COLUMNS if c not in {"fb_total_mib", "fb_reserved_mib", "util_pct"}),
        total.alias("fb_total_mib"), "pod", "namespace",
    )


class DcgmCollector:
    """Scrapes NVIDIA DCGM exporters."""

    name: ClassVar[str] = "dcgm"
    Config: ClassVar[type[DcgmConfig]] = DcgmConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.SCRAPE,
        outputs=frozenset({Output.GPU_SAMPLES}),
        incremental=False,
        backfill=False,
        summary="NVIDIA DCGM exporter /metrics: GPU utilisation, SM activity, framebuffer, power, temperature",
    )

    def __init__(self, config: DcgmConfig, *, clock: Clock = utc_now) -> None:
        self.config = config
        self.clock = clock

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """One scrape of every target."""

        def parse(text: str, target: ScrapeTarget, ts: datetime) -> list[Batch]:
            node = target.node
            frame = parse_dcgm(text, node=node, ts=ts, project=self.config.project)
            if not node:  # no configured name and no hostname label: the target's host:port
                frame = frame.with_columns(
                    pl.when(pl.col("node") == "").then(pl.lit(target_node(target))).otherwise(pl.col("node"))
                    .alias("node"))
            return [Batch(Output.GPU_SAMPLES, frame=frame)]

        yield from scrape_targets(self.config, "dcgm", self.clock, parse)
