"""Durable push ingest: prepared batches go to the spool (acknowledged once fsynced) and a
background thread flushes them to the warehouse in large batches.

`PushSpool.submit(prepared, tool_runs)` encodes a batch (calls as Arrow IPC, dead letters as
JSON) and returns a future that completes once it is on disk. The flush thread seals the open
segment every `flush_interval_s` (or sooner, at `flush_rows` pending rows), writes everything
sealed through the one `Pipeline` (priced, deduplicated on `event_id`) and deletes the
segments. A flush has a fixed cost whatever its size (the priced `INSERT … SELECT` and every
rollup view it feeds: a few hundred ms of CPU), so under load the pause after a flush grows to
`FLUSH_PAUSE_FACTOR` times its duration (at most `MAX_PAUSE_INTERVALS` intervals): batches grow
with the load instead of the fixed cost being paid every interval. A failed warehouse write is retried with back-off and never drops a segment. On start,
segments a previous process left are replayed first; since writes are idempotent, a batch that
was written but whose segment survived a crash changes nothing (dead letters too: they are
stored once per content id). A crash can cut a flush between `calls` and the rollup views its
insert feeds (the engine commits each table's part on its own): the replayed rows then count as
duplicates and the views never see them, so a replay that meets duplicates rebuilds the months
whose rollups disagree with `calls` before it reports itself done.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
from tenacity import Retrying, stop_after_attempt, wait_exponential

from ingest.pipeline import Pipeline, PreparedBatch
from ingest.spool import Entry, EntryKind, Spool
from ingest.tool_runs import ToolRunWriter
from ingest.writer import DeadLetter, conform_to
from warehouse.rollups import refresh_rollups

log = logging.getLogger(__name__)

FLUSH_PAUSE_FACTOR = 2.0  # pause ≥ this × the last flush's duration: flushing takes ≤ 1/3 of the time
MAX_PAUSE_INTERVALS = 5.0  # ... but never longer than this many `flush_interval_s` (freshness bound)


def _ipc(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc_stream(buf, compression="uncompressed")
    return buf.getvalue()


def encode(prepared: PreparedBatch, tool_runs: pl.DataFrame | None = None) -> list[Entry]:
    """The spool entries of a prepared batch (pure; runs in the request's worker thread)."""
    entries: list[Entry] = []
    if prepared.staged.height:
        entries.append(Entry(EntryKind.CALLS, _ipc(prepared.staged), prepared.staged.height))
    if prepared.letters:
        letters = [
            {"source": d.source, "reason": d.reason, "detail": d.detail, "line_no": d.line_no,
             "raw": d.raw.decode("utf-8", errors="replace"), "event_id": d.event_id}
            for d in prepared.letters
        ]
        entries.append(Entry(EntryKind.DEAD_LETTERS, orjson.dumps(letters), len(letters)))
    if tool_runs is not None and tool_runs.height:
        entries.append(Entry(EntryKind.TOOL_RUNS, _ipc(tool_runs), tool_runs.height))
    return entries


@dataclass
class FlushStats:
    """What the flusher has done (for /health and the benchmark)."""

    pending_rows: int = 0
    flushed_calls: int = 0
    flushed_duplicates: int = 0
    flushed_dead_letters: int = 0
    flushed_tool_runs: int = 0
    replayed_entries: int = 0
    flushes: int = 0
    last_flush_at: datetime | None = None
    last_flush_s: float = 0.0
    last_error: str | None = None
    errors: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class PushSpool:
    """The spool plus its flush thread, writing through one pipeline (see module docstring)."""

    name = "spool"

    def __init__(
        self,
        pipeline: Pipeline,
        directory: Path,
        *,
        max_bytes: int,
        flush_interval_s: float,
        flush_rows: int,
    ) -> None:
        self.pipeline = pipeline
        self.tool_writer = ToolRunWriter(pipeline.wh)
        self.spool = Spool(directory, max_bytes=max_bytes, on_durable=self._on_durable)
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self.stats = FlushStats()
        self._pending: list[tuple[int, Entry]] = []
        self._replayed_upto = 0  # segments up to this sequence number were left by a crashed run
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Replay what a previous process left, then open the spool and start flushing."""
        for seq, entries in self.spool.recover():
            for entry in entries:
                self._on_durable(seq, [entry])
            self.stats.replayed_entries += len(entries)
            self._replayed_upto = max(self._replayed_upto, seq)
        if self.stats.replayed_entries:
            log.info("spool: replaying %d entries left by a previous run", self.stats.replayed_entries)
        self.spool.open()
        self._thread = threading.Thread(target=self._run, name="spool-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, commit the spool, flush everything to the warehouse."""
        self.spool.close()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self.flush()  # whatever the last round left (also when the warehouse was failing)

    def health(self) -> dict[str, object]:
        """Spool and flush state for /health."""
        s = self.stats
        return {
            "state": "stopping" if self._stopping else "running",
            "used_bytes": self.spool.used_bytes,
            "max_bytes": self.spool.max_bytes,
            "segments": self.spool.segments,
            "pending_rows": s.pending_rows,
            "group_commits": self.spool.commits,
            "flushes": s.flushes,
            "flushed_calls": s.flushed_calls,
            "flushed_duplicates": s.flushed_duplicates,
            "flushed_dead_letters": s.flushed_dead_letters,
            "flushed_tool_runs": s.flushed_tool_runs,
            "replayed_entries": s.replayed_entries,
            "last_flush_at": s.last_flush_at.isoformat() if s.last_flush_at else None,
            "last_flush_s": round(s.last_flush_s, 3),
            "errors": s.errors,
            "last_error": s.last_error,
        }

    # ---- submit --------------------------------------------------------------------------

    def submit(self, entries: list[Entry]) -> Future[int]:
        """Queue entries for the next group commit (raises `SpoolFull` at the bound)."""
        return self.spool.append(entries)

    def _on_durable(self, seq: int, entries: list[Entry]) -> None:
        rows = sum(e.rows or 1 for e in entries)
        with self._cond:
            self._pending.extend((seq, e) for e in entries)
            self.stats.pending_rows += rows
            if self.stats.pending_rows >= self.flush_rows:
                self._cond.notify()

    # ---- flushing ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and self.stats.pending_rows < self.flush_rows:
                    self._cond.wait(self.pause_s())
                if self._stopping:
                    return
            try:
                self.flush()
            except Exception as err:  # noqa: BLE001 - kept pending; retried next round
                self.stats.errors += 1
                self.stats.last_error = f"{type(err).__name__}: {err}"
                log.exception("spool flush failed; the segments stay and are retried")
                with self._cond:
                    self._cond.wait(min(self.flush_interval_s * 5, 30))

    def pause_s(self) -> float:
        """How long the flush thread waits before its next flush (see module docstring)."""
        stretched = min(FLUSH_PAUSE_FACTOR * self.stats.last_flush_s, MAX_PAUSE_INTERVALS * self.flush_interval_s)
        return max(self.flush_interval_s, stretched)

    def flush(self) -> int:
        """Write every sealed entry to the warehouse and delete its segments; returns calls written."""
        upto = self.spool.seal()
        with self._cond:
            cut = 0
            while cut < len(self._pending) and self._pending[cut][0] <= upto:
                cut += 1
            batch = [entry for _, entry in self._pending[:cut]]
            replayed = cut > 0 and self._pending[0][0] <= self._replayed_upto
        if not batch:
            self.spool.discard(upto)
            return 0
        began = time.perf_counter()
        written = 0
        duplicates = self.stats.flushed_duplicates
        for attempt in Retrying(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.2, max=5), reraise=True):
            with attempt:
                written = self._write(batch)
        if replayed and self.stats.flushed_duplicates > duplicates:  # see the module docstring
            report = refresh_rollups(self.pipeline.wh)
            if report.rebuilt:
                log.warning("spool replay: rebuilt %d rollup months a crashed flush had left behind",
                            len({p for _, p in report.rebuilt}))
        with self._cond:
            del self._pending[:cut]
            self.stats.pending_rows -= sum(e.rows or 1 for e in batch)
        self.spool.discard(upto)
        self.stats.flushes += 1
        self.stats.last_flush_at = datetime.now(UTC)
        self.stats.last_flush_s = time.perf_counter() - began
        return written

    def _write(self, entries: list[Entry]) -> int:
        columns = self.pipeline.writer.calls_columns
        stage_columns = {**columns, "tags": "String"}
        calls = [pl.read_ipc_stream(io.BytesIO(e.payload)) for e in entries if e.kind is EntryKind.CALLS]
        letters = [DeadLetter(**d) for e in entries if e.kind is EntryKind.DEAD_LETTERS
                   for d in _letters(e.payload)]
        runs = [pl.read_ipc_stream(io.BytesIO(e.payload)) for e in entries if e.kind is EntryKind.TOOL_RUNS]
        batch_id = uuid.uuid4().hex
        staged = (
            conform_to(pl.concat(calls, how="diagonal_relaxed"), stage_columns).with_columns(
                pl.lit(batch_id).alias("batch_id"))
            if calls else pl.DataFrame()
        )
        prepared = PreparedBatch(batch_id, datetime.now(UTC), staged.height + len(letters), staged, [], letters, set())
        result = self.pipeline.commit(prepared, source="service", origin="spool")
        tool_rows = self.tool_writer.write(pl.concat(runs, how="diagonal_relaxed")) if runs else 0
        self.stats.flushed_calls += result.written
        self.stats.flushed_duplicates += result.duplicates
        self.stats.flushed_dead_letters += len(letters)
        self.stats.flushed_tool_runs += tool_rows
        return result.written


def _letters(payload: bytes) -> list[dict[str, object]]:
    items = orjson.loads(payload)
    for item in items:
        item["raw"] = str(item["raw"]).encode()
    return items
