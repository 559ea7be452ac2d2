"""The push path shared by every ingest endpoint: parse (per request, in a worker thread), then
prepare concurrent requests together and spool them with one fsynced append; answer once durable.

Preparing a batch (normalise, validate) costs milliseconds of fixed Polars overhead whatever its
size, so requests that arrive while a prepare is running are coalesced into the next one (per
source and project binding): one Polars pass and one spool entry for the group, results split
back per request. Under light load a request is prepared alone, without waiting. Canonical events
are only checked and turned into JSON lines per request; the lines of a group are read into one
frame together (`parse_together`), since reading a frame has a fixed cost of its own.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from fastapi import HTTPException, status
from starlette.concurrency import run_in_threadpool

from ingest.flusher import encode
from ingest.formats.events import EventLines
from ingest.pipeline import Rejection
from ingest.readers import KNOWN_FIELDS, RawBatch, parse_jsonl_chunk, unknown_fields
from ingest.spool import Entry, SpoolFull
from ingest.writer import DeadLetter
from llmledger.service.auth import Principal
from llmledger.service.state import ServiceState

MAX_GROUP_ROWS = 100_000
Lines = EventLines  # canonical events as JSON lines, not read into a frame yet


@dataclass
class PushOutcome:
    """What became of a pushed batch (everything counted here is durable)."""

    accepted: int
    rejections: list[Rejection]
    unknown_fields: set[str] = field(default_factory=set)
    tool_runs: int = 0


Parse = Callable[[], tuple[RawBatch | Lines, pl.DataFrame | None]]


def spool_full(err: SpoolFull, retry_after_s: int) -> HTTPException:
    """The 429 answer when the spool is at its bound."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"ingest is behind ({err}); retry after {retry_after_s}s — nothing from this request was accepted",
        headers={"Retry-After": str(retry_after_s)},
    )


@dataclass
class _Request:
    raw: RawBatch | Lines
    tool_runs: pl.DataFrame | None
    future: asyncio.Future[PushOutcome]

    @property
    def rows(self) -> int:
        return self.raw.data.count(b"\n") + 1 if isinstance(self.raw, EventLines) else self.raw.frame.height


def parse_together(group: list[_Request]) -> pl.DataFrame | None:
    """Read the JSON lines of the group's requests into one frame at once and give each request its
    slice as a `RawBatch`: its own line numbers, parse failures and unknown fields, as if read alone.
    Returns that frame when every request of the group was read in it (the slices, in order, are
    the frame: nothing to concatenate again), else None."""
    pending = [r for r in group if isinstance(r.raw, EventLines)]
    if not pending:
        return None
    fields = [r.raw.fields for r in pending]  # type: ignore[union-attr]
    texts = [r.raw.data for r in pending]  # type: ignore[union-attr]
    chunks = [text if text.endswith(b"\n") or not text else text + b"\n" for text in texts]
    counts = np.array([c.count(b"\n") for c in chunks], dtype=np.int64)
    starts = np.concatenate(([1], 1 + np.cumsum(counts)))  # the group line each request's first line is
    batch = parse_jsonl_chunk(b"".join(chunks))
    lines = (np.asarray(batch.line_numbers, dtype=np.int64) if batch.line_numbers is not None
             else np.arange(1, batch.frame.height + 1, dtype=np.int64))
    bounds = np.searchsorted(lines, starts)  # rows of request k: bounds[k] .. bounds[k + 1]
    for k, (request, chunk, names) in enumerate(zip(pending, chunks, fields, strict=True)):
        lo, hi, first = int(bounds[k]), int(bounds[k + 1]), int(starts[k])
        unknown = set(names - KNOWN_FIELDS) if names is not None else unknown_fields(chunk)
        frame = batch.frame.slice(lo, hi - lo)
        failures = [replace(f, line_no=f.line_no - first + 1) for f in batch.failures
                    if first <= f.line_no < starts[k + 1]]
        local = lines[lo:hi] - first + 1
        if not failures and hi - lo == counts[k]:
            request.raw = RawBatch(frame, unknown_fields=unknown, chunk=chunk)
            continue
        text = chunk.split(b"\n")
        request.raw = RawBatch(frame, line_numbers=local.tolist(), failures=failures,
                               unknown_fields=unknown, raw_lines=[text[n - 1] for n in local])
    return batch.frame if len(pending) == len(group) else None


class _ByRow(Sequence):  # type: ignore[type-arg]
    """Row-indexed view over the requests of a group (line numbers or raw payloads of each)."""

    def __init__(self, group: list[_Request], offsets: list[int], get: Callable[[RawBatch, int], object]) -> None:
        self._group, self._offsets, self._get = group, offsets, get

    def __len__(self) -> int:
        return self._offsets[-1] + self._group[-1].raw.frame.height

    def __getitem__(self, row):  # noqa: ANN001, ANN204
        at = bisect.bisect_right(self._offsets, row) - 1
        return self._get(self._group[at].raw, row - self._offsets[at])


def prepare_group(
    state: ServiceState, group: list[_Request], *, source: str, project: str | None
) -> tuple[list[PushOutcome], list[Entry]]:
    """One prepare for a group of requests; per-request outcomes and the group's spool entries."""
    joint = parse_together(group)
    offsets, total = [], 0
    for request in group:
        offsets.append(total)
        total += request.raw.frame.height
    if joint is not None:
        frame = joint
    else:
        frame = pl.concat([r.raw.frame for r in group], how="diagonal_relaxed") if len(group) > 1 else group[0].raw.frame
    combined = RawBatch(frame, line_numbers=_ByRow(group, offsets, lambda raw, row: raw.line_no(row)),  # type: ignore[arg-type]
                        raw_lines=_ByRow(group, offsets, lambda raw, row: raw.raw([row])[0]))  # type: ignore[arg-type]
    prepared = state.pipeline.prepare(combined, source=source, project=project, cast=False)
    rejected: list[list[Rejection]] = [[] for _ in group]
    for rejection in prepared.rejections:
        at = bisect.bisect_right(offsets, rejection.row) - 1
        rejected[at].append(Rejection(rejection.row - offsets[at], rejection.line_no, rejection.reason, rejection.detail))
    runs: list[pl.DataFrame] = []
    outcomes = []
    for request, bad in zip(group, rejected, strict=True):
        accepted = request.raw.frame.height - len(bad)
        for failure in request.raw.failures:  # records that did not even parse
            bad.append(Rejection(-1, failure.line_no, failure.reason.value, failure.detail))
            prepared.letters.append(DeadLetter(source, failure.reason.value, failure.detail, failure.line_no, failure.raw))
        bad.sort(key=lambda r: r.line_no)
        n_runs = 0
        if request.tool_runs is not None and request.tool_runs.height:
            fill = pl.lit(project) if project else pl.col("project").fill_null("default")
            runs.append(request.tool_runs.with_columns(fill.alias("project")))
            n_runs = request.tool_runs.height
        outcomes.append(PushOutcome(accepted, bad, request.raw.unknown_fields, n_runs))
    tool_runs = pl.concat(runs, how="diagonal_relaxed") if runs else None
    return outcomes, encode(prepared, tool_runs)


class Coalescer:
    """Groups concurrent pushes with the same (source, project) into one prepare and one append."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self._pending: dict[tuple[str, str | None], list[_Request]] = {}
        self._running: set[tuple[str, str | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def push(self, raw: RawBatch | Lines, tool_runs: pl.DataFrame | None, *, source: str,
                   project: str | None) -> PushOutcome:
        """Durably accept one parsed request; returns its outcome once its group is fsynced."""
        key = (source, project)
        request = _Request(raw, tool_runs, asyncio.get_running_loop().create_future())
        self._pending.setdefault(key, []).append(request)
        if key not in self._running:
            self._running.add(key)
            self._spawn(self._drain(key))
        return await request.future

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self, key: tuple[str, str | None]) -> list[_Request]:
        pending = self._pending.get(key, [])
        group, rows = [], 0
        while pending and (not group or rows + pending[0].rows <= MAX_GROUP_ROWS):
            request = pending.pop(0)
            group.append(request)
            rows += request.rows
        if not pending:
            self._pending.pop(key, None)
        return group

    async def _drain(self, key: tuple[str, str | None]) -> None:
        source, project = key
        try:
            while group := self._take(key):
                try:
                    outcomes, entries = await run_in_threadpool(prepare_group, self.state, group, source=source,
                                                                project=project)
                    durable = self.state.push.submit(entries) if entries else None
                except BaseException as err:  # noqa: BLE001 - every request of the group hears of it
                    for request in group:
                        if not request.future.done():
                            request.future.set_exception(err)
                    continue
                # the next group is prepared while this one's fsync is under way
                self._spawn(self._complete(group, outcomes, durable))
        finally:
            self._running.discard(key)

    @staticmethod
    async def _complete(group: list[_Request], outcomes: list[PushOutcome], durable) -> None:  # noqa: ANN001
        try:
            if durable is not None:
                await asyncio.wrap_future(durable)
        except BaseException as err:  # noqa: BLE001
            for request in group:
                if not request.future.done():
                    request.future.set_exception(err)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            if not request.future.done():
                request.future.set_result(outcome)


INLINE_PARSE_BYTES = 256 << 10  # a body this small is checked on the event loop: cheaper than a thread hop


async def push(state: ServiceState, parse: Parse, *, source: str, principal: Principal,
               inline: bool = False) -> PushOutcome:
    """Parse (may raise the format's Malformed* error) in a worker thread, or on the event loop when
    `inline` (a light check of a small body), then accept durably."""
    try:
        raw, tool_runs = parse() if inline else await run_in_threadpool(parse)
    except Exception:
        state.meters.refused(source, "malformed")
        raise
    try:
        outcome = await state.coalescer.push(raw, tool_runs, source=source, project=principal.project)
    except SpoolFull as err:
        state.meters.refused(source, "spool_full")
        raise spool_full(err, state.settings.service.retry_after_s) from None
    state.meters.pushed(source, outcome.accepted, [r.reason for r in outcome.rejections])
    return outcome
