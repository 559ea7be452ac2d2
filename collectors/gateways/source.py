"""Reading a gateway export in bounded batches, every field as text.

JSON lines (optionally gzipped) stream in byte chunks through the ingest readers (a bad line is
isolated, not fatal); a JSON document (an array, or `{"data": [...]}`) is loaded whole and
re-chunked as lines — use JSON lines for exports larger than memory; CSV streams in row batches;
Parquet by row group, nested columns as JSON text. Nested JSON objects are kept as their JSON
text, so CSV exports (where they are text already) and JSON exports map the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq

from collectors.errors import ImportFormatError
from ingest.readers import RawBatch, parse_jsonl_chunk, read_jsonl


def detect(path: Path, fmt: str) -> str:
    """The format to read: `fmt` unless "auto", else from the name (`.json` is sniffed: an array or
    `{"data": …}` document, else JSON lines)."""
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last in {".jsonl", ".ndjson"}:
        return "jsonl"
    if last == ".json":
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
        if head.startswith(b"[") or re.match(rb'\{\s*"data"\s*:\s*\[', head):
            return "json"  # an array, or an API answer `{"data": [...]}` (compact ones are one line)
        first_line = head.split(b"\n", 1)[0]
        return "jsonl" if first_line.rstrip().endswith(b"}") else "json"
    if last in {".csv", ".tsv"}:
        return "csv"
    if last in {".parquet", ".pq"}:
        return "parquet"
    raise ImportFormatError(f"cannot tell the format of {path.name}; name it .jsonl/.json/.csv/.parquet or pass --format")


def read_source(
    path: Path,
    fmt: str,
    columns: Sequence[str],
    *,
    batch_rows: int,
    batch_bytes: int,
) -> Iterator[RawBatch]:
    """Batches whose frames have exactly `columns`, all `pl.String` (absent fields are null)."""
    if not path.is_file():
        raise ImportFormatError(f"no such file: {path}")
    schema = {c: pl.String() for c in columns}
    kind = detect(path, fmt)
    if kind == "jsonl":
        yield from read_jsonl(path, batch_bytes, schema)
    elif kind == "json":
        yield from _read_json_document(path, schema, batch_rows)
    elif kind == "csv":
        yield from _read_csv(path, columns, batch_rows)
    elif kind == "parquet":
        yield from _read_parquet(path, columns, batch_rows)
    else:
        raise ImportFormatError(f"unsupported format {kind!r}")


def _read_json_document(path: Path, schema: dict[str, pl.DataType], batch_rows: int) -> Iterator[RawBatch]:
    """A JSON array or `{"data": [...]}` document, loaded whole and re-chunked as JSON lines."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as err:
        raise ImportFormatError(f"{path.name} is not valid JSON: {err}") from err
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise ImportFormatError(f"{path.name}: expected a JSON array of records or {{'data': [...]}}")
    for first in range(0, len(document), batch_rows):
        chunk = b"\n".join(orjson.dumps(item) for item in document[first:first + batch_rows]) + b"\n"
        yield parse_jsonl_chunk(chunk, first + 1, None, schema)


def _read_csv(path: Path, columns: Sequence[str], batch_rows: int) -> Iterator[RawBatch]:
    separator = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    header = pl.read_csv(path, n_rows=0, separator=separator, infer_schema=False).columns
    if not set(header) & set(columns):
        raise ImportFormatError(f"{path.name}: none of the expected columns ({', '.join(list(columns)[:6])}, …) "
                                f"in its header ({', '.join(header[:6])}, …)")
    lazy = pl.scan_csv(path, infer_schema=False, separator=separator)
    first = 2  # line 1 is the header
    unknown = set(header) - set(columns)
    for frame in lazy.collect_batches(chunk_size=batch_rows):
        yield RawBatch(_project(frame, columns), first_line=first, unknown_fields=unknown)
        first += frame.height


def _read_parquet(path: Path, columns: Sequence[str], batch_rows: int) -> Iterator[RawBatch]:
    parquet = pq.ParquetFile(path)
    first = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        frame = pl.from_arrow(record_batch)
        assert isinstance(frame, pl.DataFrame)
        unknown = set(frame.columns) - set(columns)
        yield RawBatch(_project(frame, columns), first_line=first, unknown_fields=unknown)
        first += frame.height


def _project(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """`columns` as text: absent ones null, nested ones JSON-encoded."""
    exprs: list[pl.Expr] = []
    for name in columns:
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=pl.String).alias(name))
            continue
        dtype = frame.schema[name]
        if isinstance(dtype, pl.Struct):
            exprs.append(pl.col(name).struct.json_encode().alias(name))
        elif isinstance(dtype, (pl.List, pl.Array)):
            exprs.append(pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")
                         .alias(name))
        else:
            exprs.append(pl.col(name).cast(pl.String).alias(name))
    return frame.select(exprs)


def require_any(batch: RawBatch, columns: Sequence[str], what: str) -> None:
    """Refuse a first batch in which none of `columns` has a value: the file is not `what`."""
    if batch.frame.height == 0:
        return
    if all(batch.frame[c].null_count() == batch.frame.height for c in columns if c in batch.frame.columns):
        found = sorted(batch.unknown_fields)[:8]
        raise ImportFormatError(f"this does not look like {what}: no {' / '.join(columns)} values"
                                + (f"; its fields include {', '.join(found)}" if found else ""))

