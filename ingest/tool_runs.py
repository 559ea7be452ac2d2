"""Idempotent writes of tool / sandbox runs (the `tool_runs` table).

Same approach as calls, without pricing: the batch is read in place by the engine and anti-joined
on (`project`, `event_id`) against stored runs in its time range; each write is tagged with a `batch_id`.
"""

from __future__ import annotations

import uuid

import polars as pl

from ingest.writer import conform_to
from warehouse.client import ARROW_RELATION, Warehouse


class ToolRunWriter:
    """Writes batches of tool runs; duplicates (same project and event_id) are dropped."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.columns = {k: v for k, v in wh.table_columns("tool_runs").items() if k != "ingested_at"}
        column_list = ", ".join(f"`{c}`" for c in self.columns)
        self._insert = (
            f"INSERT INTO tool_runs ({column_list}) SELECT {column_list} FROM {ARROW_RELATION} "
            "WHERE (project, event_id) NOT IN (SELECT project, event_id FROM tool_runs "
            "WHERE ts >= {lo:DateTime64(3, 'UTC')} AND ts <= {hi:DateTime64(3, 'UTC')}) "
            "LIMIT 1 BY project, event_id"
        )

    def write(self, frame: pl.DataFrame) -> int:
        """Insert the new runs of a batch; returns how many were written."""
        if frame.height == 0:
            return 0
        if "source" not in frame.columns:
            frame = frame.with_columns(pl.lit("unknown").alias("source"))
        batch_id = uuid.uuid4().hex
        batch = conform_to(frame.with_columns(pl.lit(batch_id).alias("batch_id")), self.columns)
        lo, hi = batch["ts"].min(), batch["ts"].max()
        self.wh.written_rows_over_arrow(self._insert, batch, {"lo": lo, "hi": hi}, structure=self.columns,
                                        tag="ingest:tool_runs", idempotent=True)
        # The engine's written-rows count includes the rows the rollup view wrote; count ours.
        return int(self.wh.scalar(
            "SELECT count() FROM tool_runs WHERE ts >= {lo:DateTime64(3, 'UTC')} AND ts <= {hi:DateTime64(3, 'UTC')} "
            "AND batch_id = {batch:String}",
            {"lo": lo, "hi": hi, "batch": batch_id},
            tag="ingest:tool_runs_written",
        ))
