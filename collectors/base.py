"""The collector contract: what every source plug-in (built-in or third-party) provides.

A collector has a `name`, a pydantic `Config` model, a frozen `Capabilities` record and one
method, `collect(window, cursor)`, that yields `Batch`es: canonical call records (as a
`RawBatch` for the ingest pipeline) or rows for one of the other outputs, each with the cursor
to persist once that batch is durable. A collector fetches and maps only; it never prices,
deduplicates or writes (the runner in `collectors.runner` does) and never imports `warehouse`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from ingest.collected import Batch, Cursor, Output


class Kind(StrEnum):
    """How a collector reaches its source."""

    PULL = "pull"  # paginated HTTP API with a time window (provider exports)
    SCRAPE = "scrape"  # point-in-time HTTP scrape (Prometheus /metrics)
    FILE = "file"  # a file exported from another system


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
