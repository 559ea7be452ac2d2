"""The embedded store's owner lock, and how other processes find the service that holds it.

chDB lets one process open a store directory; a second process gets an opaque engine error.
Before opening, the owner takes an exclusive `flock` on `<store>.lock` and writes its pid and
command line there; the service adds where it listens and a per-run token for commands on this
machine (`StoreLock.announce`). A second opener is refused with a message naming the holder, and
`holder(store)` tells the CLI, without opening anything, whether a process holds the store and
how to reach it. The file is readable by its owner only (it may hold the token). The kernel
releases the lock when the holder dies, so a crashed owner never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.errors import StoreLocked

# A probe by `holder()` takes a shared lock for an instant; an opener retries that long and more.
ACQUIRE_RETRY_S = 1.0


@dataclass(frozen=True)
class Holder:
    """The process holding a store, as it described itself in the lock file."""

    pid: str
    command: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str | None:
        """Where the service listens (None: not announced, e.g. a batch command or a starting service)."""
        return self.fields.get("url") or None

    @property
    def token(self) -> str | None:
        """The service's token for commands on this machine."""
        return self.fields.get("token") or None

    @property
    def state(self) -> str:
        """`starting` or `serving` for the service; empty for other holders."""
        return self.fields.get("state", "")

    def describe(self) -> str:
        return f"process {self.pid} ({self.command})" if self.command else f"process {self.pid}"


def lock_path(store: Path) -> Path:
    """The lock file of a store directory."""
    return store.parent / f"{store.name}.lock"


class StoreLock:
    """An exclusive, process-lifetime lock on one embedded store directory."""

    def __init__(self, store: Path) -> None:
        self.path = lock_path(store)
        self._fd: int | None = None
        self._fields: dict[str, str] = {}

    def acquire(self) -> None:
        """Take the lock or raise `StoreLocked` naming the holding process."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + ACQUIRE_RETRY_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:  # a probe's instant, or a holder about to exit
                    time.sleep(0.05)
                    continue
                found = _parse(fd)
                os.close(fd)
                raise StoreLocked(_locked_message(self.path.parent, found)) from None
        os.fchmod(fd, 0o600)
        self._fd = fd
        self._write()

    def announce(self, **fields: str | None) -> None:
        """Record facts for other processes (the service's `url`, `token`, `state`); None removes one."""
        for key, value in fields.items():
            if value is None:
                self._fields.pop(key, None)
            else:
                self._fields[key] = value
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        lines = [str(os.getpid()), " ".join(sys.argv), *(f"{k}={v}" for k, v in self._fields.items())]
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, ("\n".join(lines) + "\n").encode(), 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(store: Path) -> Holder | None:
    """The live process holding `store`, or None when it is free (or was never opened)."""
    path = lock_path(store)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse(fd) or Holder("?")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _parse(fd: int) -> Holder | None:
    try:
        lines = os.pread(fd, 16384, 0).decode(errors="replace").splitlines()
    except OSError:
        return None
    if not lines:
        return None
    fields = dict(line.split("=", 1) for line in lines[2:] if "=" in line)
    return Holder(lines[0].strip(), lines[1].strip() if len(lines) > 1 else "", fields)


def _locked_message(store_dir: Path, found: Holder | None) -> str:
    who = found.describe() if found else "another process"
    if found is not None and found.url:
        return (f"the embedded warehouse at {store_dir} is held by the llmledger service at {found.url} ({who}); "
                "llmledger commands go through it by themselves")
    return (f"the embedded warehouse at {store_dir} is held by {who}. One process owns an embedded store: wait "
            "for it to finish or stop it, or point LLMLEDGER_WAREHOUSE__URL at a ClickHouse server.")
