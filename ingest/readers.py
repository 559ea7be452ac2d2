"""Bounded-memory readers: JSONL (optionally gzipped), CSV and Parquet files as batches of raw records.

A batch is a Polars frame in the read schema plus what the dead-letter path needs: the source
line of each row and the rows that could not be parsed at all. JSONL is read in byte chunks cut
at line ends and parsed by Polars in one call per chunk; only a chunk that fails to parse is
bisected to isolate its bad lines, so clean input never pays per-line costs.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq

from ingest.formats import jsonvalues
from ingest.schema import READ_SCHEMA
from ingest.validate import Reason

KNOWN_FIELDS = frozenset(READ_SCHEMA)
_SAMPLE_LINES = 200


class FileFormat(StrEnum):
    """Input file formats."""

    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


def detect_format(path: Path) -> FileFormat:
    """The format implied by a file name (`.jsonl`, `.ndjson`, `.json`, `.csv`, `.parquet`, each optionally `.gz`)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in {".jsonl", ".ndjson", ".json"}:
        return FileFormat.JSONL
    if last in {".csv", ".tsv"}:
        return FileFormat.CSV
    if last in {".parquet", ".pq"}:
        return FileFormat.PARQUET
    raise ValueError(f"cannot tell the format of {path.name}; name it .jsonl, .csv or .parquet or pass --format")


@dataclass
class ParseFailure:
    """A record that could not be read at all."""

    line_no: int
    reason: Reason
    detail: str
    raw: bytes


@dataclass
class RawBatch:
    """One batch of raw records from a source."""

    frame: pl.DataFrame
    line_numbers: list[int] | None = None  # None: row i is line first_line + i
    first_line: int = 1
    failures: list[ParseFailure] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)
    raw_lines: list[bytes] | None = None  # parallel to the frame's rows, when known
    chunk: bytes | None = None  # JSONL chunk the rows came from, when clean
    raw_rows: Callable[[list[int]], list[bytes]] | None = None  # source payloads, when the frame was mapped

    def line_no(self, row: int) -> int:
        """Source line number of a frame row."""
        return self.line_numbers[row] if self.line_numbers is not None else self.first_line + row

    def raw(self, rows: list[int]) -> list[bytes]:
        """The raw text of some frame rows (only called for dead-lettered rows)."""
        if self.raw_rows is not None:
            return self.raw_rows(rows)
        if self.raw_lines is not None:
            return [self.raw_lines[r] for r in rows]
        if self.chunk is not None:
            lines = [line for line in self.chunk.split(b"\n") if line.strip()]
            self.raw_lines = lines
            return [lines[r] for r in rows]
        return [orjson.dumps(self.frame.row(r, named=True), default=str) for r in rows]


# ---- JSONL ---------------------------------------------------------------------------


Schema = Mapping[str, pl.DataType]


def read_jsonl(path: Path, batch_bytes: int, schema: Schema = READ_SCHEMA) -> Iterator[RawBatch]:
    """Batches of about `batch_bytes` of a JSON-lines file; memory stays within a few batches.
    `schema` is the canonical read schema unless a source of another shape is read."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        yield from iter_jsonl_chunks(handle, batch_bytes, schema)


def iter_jsonl_chunks(handle: io.BufferedIOBase, batch_bytes: int, schema: Schema = READ_SCHEMA) -> Iterator[RawBatch]:
    """Batches from an open binary stream of JSON lines."""
    line_no = 1
    rest = b""
    while True:
        buf = handle.read(batch_bytes)
        if buf:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                rest += buf  # one line longer than a batch: keep reading
                continue
            # one copy of the batch (memoryview: the slice itself copies nothing)
            data, rest = b"".join((rest, memoryview(buf)[:cut])), buf[cut:]
        else:
            data, rest = rest, b""
        if not data:
            return
        newlines = data.count(b"\n")
        if not data.isspace():
            yield parse_jsonl_chunk(data, line_no, newlines, schema)
        line_no += newlines
        if not buf:
            return


def parse_jsonl_chunk(
    data: bytes, first_line: int = 1, newlines: int | None = None, schema: Schema = READ_SCHEMA
) -> RawBatch:
    """Parse one chunk of whole JSON lines (`newlines`: its count of line ends, if known)."""
    unknown = unknown_fields(data, frozenset(schema))
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=schema)
    except Exception:  # noqa: BLE001 - polars raises ComputeError and friends; isolate the bad lines
        return _parse_lines_individually(data, first_line, unknown, schema)
    lines = (data.count(b"\n") if newlines is None else newlines) + (0 if data.endswith(b"\n") else 1)
    if frame.height != lines:  # blank lines, which the parser skips: map rows to lines
        numbers = [first_line + i for i, line in enumerate(data.split(b"\n")) if line.strip()]
        return RawBatch(frame, line_numbers=numbers, first_line=first_line, unknown_fields=unknown, chunk=data)
    return RawBatch(frame, first_line=first_line, unknown_fields=unknown, chunk=data)


def _parse_lines_individually(data: bytes, first_line: int, unknown: set[str], schema: Schema) -> RawBatch:
    items = [(first_line + i, line) for i, line in enumerate(data.split(b"\n")) if line.strip()]
    frames: list[pl.DataFrame] = []
    kept: list[tuple[int, bytes]] = []
    failures: list[ParseFailure] = []

    def parse(group: list[tuple[int, bytes]]) -> None:
        try:
            frame = pl.read_ndjson(io.BytesIO(b"\n".join(line for _, line in group)), schema=schema)
        except Exception as err:  # noqa: BLE001
            if len(group) == 1:
                failures.append(_classify(group[0], err))
                return
            middle = len(group) // 2
            parse(group[:middle])
            parse(group[middle:])
            return
        if frame.height != len(group):  # a line polars skipped, e.g. whitespace-only
            for item in group:
                parse([item])
            return
        frames.append(frame)
        kept.extend(group)

    parse(items)
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return RawBatch(
        frame,
        line_numbers=[n for n, _ in kept],
        first_line=first_line,
        failures=failures,
        unknown_fields=unknown,
        raw_lines=[line for _, line in kept],
    )


def _classify(item: tuple[int, bytes], err: Exception) -> ParseFailure:
    line_no, raw = item
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as decode_error:
        try:  # NaN / Infinity, as Python's json.dumps writes them: a value of the wrong type
            detail = jsonvalues.describe(jsonvalues.loads(raw))
        except ValueError:
            detail = None
        if detail is not None:
            return ParseFailure(line_no, Reason.INVALID_TYPE, detail, raw)
        return ParseFailure(line_no, Reason.MALFORMED_JSON, f"not valid JSON: {decode_error}", raw)
    if not isinstance(value, dict):
        return ParseFailure(line_no, Reason.MALFORMED_JSON, f"expected a JSON object, got {type(value).__name__}", raw)
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return ParseFailure(line_no, Reason.INVALID_TYPE, f"a field has the wrong type: {message}", raw)


def unknown_fields(data: bytes, known: frozenset[str] = KNOWN_FIELDS) -> set[str]:
    """Top-level field names outside the schema read, from a sample of the chunk's lines."""
    names: set[str] = set()
    end = 0
    for _ in range(_SAMPLE_LINES):  # the sample's bytes, without copying the rest of the chunk
        end = data.find(b"\n", end) + 1
        if not end:
            end = len(data)
            break
    for line in data[:end].split(b"\n")[:_SAMPLE_LINES]:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            names.update(value.keys())
    return names - known


# ---- CSV and Parquet ---------------------------------------------------------------------


def read_csv(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """Batches of a CSV file with a header row; every column read as text and typed by `conform`."""
    separator = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    lazy = pl.scan_csv(path, infer_schema=False, separator=separator)
    first = 2  # line 1 is the header
    for frame in lazy.collect_batches(chunk_size=batch_rows):
        yield RawBatch(frame, first_line=first, unknown_fields=set(frame.columns) - KNOWN_FIELDS)
        first += frame.height


def read_parquet(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """Batches of a Parquet file, row group by row group."""
    parquet = pq.ParquetFile(path)
    first = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        frame = pl.from_arrow(record_batch)
        assert isinstance(frame, pl.DataFrame)
        yield RawBatch(frame, first_line=first, unknown_fields=set(frame.columns) - KNOWN_FIELDS)
        first += frame.height


def read_file(path: Path, fmt: FileFormat | None, *, batch_bytes: int, batch_rows: int) -> Iterator[RawBatch]:
    """Batches of any supported file."""
    fmt = fmt or detect_format(path)
    if fmt is FileFormat.JSONL:
        return read_jsonl(path, batch_bytes)
    if fmt is FileFormat.CSV:
        return read_csv(path, batch_rows)
    return read_parquet(path, batch_rows)
