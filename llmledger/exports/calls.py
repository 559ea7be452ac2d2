"""Parquet export of stored calls for a range, streamed: the range is cut at hour boundaries into
chunks of at most `chunk_rows` calls (an hour is never split, so one very busy hour is the bound),
each chunk read from the warehouse and written as its own row group. Memory holds one chunk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from warehouse.client import Warehouse
from warehouse.queries import calls_export
from warehouse.queries.scope import Filters, Scope

HOUR = timedelta(hours=1)


def chunks(hours: list[tuple[datetime, int]], chunk_rows: int, start: datetime, end: datetime
           ) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive [from, to) sub-ranges of [start, end) holding at most `chunk_rows` calls each
    (or one hour, when an hour alone holds more)."""
    lo, rows = None, 0
    for hour, n in hours:
        if lo is not None and rows + n > chunk_rows:
            yield max(lo, start), min(hour, end)
            lo, rows = None, 0
        if lo is None:
            lo = hour
        rows += n
    if lo is not None:
        yield max(lo, start), end


def export_calls(wh: Warehouse, scope: Scope, start: datetime, end: datetime, out: Path,
                 filters: Filters | None = None, *, chunk_rows: int = 200_000) -> int:
    """Write the calls of [start, end) to `out` (Parquet, zstd); returns the rows written."""
    hours = calls_export.hour_counts(wh, scope, start, end, filters)
    schema = calls_export.calls_between(wh, scope, start, end, filters, limit_zero=True).schema
    written = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for lo, hi in chunks(hours, chunk_rows, start, end):
            table = calls_export.calls_between(wh, scope, lo, hi, filters)
            writer.write_table(table.cast(schema))
            written += table.num_rows
    return written
