"""Batched, idempotent, priced writes of canonical calls, and dead letters.

A batch is read by the engine where it is (embedded: the Arrow table in place; server: the
request body through `input()`) by one `INSERT INTO calls … SELECT` that prices it against
`prices` and drops duplicates (`ingest/sql`).
So pricing is one join inside the engine and deduplication an anti-join on the batch's time
range — no per-row Python and no FINAL on reads. One writer per process serialises batches
(chDB is single-writer per store anyway); the lock also guards price reloads and reprices.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from warehouse.client import ARROW_RELATION, Warehouse, load_sql

_SQL_PACKAGE = "ingest.sql"

# a batch has the calls columns with these changes: tags arrive as JSON text
_STAGE_TYPE_OVERRIDES = {"tags": "String"}


def polars_type(clickhouse_type: str) -> pl.DataType:
    """The Polars type an Arrow column must have to land in a ClickHouse column of this type."""
    inner = clickhouse_type
    if inner.startswith("Array("):
        return pl.List(polars_type(inner[len("Array(") : -1]))
    nullable = inner.startswith("Nullable(")
    if nullable:
        inner = inner[len("Nullable(") : -1]
    if inner.startswith("LowCardinality("):
        inner = inner[len("LowCardinality(") : -1]
    if inner.startswith("DateTime64"):
        return pl.Datetime("ms", "UTC")
    if inner.startswith("Decimal"):
        return pl.Decimal(38, 18)
    simple: dict[str, pl.DataType] = {
        "String": pl.String(),
        "Bool": pl.Boolean(),
        "UInt8": pl.UInt8(),
        "UInt16": pl.UInt16(),
        "UInt32": pl.UInt32(),
        "UInt64": pl.UInt64(),
        "Int64": pl.Int64(),
        "Float32": pl.Float32(),
        "Float64": pl.Float64(),
    }
    if inner in simple:
        return simple[inner]
    raise ValueError(f"no Polars mapping for ClickHouse type {clickhouse_type}")


def conform_to(frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Select and cast `frame` to a table's columns, in the table's order.

    Absent columns are added; non-nullable targets get their type's zero value for nulls
    (empty string, 0, false), so the engine never has to guess a default.
    """
    exprs: list[pl.Expr] = []
    schema = frame.schema  # built once: each `frame.schema` builds the whole mapping anew
    for name, ch_type in columns.items():
        dtype = polars_type(ch_type)
        if name not in schema:
            expr = pl.lit(None, dtype=dtype)
        elif schema[name] != dtype:
            expr = pl.col(name).cast(dtype, strict=False)
        else:
            expr = pl.col(name)
        if not ch_type.startswith("Nullable("):
            if dtype == pl.String:
                expr = expr.fill_null("")
            elif dtype == pl.Boolean:
                expr = expr.fill_null(False)
            elif dtype.is_numeric():
                expr = expr.fill_null(0)
        exprs.append(expr.alias(name))
    return frame.select(exprs)


@dataclass(frozen=True)
class WriteResult:
    """What became of one staged batch."""

    staged: int
    written: int
    unpriced: dict[tuple[str, str], int]

    @property
    def duplicates(self) -> int:
        return self.staged - self.written


class CallWriter:
    """Writes batches of normalised, validated calls into `calls`."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.lock = threading.RLock()
        self._calls_columns = wh.table_columns("calls")
        self._stage_columns = {**self._calls_columns, **_STAGE_TYPE_OVERRIDES}
        columns = ", ".join(f"`{name}`" for name in self._calls_columns)
        staged = load_sql(_SQL_PACKAGE, "staged_calls.sql").replace("__STAGE__", ARROW_RELATION)
        priced = load_sql(_SQL_PACKAGE, "price_calls.sql").replace("__SOURCE__", f"({staged})")
        # Duplicates are already gone (anti-join, LIMIT 1 BY), so the engine's own in-block
        # ReplacingMergeTree collapse would only cost time: about 60% of the insert.
        self._promote = (
            f"INSERT INTO calls ({columns}) SELECT {columns} FROM ({priced}) SETTINGS optimize_on_insert = 0"
        )
        self.refresh_prices()

    @property
    def calls_columns(self) -> dict[str, str]:
        """Column name → ClickHouse type of the `calls` table."""
        return self._calls_columns

    def refresh_prices(self) -> None:
        """Re-read which (provider, model) pairs have prices (after a price load)."""
        self._priced = self.wh.query_df("SELECT DISTINCT provider, model FROM prices", tag="ingest:priced-models")

    def prepare(self, frame: pl.DataFrame, *, batch_id: str, ingested_at: datetime) -> pl.DataFrame:
        """The batch cast to the staging columns (pure Polars; safe to run in another thread)."""
        return conform_to(
            frame.with_columns(
                pl.lit(batch_id).alias("batch_id"),
                pl.lit(ingested_at).cast(pl.Datetime("ms", "UTC")).alias("ingested_at"),
            ),
            self._stage_columns,
        )

    def trim(self, frame: pl.DataFrame, *, ingested_at: datetime) -> pl.DataFrame:
        """The batch's stored columns in their read types, stamped `ingested_at`, not cast: `prepare`
        casts them later (the push spool's rows are cast once per flush, not once per request)."""
        kept = [name for name in frame.columns if name in self._stage_columns and name != "ingested_at"]
        return frame.select(kept).with_columns(
            pl.lit(ingested_at).cast(pl.Datetime("ms", "UTC")).alias("ingested_at"))

    def write(self, frame: pl.DataFrame, *, batch_id: str, ingested_at: datetime) -> WriteResult:
        """Price and insert one batch; returns counts. Duplicates are dropped, not errors."""
        return self.write_prepared(self.prepare(frame, batch_id=batch_id, ingested_at=ingested_at))

    def write_prepared(self, staged: pl.DataFrame) -> WriteResult:
        """Price and insert a batch made by `prepare`."""
        if staged.height == 0:
            return WriteResult(0, 0, {})
        lo, hi = staged["ts"].min(), staged["ts"].max()
        unpriced = (
            staged.join(self._priced, on=["provider", "model"], how="anti")
            .group_by("provider", "model")
            .len()
        )
        with self.lock:
            # Safe to retry: the anti-join drops whatever an interrupted attempt already wrote.
            self.wh.written_rows_over_arrow(
                self._promote, staged, {"lo": lo, "hi": hi}, structure=self._stage_columns, tag="ingest:promote",
                idempotent=True,
            )
            # The engine's written-rows count includes the rows the rollup views wrote; count ours.
            written = int(self.wh.scalar(
                "SELECT count() FROM calls WHERE ts >= {lo:DateTime64(3, 'UTC')} AND ts <= {hi:DateTime64(3, 'UTC')} "
                "AND batch_id = {batch:String}",
                {"lo": lo, "hi": hi, "batch": staged["batch_id"][0]},
                tag="ingest:written",
            ))
        return WriteResult(staged.height, written, {(p, m): n for p, m, n in unpriced.iter_rows()})

    def close(self) -> None:
        """Nothing to release: batches are never staged on the server."""


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be ingested."""

    source: str
    reason: str
    detail: str
    line_no: int
    raw: bytes
    event_id: str = ""


def dead_letter_id(letter: DeadLetter) -> str:
    """The letter's content id: the same bad record read again (a re-ingested file, a replayed
    spool segment) gets the same id."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (letter.source, letter.reason, str(letter.line_no), letter.event_id or ""):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(letter.raw)
    return digest.hexdigest()


def write_dead_letters(wh: Warehouse, letters: list[DeadLetter], *, batch_id: str, max_raw_bytes: int) -> int:
    """Store dead letters not stored before (by content id); each raw payload is capped at
    `max_raw_bytes`, its full size and a truncation flag kept. Returns how many were stored. Only
    the (rare) bad records come through here, so this is plain Python."""
    ids = [dead_letter_id(d) for d in letters]
    if letters:
        stored = {row[0] for row in wh.query_rows(
            "SELECT DISTINCT letter_id FROM dead_letters WHERE letter_id IN {ids:Array(String)}",
            {"ids": sorted(set(ids))}, tag="ingest:dead_letters:seen")}
        fresh = {}
        for letter_id, letter in zip(ids, letters, strict=True):
            if letter_id not in stored:
                fresh.setdefault(letter_id, letter)
        ids, letters = list(fresh), list(fresh.values())
    if not letters:
        return 0
    frame = pl.DataFrame(
        {
            "batch_id": [batch_id] * len(letters),
            "letter_id": ids,
            "source": [d.source for d in letters],
            "reason": [d.reason for d in letters],
            "detail": [d.detail for d in letters],
            "line_no": pl.Series([d.line_no for d in letters], dtype=pl.UInt64),
            "event_id": [d.event_id or "" for d in letters],
            "raw": [d.raw[:max_raw_bytes].decode("utf-8", errors="replace") for d in letters],
            "raw_bytes": pl.Series([len(d.raw) for d in letters], dtype=pl.UInt64),
            "raw_truncated": [len(d.raw) > max_raw_bytes for d in letters],
        }
    )
    return wh.insert_arrow("dead_letters", frame, tag="ingest:dead_letters", small=True)
