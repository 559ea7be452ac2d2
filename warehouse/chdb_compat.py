"""Fixes for clickhouse-connect's experimental chDB interface, kept in this one place.

- Inserts and `INSERT … SELECT` commands report no `written_rows` through the chDB backend
  (its summary maps only read statistics), although chDB's result knows them. The ingest path
  needs the count to tell new rows from duplicates, so the summary is extended here.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver._backend import chdb_backend

_original_summary = chdb_backend.ChdbBackend._summary


def _summary_with_writes(result: Any) -> dict[str, Any]:
    summary = _original_summary(result)
    try:
        summary["written_rows"] = str(result.rows_written())
        summary["written_bytes"] = str(result.bytes_written())
    except Exception:  # noqa: BLE001 - older chDB results lack write statistics
        pass
    return summary


def apply() -> None:
    """Install the fixes (idempotent)."""
    if chdb_backend.ChdbBackend._summary is not _summary_with_writes:  # type: ignore[comparison-overlap]
        chdb_backend.ChdbBackend._summary = staticmethod(_summary_with_writes)  # type: ignore[assignment]
