"""Canonical records built by a format adapter, as a `RawBatch` the pipeline can prepare.

Adapters map foreign payloads to plain dicts of canonical fields; `records_batch` turns them into
a Polars frame in one columnar construction and keeps the original payloads, serialised only for
the (rare) records that end up dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import polars as pl

from ingest.readers import RawBatch
from ingest.schema import READ_SCHEMA

# Adapters hand over `ts` as epoch milliseconds; the rest uses the read schema's types.
_SCHEMA = {**READ_SCHEMA, "ts": pl.Int64()}
_SCHEMA.pop("usage")


class PayloadDump(Sequence[bytes]):
    """The original payloads as JSON, serialised on demand (only dead-lettered rows are read)."""

    def __init__(self, payloads: Sequence[Any]) -> None:
        self._payloads = payloads

    def __len__(self) -> int:
        return len(self._payloads)

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        return orjson.dumps(self._payloads[index], default=str)


def records_batch(records: list[dict[str, Any]], payloads: Sequence[Any]) -> RawBatch:
    """A RawBatch of canonical records (`ts` in epoch ms, UTC); row i came from `payloads[i]`."""
    frame = pl.from_dicts(records, schema=_SCHEMA) if records else pl.DataFrame(schema=_SCHEMA)
    frame = frame.with_columns(pl.from_epoch("ts", "ms").dt.replace_time_zone("UTC"))
    return RawBatch(frame, raw_lines=PayloadDump(payloads))  # type: ignore[arg-type]
