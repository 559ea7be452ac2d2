"""Collector bookkeeping in the warehouse: resumable cursors and one record per run.

A cursor is saved after every written batch (the latest row per collector wins), so a collector
killed mid-run resumes where its last durable batch ended. An unreadable cursor is reported and
ignored — the collector then back-fills, which replacement and deduplication make safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from warehouse.client import Warehouse

log = logging.getLogger(__name__)


def load_cursor(wh: Warehouse, collector: str) -> tuple[dict[str, Any] | None, str | None]:
    """(cursor, problem): the collector's saved cursor, or None with a note when it is unusable."""
    text = wh.scalar(
        "SELECT argMax(cursor, updated_at) FROM collector_cursors WHERE collector = {c:String} HAVING count() > 0",
        {"c": collector},
        tag=f"collect:{collector}:cursor",
    )
    if text is None or text == "":
        return None, None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        return None, f"ignored an unreadable cursor ({err}); reading from the back-fill start"
    if not isinstance(value, dict):
        return None, "ignored a cursor that is not a JSON object; reading from the back-fill start"
    return value, None


def save_cursor(wh: Warehouse, collector: str, cursor: dict[str, Any]) -> None:
    """Persist the collector's position (called after each durable batch)."""
    wh.command(
        "INSERT INTO collector_cursors (collector, cursor, updated_at) VALUES ({c:String}, {v:String}, now64(3))",
        {"c": collector, "v": orjson.dumps(cursor).decode()},
        tag=f"collect:{collector}:cursor",
    )


def reset_cursor(wh: Warehouse, collector: str) -> None:
    """Forget a collector's position: its next run back-fills."""
    save_cursor(wh, collector, {})


@dataclass
class RunReport:
    """What one collector run did; also what `collector_runs` records."""

    collector: str
    run_id: str
    project: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    error_kind: str = ""
    error: str = ""
    batches: int = 0
    written: int = 0
    duplicates: int = 0
    dead: int = 0
    by_output: dict[str, int] = field(default_factory=dict)
    data_through: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the run finished without error."""
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "collector": self.collector, "run_id": self.run_id, "status": self.status,
            "error_kind": self.error_kind, "error": self.error, "batches": self.batches, "written": self.written,
            "duplicates": self.duplicates, "dead_lettered": self.dead, "by_output": dict(self.by_output),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "data_through": self.data_through.isoformat() if self.data_through else None, "notes": self.notes,
        }


def record_run(wh: Warehouse, report: RunReport) -> None:
    """Append the run's outcome to `collector_runs`."""
    report.finished_at = report.finished_at or datetime.now(UTC)
    wh.command(
        "INSERT INTO collector_runs (run_id, collector, project, started_at, finished_at, status, error_kind, error, "
        "batches, rows_written, rows_duplicate, rows_dead, data_through) VALUES ({id:String}, {c:String}, {p:String}, "
        "{s:DateTime64(3)}, {f:DateTime64(3)}, {st:String}, {k:String}, {e:String}, {b:UInt64}, {w:UInt64}, "
        "{d:UInt64}, {x:UInt64}, {t:Nullable(DateTime64(3))})",
        {
            "id": report.run_id, "c": report.collector, "p": report.project, "s": report.started_at,
            "f": report.finished_at, "st": report.status, "k": report.error_kind, "e": report.error[:4000],
            "b": report.batches, "w": report.written, "d": report.duplicates, "x": report.dead,
            "t": report.data_through,
        },
        tag=f"collect:{report.collector}:run",
    )
