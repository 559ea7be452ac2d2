"""The collector contract: what every source plug-in (built-in or third-party) provides.

A collector has a `name`, a pydantic `Config` model, a frozen `Capabilities` record and one
method, `collect(window, cursor)`, that yields `Batch`es: canonical call records (as a
`RawBatch` for the ingest pipeline) or rows for one of the other outputs, each with the cursor
to persist once that batch is durable. A collector fetches and maps only; it never prices,
deduplicates or writes (the runner in `ingest.collect` does) and never imports `warehouse`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

import polars as pl
from pydantic import BaseModel

from ingest.readers import ParseFailure, RawBatch

Cursor = dict[str, Any]
"""A collector's resumable position: any JSON-serialisable mapping, opaque to the runner."""


class Kind(StrEnum):
    """How a collector reaches its source."""

    PULL = "pull"  # paginated HTTP API with a time window (provider exports)
    SCRAPE = "scrape"  # point-in-time HTTP scrape (Prometheus /metrics)
    FILE = "file"  # a file exported from another system


class Output(StrEnum):
    """Where a batch lands; each value is also the name of its warehouse table."""

    CALLS = "calls"
    TOOL_RUNS = "tool_runs"
    PROVIDER_USAGE = "provider_usage"
    PROVIDER_COSTS = "provider_costs"
    GPU_SAMPLES = "gpu_samples"
    INFERENCE_SAMPLES = "inference_samples"
    INFERENCE_HISTOGRAMS = "inference_histograms"


@dataclass(frozen=True)
class Capabilities:
    """What a collector can do, for the runner, the scheduler and the docs."""

    kind: Kind
    outputs: frozenset[Output]
    incremental: bool  # resumes from a cursor
    backfill: bool  # accepts an explicit past window (`--since/--until`)
    summary: str
    provider: str | None = None


@dataclass(frozen=True)
class Window:
    """A half-open UTC time range [start, end); None means open on that side."""

    start: datetime | None = None
    end: datetime | None = None


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


@runtime_checkable
class Collector(Protocol):
    """A source plug-in. Construct with its config (scrape collectors also take `clock=`, a
    callable giving the sample time); `collect` may be called once per instance."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    capabilities: ClassVar[Capabilities]

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Fetch and map the data of `window`, resuming from `cursor`; yield batches in order."""
        ...
