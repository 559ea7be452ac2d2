"""vLLM `/metrics` scrapes → inference samples (gauges, raw counters) and histogram buckets.

Old and new metric names are both accepted (formats.md §7): `gpu_cache_usage_perc` →
`kv_cache_usage_perc`, `gpu_prefix_cache_*` → `prefix_cache_*`, `time_per_output_token_seconds`
→ `inter_token_latency_seconds`; when a server exposes both, the new name wins. Counters are
stored raw (cumulative, reset on restart); rates and quantiles are derived in SQL. Bucket edges
are read from the `le` labels, never assumed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import ScrapeTarget, VllmConfig
from collectors.prometheus import Clock, samples, scrape_targets, target_node, utc_now

# sample name → (column, priority): priority 0 is the current name, 1 the deprecated one
GAUGES = {
    "vllm:num_requests_running": ("requests_running", 0),
    "vllm:num_requests_waiting": ("requests_waiting", 0),
    "vllm:kv_cache_usage_perc": ("kv_cache_usage", 0),
    "vllm:gpu_cache_usage_perc": ("kv_cache_usage", 1),
}
COUNTERS = {
    "vllm:prompt_tokens_total": ("prompt_tokens_total", 0),
    "vllm:generation_tokens_total": ("generation_tokens_total", 0),
    "vllm:prefix_cache_queries_total": ("prefix_cache_queries_total", 0),
    "vllm:gpu_prefix_cache_queries_total": ("prefix_cache_queries_total", 1),
    "vllm:prefix_cache_hits_total": ("prefix_cache_hits_total", 0),
    "vllm:gpu_prefix_cache_hits_total": ("prefix_cache_hits_total", 1),
    "vllm:request_success_total": ("requests_finished_total", 0),  # summed over finished_reason
    "vllm:num_preemptions_total": ("preemptions_total", 0),
}
HISTOGRAMS = {
    "vllm:time_to_first_token_seconds": ("ttft_s", 0),
    "vllm:inter_token_latency_seconds": ("itl_s", 0),
    "vllm:time_per_output_token_seconds": ("itl_s", 1),
    "vllm:e2e_request_latency_seconds": ("e2e_s", 0),
    "vllm:request_queue_time_seconds": ("queue_s", 0),
    "vllm:request_prefill_time_seconds": ("prefill_s", 0),
    "vllm:request_decode_time_seconds": ("decode_s", 0),
}
SAMPLE_COLUMNS = sorted({c for c, _ in (*GAUGES.values(), *COUNTERS.values())})
_FAMILIES = {n.removesuffix("_total") for n in (*GAUGES, *COUNTERS)} | set(HISTOGRAMS)
_SUFFIX = r"_(total|bucket|sum|count)$"
_NAMES = {**GAUGES, **COUNTERS}
_LABELS = ("model_name", "engine", "le")


def _wanted(family: str) -> bool:
    """Families we store (also when an exposition lacks TYPE lines and names families by sample)."""
    return family in _FAMILIES or re.sub(_SUFFIX, "", family) in _FAMILIES


def _preferred(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Keep, per key, only the rows of the best (lowest) priority present."""
    return frame.filter(pl.col("priority") == pl.col("priority").min().over(keys))


def parse_vllm(text: str, *, node: str, ts: datetime, project: str = "default") -> tuple[pl.DataFrame, pl.DataFrame]:
    """(inference_samples rows, inference_histograms rows) of one scrape of one server."""
    long = samples(text, _LABELS, keep=_wanted).with_columns(
        pl.col("model_name").fill_null(""), pl.col("engine").fill_null(""))
    mapping = pl.DataFrame({"name": list(_NAMES), "column": [v[0] for v in _NAMES.values()],
                            "priority": [v[1] for v in _NAMES.values()]})
    scalars = long.join(mapping, on="name")
    scalars = _preferred(scalars, ["model_name", "engine", "column"])
    scalars = scalars.group_by("model_name", "engine", "column").agg(pl.col("value").sum())
    wide = scalars.pivot(on="column", index=["model_name", "engine"], values="value") if scalars.height else \
        pl.DataFrame(schema={"model_name": pl.String, "engine": pl.String})
    wide = wide.with_columns(*(pl.lit(None, dtype=pl.Float64).alias(c) for c in SAMPLE_COLUMNS if c not in wide.columns))
    inference = wide.select(
        pl.lit(project).alias("project"), pl.lit(ts).cast(pl.Datetime("ms", "UTC")).alias("ts"),
        pl.lit(node).alias("node"), pl.col("model_name").alias("model"), "engine",
        pl.lit("vllm").alias("source"), *SAMPLE_COLUMNS,
    )
    return inference, _histograms(long, node=node, ts=ts, project=project)


def _histograms(long: pl.DataFrame, *, node: str, ts: datetime, project: str) -> pl.DataFrame:
    family = pl.col("name").str.replace(r"_(bucket|sum|count)$", "")
    mapping = pl.DataFrame({"family": list(HISTOGRAMS), "metric": [v[0] for v in HISTOGRAMS.values()],
                            "priority": [v[1] for v in HISTOGRAMS.values()]})
    parts = long.with_columns(family.alias("family"), pl.col("name").str.extract(r"_(bucket|sum|count)$").alias("part"))
    parts = _preferred(parts.join(mapping, on="family"), ["model_name", "engine", "metric"])
    buckets = parts.filter(pl.col("part") == "bucket").with_columns(
        pl.col("le").str.replace(r"^\+Inf$", "inf").cast(pl.Float64, strict=False).alias("le"))
    sums = parts.filter(pl.col("part") == "sum").select("model_name", "engine", "metric", pl.col("value").alias("sum"))
    joined = buckets.join(sums, on=["model_name", "engine", "metric"], how="left")
    return joined.filter(pl.col("le").is_not_null()).select(
        pl.lit(project).alias("project"), pl.lit(ts).cast(pl.Datetime("ms", "UTC")).alias("ts"),
        pl.lit(node).alias("node"), pl.col("model_name").alias("model"), "engine", "metric", "le",
        pl.col("value").alias("count"), pl.col("sum").fill_null(math.nan),
    )


class VllmCollector:
    """Scrapes vLLM servers' Prometheus endpoints."""

    name: ClassVar[str] = "vllm"
    Config: ClassVar[type[VllmConfig]] = VllmConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.SCRAPE,
        outputs=frozenset({Output.INFERENCE_SAMPLES, Output.INFERENCE_HISTOGRAMS}),
        incremental=False,
        backfill=False,
        summary="vLLM /metrics: running/waiting requests, KV-cache usage, token and prefix-cache counters, "
        "TTFT / inter-token / e2e histograms",
    )

    def __init__(self, config: VllmConfig, *, clock: Clock = utc_now) -> None:
        self.config = config
        self.clock = clock

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """One scrape of every target (a scrape has no window or cursor: it reads the present)."""

        def parse(text: str, target: ScrapeTarget, ts: datetime) -> list[Batch]:
            inference, histograms = parse_vllm(text, node=target_node(target), ts=ts, project=self.config.project)
            return [Batch(Output.INFERENCE_SAMPLES, frame=inference),
                    Batch(Output.INFERENCE_HISTOGRAMS, frame=histograms)]

        yield from scrape_targets(self.config, "vllm", self.clock, parse)
