"""Running collectors: the entry point for the CLI and the scheduler.

The run loop lives with the collectors and feeds the ingest layer (pipeline, writers, collector
state): collectors import ingest, never the other way round.

`run_collector(name, settings, wh)` runs one collector once: loads its cursor, writes each batch
it yields to the right place (calls through the ingest pipeline; provider buckets with
replacement; node samples deduplicated), saves the cursor after every durable batch and records
the run's outcome (last success, lag, last error) in `collector_runs`. It never raises for a
collector failure: the error is recorded and returned in the report. `run_collectors` runs every
enabled collector; one failing never stops the others.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl
from pydantic import BaseModel

from collectors.base import Batch, Collector, Kind, Output, Window
from collectors.config import CollectorsSettings
from collectors.errors import CollectorError
from collectors.registry import REGISTRY, Registry
from ingest.collector_state import RunReport, load_cursor, record_run, save_cursor
from ingest.node_metrics import SampleWriter, load_gpu_prices
from ingest.pipeline import Pipeline, PreparedBatch
from ingest.pipeline import _ahead as read_ahead  # the pipeline's own overlap helper, reused not copied
from ingest.provider_exports import ProviderBucketWriter
from ingest.settings import PipelineSettings
from ingest.tool_runs import ToolRunWriter
from ingest.writer import DeadLetter, write_dead_letters
from warehouse.client import Warehouse
from warehouse.queries.collectors import collector_status
from warehouse.queries.scope import Scope

log = logging.getLogger(__name__)


class RunnerSettings(PipelineSettings, Protocol):
    """What a run reads of the settings: the `[collectors]` section and the pipeline's sections."""

    @property
    def collectors(self) -> CollectorsSettings: ...


class _Sinks:
    """The writers a run needs, created on first use."""

    def __init__(self, wh: Warehouse, settings: RunnerSettings, pipeline: Pipeline | None) -> None:
        self.wh, self.settings = wh, settings
        self._pipeline, self._own_pipeline = pipeline, pipeline is None
        self._buckets: ProviderBucketWriter | None = None
        self._samples: SampleWriter | None = None
        self._tools: ToolRunWriter | None = None
        self._lock = threading.Lock()  # the pipeline is first used from the read-ahead thread or this one

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = Pipeline(self.wh, self.settings)
            return self._pipeline

    def write(self, batch: Batch, prepared: PreparedBatch | None, report: RunReport, source: str, origin: str) -> None:
        if batch.output is Output.CALLS:
            assert prepared is not None
            result = self.pipeline.commit(prepared, source=source, origin=origin)
            report.written += result.written
            report.duplicates += result.duplicates
            report.dead += len(result.rejections)
            written = result.written
        elif batch.output in (Output.PROVIDER_USAGE, Output.PROVIDER_COSTS):
            if self._buckets is None:
                self._buckets = ProviderBucketWriter(self.wh, self.pipeline.catalog)
            written = self._buckets.write(batch, project=report.project)
            report.written += written
        elif batch.output is Output.TOOL_RUNS:
            if self._tools is None:
                self._tools = ToolRunWriter(self.wh)
            assert batch.frame is not None
            written = self._tools.write(batch.frame)
            report.written += written
            report.duplicates += batch.frame.height - written
        else:
            if self._samples is None:
                self._samples = SampleWriter(self.wh)
            assert batch.frame is not None
            written = self._samples.write(batch.output, batch.frame)
            report.written += written
            report.duplicates += batch.frame.height - written
        report.by_output[batch.output.value] = report.by_output.get(batch.output.value, 0) + written
        if batch.rejects:
            letters = [DeadLetter(source, f.reason.value, f.detail, f.line_no, f.raw) for f in batch.rejects]
            write_dead_letters(self.wh, letters, batch_id=report.run_id,
                               max_raw_bytes=self.settings.ingest.dead_letter_raw_max_bytes)
            report.dead += len(letters)

    def close(self) -> None:
        if self._buckets is not None:
            self._buckets.close()
        if self._samples is not None:
            self._samples.close()
        if self._own_pipeline and self._pipeline is not None:
            self._pipeline.close()


def run_collector(
    name: str,
    settings: RunnerSettings,
    wh: Warehouse,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    config: BaseModel | None = None,
    pipeline: Pipeline | None = None,
    registry: Registry = REGISTRY,
    collector: Collector | None = None,
    progress: Callable[[int], None] | None = None,
    **overrides: Any,
) -> RunReport:
    """Run collector `name` once into `wh` and record the outcome; see the module docstring.

    `since`/`until` (UTC) back-fill an explicit window instead of resuming from the cursor.
    `config` replaces the settings' section; `overrides` patch it (e.g. `path=` for imports);
    `collector` runs an instance built by the caller (its `config` is then used as is);
    `progress` is called with the records each batch brought (written, duplicate or dead-lettered).
    """
    report = RunReport(collector=name, run_id=uuid.uuid4().hex, project="default", started_at=datetime.now(UTC))
    sinks = _Sinks(wh, settings, pipeline)
    try:
        load_gpu_prices(wh, settings.collectors.gpu_prices)
        if collector is not None:
            config = getattr(collector, "config", config)
        config = config or registry.config_for(name, settings.collectors, **overrides)
        report.project = str(getattr(config, "project", "default"))
        collector = collector or registry.create(name, config)
        cursor = None
        if collector.capabilities.incremental:
            cursor, problem = load_cursor(wh, name)
            if problem:
                report.notes.append(problem)
        source = str(getattr(config, "source", None) or name)
        origin = str(getattr(config, "path", None) or getattr(config, "base_url", None) or "")
        for batch, prepared in _prepared(collector.collect(Window(since, until), cursor), sinks, source):
            seen = report.written + report.duplicates + report.dead
            sinks.write(batch, prepared, report, source, origin)
            if progress is not None:
                progress(report.written + report.duplicates + report.dead - seen)
            report.batches += 1
            report.notes.extend(batch.notes)
            if batch.cursor is not None:
                save_cursor(wh, name, batch.cursor)
                report.data_through = _data_through(batch.cursor) or report.data_through
        if collector.capabilities.kind is Kind.SCRAPE and report.batches:
            report.data_through = report.started_at
        report.status = "ok"
    except CollectorError as err:
        report.status, report.error_kind, report.error = "error", err.kind, str(err)
        log.warning("collector %s failed: %s", name, err)
    except Exception as err:  # noqa: BLE001 - recorded, so one broken collector never stops the others
        report.status, report.error_kind, report.error = "error", "internal", f"{type(err).__name__}: {err}"
        log.exception("collector %s failed", name)
    finally:
        sinks.close()
    report.finished_at = datetime.now(UTC)
    record_run(wh, report)
    return report


def run_collectors(
    settings: RunnerSettings,
    wh: Warehouse,
    names: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    registry: Registry = REGISTRY,
    progress: Callable[[str], Callable[[int], None]] | None = None,
) -> list[RunReport]:
    """Run the named collectors, or every enabled pull/scrape collector; failures are isolated.
    `progress(name)` gives each run's progress callback (see `run_collector`)."""
    if names is None:
        names = [n for n in registry.names() if registry.get(n).capabilities.kind is not Kind.FILE
                 and _enabled(registry, n, settings)]
    with Pipeline(wh, settings) as pipeline:
        return [run_collector(n, settings, wh, since=since, until=until, pipeline=pipeline, registry=registry,
                              progress=progress(n) if progress else None)
                for n in names]


def _enabled(registry: Registry, name: str, settings: RunnerSettings) -> bool:
    try:
        return bool(getattr(registry.config_for(name, settings.collectors), "enabled", False))
    except Exception:  # noqa: BLE001 - an invalid section is reported when the collector is run by name
        log.exception("invalid settings for collector %s", name)
        return False


def _prepared(batches: Iterator[Batch], sinks: _Sinks, source: str) -> Iterator[tuple[Batch, PreparedBatch | None]]:
    """Pair call batches with their normalised form, computed one batch ahead in a worker thread
    while the previous batch is written (the pipeline's own overlap, applied to collectors)."""

    def prepare(batch: Batch) -> tuple[Batch, PreparedBatch | None]:
        if batch.output is Output.CALLS:
            assert batch.records is not None
            return batch, sinks.pipeline.prepare(batch.records, source=source)
        return batch, None

    return read_ahead(prepare(b) for b in batches)


def _data_through(cursor: dict[str, Any]) -> datetime | None:
    """The oldest stream high-water mark of a bucketed-export cursor."""
    marks = []
    for state in (cursor.get("streams") or {}).values():
        try:
            marks.append(datetime.fromisoformat(state["done_until"]))
        except (KeyError, TypeError, ValueError):
            continue
    return min(marks) if marks else None


def describe(collector: type[Collector]) -> dict[str, Any]:
    """A collector's name and capabilities, for listings."""
    caps = collector.capabilities
    return {"name": collector.name, "kind": caps.kind.value, "outputs": sorted(o.value for o in caps.outputs),
            "incremental": caps.incremental, "backfill": caps.backfill, "summary": caps.summary}


def status_frame(wh: Warehouse, scope: Scope | None = None) -> pl.DataFrame:
    """Each collector's runs, last success, lag and last error (`warehouse.queries.collectors`)."""
    return collector_status(wh, scope or Scope.all())
