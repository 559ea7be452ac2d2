"""The embedded store's owner lock.

chDB lets one process open a store directory; a second process gets an opaque engine error.
Before opening, the owner takes an exclusive `flock` on `<store>.lock` and writes its pid and
command line there, so that a second opener is refused with a message naming the holder and
pointing it at the service's HTTP API instead. The kernel releases the lock when the holder
dies, so a crashed owner never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from warehouse.errors import StoreLocked


class StoreLock:
    """An exclusive, process-lifetime lock on one embedded store directory."""

    def __init__(self, store: Path) -> None:
        self.path = store.parent / f"{store.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `StoreLocked` naming the holding process."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StoreLocked(
                f"the embedded warehouse at {self.path.parent} is held by {holder}. "
                "chDB allows one process per store: while the llmledger service runs, use its HTTP API "
                "(the dashboards and `llmledger` commands with --api do), or stop that process first, "
                "or point LLMLEDGER_WAREHOUSE__URL at a ClickHouse server."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{' '.join(sys.argv)}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").splitlines()
    except OSError:
        return "another process"
    if not text:
        return "another process"
    pid = text[0].strip()
    command = text[1].strip() if len(text) > 1 else ""
    return f"process {pid} ({command})" if command else f"process {pid}"
