"""Write-ahead spool: push batches are on local disk, fsynced, before they are acknowledged.

A batch is a list of `Entry` (calls as Arrow IPC, dead letters, tool runs) appended to the open
segment file under `<home>/spool`. One committer thread writes everything queued since its last
round with one `write` and one `fdatasync` (group commit), then completes the callers' futures
and hands the entries to `on_durable`, tagged with their segment. `seal()` closes the open
segment so a flusher can write its entries to the warehouse and `discard()` it. Segments left by
a previous process are read back by `recover()`; a torn tail (a write cut by a crash, so never
acknowledged) is dropped with a warning. The spool refuses appends beyond `max_bytes`.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

log = logging.getLogger(__name__)

_MAGIC = b"LLSP"
_HEADER = struct.Struct("<4sBII")  # magic, kind, payload length, crc32 of payload
_PREFIX = "seg-"
_SUFFIX = ".wal"


class EntryKind(IntEnum):
    """What an entry's payload holds."""

    CALLS = 1  # Arrow IPC stream of a prepared (staged) calls frame
    DEAD_LETTERS = 2  # JSON list of dead letters
    TOOL_RUNS = 3  # Arrow IPC stream of tool runs


@dataclass(frozen=True)
class Entry:
    """One record of the spool."""

    kind: EntryKind
    payload: bytes
    rows: int = 0

    def encode(self) -> bytes:
        """Header and payload as written to a segment."""
        return _HEADER.pack(_MAGIC, int(self.kind), len(self.payload), zlib.crc32(self.payload)) + self.payload


class SpoolFull(Exception):
    """The spool is at its bound; the caller should retry after `retry_after_s`."""

    def __init__(self, used: int, limit: int) -> None:
        self.used = used
        self.limit = limit
        super().__init__(f"spool holds {used:,} of {limit:,} bytes")


Durable = Callable[[int, list[Entry]], None]


def _segment_name(seq: int) -> str:
    return f"{_PREFIX}{seq:012d}{_SUFFIX}"


def read_segment(path: Path) -> list[Entry]:
    """The intact entries of a segment file, in order; stops at a torn or corrupt tail."""
    data = path.read_bytes()
    entries: list[Entry] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            break
        magic, kind, length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc or kind not in EntryKind._value2member_map_:
            break
        entries.append(Entry(EntryKind(kind), payload))
        offset = start + length
    if offset < len(data):
        log.warning("spool segment %s: dropped a torn tail of %d bytes (never acknowledged)", path.name, len(data) - offset)
    return entries


class Spool:
    """Segment files with group-committed, fsynced appends (see module docstring)."""

    def __init__(self, directory: Path, *, max_bytes: int, on_durable: Durable) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._on_durable = on_durable
        self._queue: list[tuple[list[Entry], bytes, Future[int]]] = []
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._io_lock = threading.Lock()  # held while writing/fsyncing and while sealing
        self._sizes: dict[int, int] = {}  # seq -> bytes, for every live segment
        self._seq = 0
        self._fd: int | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self.commits = 0  # group commits done (for /health and the benchmark)

    # ---- start / stop -------------------------------------------------------------------

    def recover(self) -> list[tuple[int, list[Entry]]]:
        """Read the segments a previous process left (oldest first); call before `open`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        found: list[tuple[int, list[Entry]]] = []
        for path in sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}")):
            seq = int(path.name[len(_PREFIX) : -len(_SUFFIX)])
            self._sizes[seq] = path.stat().st_size
            self._seq = max(self._seq, seq)
            found.append((seq, read_segment(path)))
        return found

    def open(self) -> None:
        """Open a fresh segment and start the committer thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._roll()
        self._thread = threading.Thread(target=self._commit_loop, name="spool-commit", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Commit what is queued, stop the committer, close the open segment."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._io_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                if self._sizes.get(self._seq) == 0:  # nothing was written to the open segment
                    (self.directory / _segment_name(self._seq)).unlink(missing_ok=True)
                    del self._sizes[self._seq]

    # ---- appends ------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        """Bytes in live segments plus bytes queued for the next commit."""
        return sum(self._sizes.values()) + self._queued_bytes

    def append(self, entries: list[Entry]) -> Future[int]:
        """Queue entries for the next group commit; the future completes (with the segment's
        sequence number) once they are fsynced. Raises `SpoolFull` at the bound."""
        data = b"".join(e.encode() for e in entries)
        future: Future[int] = Future()
        with self._cond:
            if self._closing:
                raise RuntimeError("spool is closed")
            used = self.used_bytes
            if used + len(data) > self.max_bytes:
                raise SpoolFull(used, self.max_bytes)
            self._queue.append((entries, data, future))
            self._queued_bytes += len(data)
            self._cond.notify()
        return future

    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue and self._closing:
                    return
                batch, self._queue = self._queue, []
            try:
                with self._io_lock:
                    seq = self._write(b"".join(data for _, data, _ in batch))
                    for entries, _, _ in batch:
                        self._on_durable(seq, entries)
            except BaseException as err:  # noqa: BLE001 - every waiting request must hear of it
                log.exception("spool commit failed")
                for _, _, future in batch:
                    future.set_exception(err)
            else:
                self.commits += 1
                for _, _, future in batch:
                    future.set_result(seq)
            finally:
                with self._cond:
                    self._queued_bytes -= sum(len(data) for _, data, _ in batch)

    def _write(self, data: bytes) -> int:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self._sizes[self._seq] += len(data)
        return self._seq

    # ---- segments -----------------------------------------------------------------------

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._seq += 1
        path = self.directory / _segment_name(self._seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sizes[self._seq] = 0
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name must survive a crash too
        finally:
            os.close(dir_fd)

    def seal(self) -> int:
        """Close the open segment (if it holds anything) and open the next; returns the highest
        sequence number whose entries have all been handed to `on_durable`."""
        with self._io_lock:
            if self._fd is None:  # closed: every segment is sealed
                return self._seq
            if self._sizes.get(self._seq, 0) > 0:
                self._roll()
            return self._seq - 1

    def discard(self, upto: int) -> None:
        """Delete sealed segments with sequence ≤ `upto` (their entries are in the warehouse)."""
        with self._io_lock:
            open_seq = self._seq if self._fd is not None else None
            for seq in sorted(s for s in self._sizes if s <= upto and s != open_seq):
                (self.directory / _segment_name(seq)).unlink(missing_ok=True)
                del self._sizes[seq]

    @property
    def segments(self) -> int:
        """Live segment files, the open one included."""
        return len(self._sizes)
