"""The ingest pipeline: raw batches → conform → normalise → validate → price and write.

Every source ends here: files (`ingest_file`), the push API and collectors (`ingest_batch` with
a `RawBatch`), the simulator (`ingest_frame`). Bad records go to dead letters with source, reason
and raw payload while the good records of the same batch land; a summary counts both. Writing is
idempotent on `event_id`, so re-ingesting a file changes no totals.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import polars as pl

from ingest.catalog import Catalog
from ingest.normalise import conform, normalise
from ingest.pricing import load_prices, override_names, prices_loaded
from ingest.readers import FileFormat, RawBatch, read_file
from ingest.settings import PipelineSettings
from ingest.validate import Limits, split_valid
from ingest.writer import CallWriter, DeadLetter, write_dead_letters
from warehouse.client import Warehouse

Progress = Callable[[int], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    """A record of a batch that was dead-lettered (row = its index in the batch's frame, or -1)."""

    row: int
    line_no: int
    reason: str
    detail: str


@dataclass
class PreparedBatch:
    """A batch normalised and validated, ready to write."""

    batch_id: str
    started: datetime
    read: int
    staged: pl.DataFrame
    rejections: list[Rejection]
    letters: list[DeadLetter]
    unknown_fields: set[str]


@dataclass
class BatchResult:
    """The fate of one batch."""

    batch_id: str
    read: int
    written: int
    duplicates: int
    rejections: list[Rejection]
    unpriced: dict[tuple[str, str], int]
    unknown_fields: set[str]


@dataclass
class IngestSummary:
    """Totals over the batches of one ingest run."""

    source: str
    batches: int = 0
    read: int = 0
    written: int = 0
    duplicates: int = 0
    dead: int = 0
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    unpriced: Counter[tuple[str, str]] = field(default_factory=Counter)
    unknown_fields: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def add(self, result: BatchResult) -> None:
        """Fold one batch's result into the totals."""
        self.batches += 1
        self.read += result.read
        self.written += result.written
        self.duplicates += result.duplicates
        self.dead += len(result.rejections)
        self.dead_by_reason.update(r.reason for r in result.rejections)
        self.unpriced.update(result.unpriced)
        self.unknown_fields |= result.unknown_fields

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "source": self.source,
            "batches": self.batches,
            "read": self.read,
            "written": self.written,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead,
            "dead_by_reason": dict(self.dead_by_reason),
            "unpriced_models": {f"{p}/{m}": n for (p, m), n in self.unpriced.items()},
            "unknown_fields": sorted(self.unknown_fields),
            "seconds": round(self.seconds, 3),
        }


_DONE = object()


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield from `items`, computing the next item in a worker thread while the caller works on
    the current one. Exceptions from the worker surface in the caller."""
    slots: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(_DONE)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            slots.put(err)

    worker = threading.Thread(target=produce, name="ingest-prepare", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


class Pipeline:
    """One process's ingest path into one warehouse (one writer, one name resolver)."""

    def __init__(self, wh: Warehouse, settings: PipelineSettings) -> None:
        self.wh = wh
        self.settings = settings
        if not prices_loaded(wh):
            load_prices(wh, settings.pricing)
        self.catalog = Catalog(override_names(settings.pricing))
        self.writer = CallWriter(wh)

    def close(self) -> None:
        """Release the writer (nothing is kept on the server between batches)."""
        self.writer.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def limits(self, project: str | None = None) -> Limits:
        """Validation limits as of now (`project`: the only project records may belong to)."""
        return Limits(
            now=datetime.now(UTC),
            max_future_skew_s=self.settings.ingest.max_future_skew_s,
            max_tokens_per_call=self.settings.ingest.max_tokens_per_call,
            project=project,
        )

    def prepare(self, raw: RawBatch, *, source: str, project: str | None = None, cast: bool = True) -> PreparedBatch:
        """Normalise and validate one batch (pure Polars: runs ahead in a worker thread).

        `project` binds the batch to one project (the push API's project-bound keys): records
        without one get it, records naming another are dead-lettered (`project_not_allowed`).
        `cast=False` leaves the good rows in their read types (only the stored columns kept): the
        push API spools them so, and its flusher casts many requests' rows at once before writing.
        Thread-safe: the push API prepares concurrent requests in parallel.
        """
        started = datetime.now(UTC)
        batch_id = uuid.uuid4().hex
        frame = conform(raw.frame).with_row_index("_row")
        if project is not None:
            frame = frame.with_columns(pl.col("project").fill_null(project))
        frame = normalise(frame, source=source, catalog=self.catalog)
        good, bad = split_valid(frame, self.limits(project))
        staged = (self.writer.prepare(good, batch_id=batch_id, ingested_at=started) if cast
                  else self.writer.trim(good, ingested_at=started))
        rejections = [Rejection(-1, f.line_no, f.reason.value, f.detail) for f in raw.failures]
        letters = [DeadLetter(source, f.reason.value, f.detail, f.line_no, f.raw) for f in raw.failures]
        if bad.height:
            rows = bad["_row"].to_list()
            for row, reason, detail, event_id, payload in zip(
                rows, bad["reason"], bad["detail"], bad["event_id"], raw.raw(rows), strict=True
            ):
                line_no = raw.line_no(row)
                rejections.append(Rejection(row, line_no, reason, detail or ""))
                letters.append(DeadLetter(source, reason, detail or "", line_no, payload, event_id or ""))
        return PreparedBatch(batch_id, started, raw.frame.height + len(raw.failures), staged, rejections, letters,
                             raw.unknown_fields)

    def commit(self, prepared: PreparedBatch, *, source: str, origin: str = "") -> BatchResult:
        """Write a prepared batch: priced calls, dead letters, and the batch record."""
        result = self.writer.write_prepared(prepared.staged)
        write_dead_letters(self.wh, prepared.letters, batch_id=prepared.batch_id,
                           max_raw_bytes=self.settings.ingest.dead_letter_raw_max_bytes)
        batch = BatchResult(
            batch_id=prepared.batch_id,
            read=prepared.read,
            written=result.written,
            duplicates=result.duplicates,
            rejections=prepared.rejections,
            unpriced=result.unpriced,
            unknown_fields=prepared.unknown_fields,
        )
        self._record(batch, source=source, origin=origin, started=prepared.started)
        return batch

    def ingest_batch(self, raw: RawBatch, *, source: str, origin: str = "") -> BatchResult:
        """Normalise, validate, price and write one batch; dead-letter what fails."""
        return self.commit(self.prepare(raw, source=source), source=source, origin=origin)

    def ingest_batches(
        self, batches: Iterable[RawBatch], *, source: str, origin: str = "", progress: Progress | None = None
    ) -> IngestSummary:
        """Ingest a stream of batches. Reading and normalising the next batch overlaps with writing
        the current one (the engine releases the GIL); at most two batches are in memory."""
        summary = IngestSummary(source=source)
        began = time.perf_counter()
        for prepared in _ahead(self.prepare(raw, source=source) for raw in batches):
            result = self.commit(prepared, source=source, origin=origin)
            summary.add(result)
            if progress is not None:
                progress(result.read)
        summary.seconds = time.perf_counter() - began
        return summary

    def ingest_file(
        self,
        path: Path,
        *,
        source: str | None = None,
        fmt: FileFormat | None = None,
        progress: Progress | None = None,
    ) -> IngestSummary:
        """Ingest a JSONL / CSV / Parquet file in bounded batches."""
        batches = read_file(
            path, fmt, batch_bytes=self.settings.ingest.batch_bytes, batch_rows=self.settings.ingest.batch_rows
        )
        return self.ingest_batches(batches, source=source or path.name, origin=str(path), progress=progress)

    def ingest_frame(self, frame: pl.DataFrame, *, source: str) -> BatchResult:
        """Ingest records already in a frame (simulator, collectors, the push API)."""
        return self.ingest_batch(RawBatch(frame), source=source)

    def _record(self, batch: BatchResult, *, source: str, origin: str, started: datetime) -> None:
        self.wh.written_rows(
            "INSERT INTO ingest_batches (batch_id, source, origin, started_at, finished_at, rows_read, rows_written, "
            "rows_duplicate, rows_dead, rows_unpriced, unknown_fields) VALUES ({b:String}, {s:String}, {o:String}, "
            "{st:DateTime64(3)}, now64(3), {r:UInt64}, {w:UInt64}, {d:UInt64}, {x:UInt64}, {u:UInt64}, {f:Array(String)})",
            {
                "b": batch.batch_id,
                "s": source,
                "o": origin,
                "st": started,
                "r": batch.read,
                "w": batch.written,
                "d": batch.duplicates,
                "x": len(batch.rejections),
                "u": sum(batch.unpriced.values()),
                "f": sorted(batch.unknown_fields),
            },
            tag="ingest:record",
        )
