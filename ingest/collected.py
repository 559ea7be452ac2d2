"""What collectors hand to ingest: a `Batch` of one `Output`, with the `Cursor` to save once it is
durable. Defined here, at the ingest end, so the collectors import ingest and never the other way
round (`collectors.base` re-exports these names for collector authors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl

from ingest.readers import ParseFailure, RawBatch

Cursor = dict[str, Any]
"""A collector's resumable position: any JSON-serialisable mapping, opaque to the runner."""


class Output(StrEnum):
    """Where a batch lands; each value is also the name of its warehouse table."""

    CALLS = "calls"
    TOOL_RUNS = "tool_runs"
    PROVIDER_USAGE = "provider_usage"
    PROVIDER_COSTS = "provider_costs"
    GPU_SAMPLES = "gpu_samples"
    INFERENCE_SAMPLES = "inference_samples"
    INFERENCE_HISTOGRAMS = "inference_histograms"


@dataclass
class Batch:
    """One unit of collected data; the runner writes it, then saves `cursor` (when not None).

    CALLS batches carry `records`; every other output carries `frame` (columns named as the
    output's table). Provider buckets also carry `stream` (the unit of replacement, e.g.
    `openai:completions:1d`) and `buckets` (start/end of every bucket the page covered, empty
    ones included), so a re-fetched bucket replaces the stored one whole. `rejects` are rows of a
    non-call output that could not be read; the runner dead-letters them (calls carry theirs in
    `records.failures`).
    """

    output: Output
    frame: pl.DataFrame | None = None
    records: RawBatch | None = None
    stream: str = ""
    buckets: pl.DataFrame | None = None
    cursor: Cursor | None = None
    notes: list[str] = field(default_factory=list)
    rejects: list[ParseFailure] = field(default_factory=list)  # unreadable rows of non-call outputs
