"""A crash can cut a flush after `calls` committed its part but before the rollup views' parts:
the replayed segment then finds its rows already stored (duplicates), and the replay must bring
the rollups back in line with `calls` (kill -9 tests read spend per user from the rollups)."""

from __future__ import annotations

from pathlib import Path

import orjson

from ingest.flusher import PushSpool, encode
from ingest.formats.events import parse_events
from ingest.pipeline import Pipeline
from tests.factories import make_call
from warehouse.client import Warehouse


def _spool(pipeline: Pipeline, directory: Path) -> PushSpool:
    return PushSpool(pipeline, directory, max_bytes=1 << 24, flush_interval_s=3600, flush_rows=1 << 30)


def _user_calls(wh: Warehouse, table: str) -> int:
    column = "calls" if table == "calls_user_hourly" else "1"
    return int(wh.scalar(f"SELECT sum({column}) FROM {table} WHERE user_id LIKE 'replay-%'"))


def test_replay_that_meets_its_rows_stored_rebuilds_the_rollups_they_missed(pipeline: Pipeline, tmp_path: Path) -> None:
    wh = pipeline.wh
    records = [make_call(event_id=f"replay-{i}", user_id=f"replay-{i}") for i in range(20)]
    prepared = pipeline.prepare(parse_events(orjson.dumps(records)), source="api", cast=False)
    first = _spool(pipeline, tmp_path / "spool")
    first.spool.recover()
    first.spool.open()  # the spool alone: this "process" never flushes
    first.submit(encode(prepared)).result()  # acknowledged: on disk
    first.spool.close()  # it dies before its flusher deletes the segment ...
    pipeline.commit(pipeline.prepare(parse_events(orjson.dumps(records)), source="api"), source="api")
    # ... but after the flush's insert reached `calls`, not the views
    wh.command("ALTER TABLE calls_user_hourly DELETE WHERE user_id LIKE 'replay-%' SETTINGS mutations_sync = 2")
    assert _user_calls(wh, "calls") == 20 and _user_calls(wh, "calls_user_hourly") == 0

    second = _spool(pipeline, tmp_path / "spool")
    second.start()  # replays the segment
    try:
        second.flush()
    finally:
        second.stop()
    assert second.stats.replayed_entries == 1 and second.stats.flushed_duplicates == 20
    assert _user_calls(wh, "calls") == 20  # nothing written twice
    assert _user_calls(wh, "calls_user_hourly") == 20  # and the rollup counts every call again
