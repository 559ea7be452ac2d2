"""The write-ahead spool on a real filesystem: group commits, recovery, torn tails, the bound."""

from __future__ import annotations

from concurrent.futures import wait
from pathlib import Path

import pytest

from ingest.spool import Entry, EntryKind, Spool, SpoolFull, read_segment


def _spool(directory: Path, seen: list[tuple[int, bytes]], max_bytes: int = 1 << 20) -> Spool:
    return Spool(directory, max_bytes=max_bytes, on_durable=lambda seq, es: seen.extend((seq, e.payload) for e in es))


def test_appends_are_durable_in_order_and_recovered(tmp_path: Path) -> None:
    seen: list[tuple[int, bytes]] = []
    spool = _spool(tmp_path, seen)
    spool.open()
    futures = [spool.append([Entry(EntryKind.CALLS, f"p{i}".encode())]) for i in range(200)]
    wait(futures)
    assert [p for _, p in seen] == [f"p{i}".encode() for i in range(200)]
    assert spool.commits < 200  # grouped
    sealed = spool.seal()
    spool.append([Entry(EntryKind.DEAD_LETTERS, b"late")]).result()
    spool.close()  # no discard: as after a crash

    again: list[tuple[int, bytes]] = []
    recovered = _spool(tmp_path, again).recover()
    assert [seq for seq, _ in recovered] == [sealed, sealed + 1]
    assert [e.payload for _, entries in recovered for e in entries] == [p for _, p in seen]
    assert seen[-1] == (sealed + 1, b"late")


def test_torn_tail_is_dropped_and_discard_deletes(tmp_path: Path) -> None:
    seen: list[tuple[int, bytes]] = []
    spool = _spool(tmp_path, seen)
    spool.open()
    spool.append([Entry(EntryKind.CALLS, b"whole")]).result()
    spool.close()
    segment = next(tmp_path.glob("seg-*.wal"))
    with segment.open("ab") as handle:  # a write cut short by kill -9
        handle.write(Entry(EntryKind.CALLS, b"never acknowledged").encode()[:-3])
    assert [e.payload for e in read_segment(segment)] == [b"whole"]
    spool = _spool(tmp_path, seen)
    (seq, _), = spool.recover()
    spool.open()
    spool.discard(seq)
    assert not segment.exists()
    spool.close()
    assert list(tmp_path.glob("seg-*.wal")) == []  # the empty open segment goes on close


def test_bound_refuses_appends(tmp_path: Path) -> None:
    spool = _spool(tmp_path, [], max_bytes=1000)
    spool.open()
    spool.append([Entry(EntryKind.CALLS, b"x" * 600)]).result()
    with pytest.raises(SpoolFull):
        spool.append([Entry(EntryKind.CALLS, b"x" * 600)])
    spool.discard(spool.seal())
    spool.append([Entry(EntryKind.CALLS, b"x" * 600)]).result()
    spool.close()
