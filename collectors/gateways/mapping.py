"""Column-wise building blocks for mapping a gateway's text columns onto canonical call records.

`Mapper` collects per-row problems (a number that is not one, JSON that does not parse) while
expressions are built, and `finish` turns a mapped frame into the `RawBatch` the pipeline takes:
rows with a problem become failures carrying their source line and original payload, the rest
keep theirs for the pipeline's own validation. No per-row Python unless a JSON column fails to
parse, and then only to find which rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from ingest.normalise import parse_timestamps
from ingest.readers import ParseFailure, RawBatch
from ingest.schema import CallIn
from ingest.validate import Reason

CANONICAL = frozenset(CallIn.model_fields)
_PROBLEM = "_problem"
_PROBLEM_REASON = "_problem_reason"
ANTHROPIC_PROVIDERS = ("anthropic", "bedrock", "aws", "vertex_ai", "google-vertex", "aws_bedrock")


def decode_json(series: pl.Series, dtype: pl.DataType | None = None) -> tuple[pl.Series, pl.Series]:
    """(decoded values, bad mask): JSON text decoded with `dtype` (None: inferred from every row).

    Polars decodes a whole column at once and fails whole; then the failing rows are found by
    bisection and decoded as null, flagged in the mask. Empty strings count as null.
    """
    text = series.str.strip_chars().replace("", None)
    try:
        return _decode(text, dtype), pl.Series(series.name, [False] * len(series), dtype=pl.Boolean)
    except pl.exceptions.PolarsError:
        pass
    bad = [False] * len(text)

    def check(lo: int, hi: int) -> None:
        try:
            _decode(text.slice(lo, hi - lo), dtype)
        except pl.exceptions.PolarsError:
            if hi - lo == 1:
                bad[lo] = True
                return
            mid = (lo + hi) // 2
            check(lo, mid)
            check(mid, hi)

    check(0, len(text))
    mask = pl.Series(series.name, bad, dtype=pl.Boolean)
    return _decode(text.zip_with(~mask, pl.Series([None] * len(text), dtype=pl.String)), dtype), mask


def _decode(text: pl.Series, dtype: pl.DataType | None) -> pl.Series:
    if text.null_count() == len(text):
        return pl.Series(text.name, [None] * len(text), dtype=dtype or pl.Struct({}))
    if dtype is None:
        return text.str.json_decode(infer_schema_length=None)
    return text.str.json_decode(dtype)


_SPACE_FORMAT = "%Y-%m-%d %H:%M:%S%.f"  # Postgres / CSV exports: naive, meaning UTC
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"


def timestamps(text: pl.Series) -> pl.Series:
    """UTC millisecond datetimes from text: the export's own form first (sniffed from its first
    value), then every form the ingest pipeline reads (ISO 8601, naive = UTC, epoch numbers)."""
    text = text.str.strip_chars()
    first = text.drop_nulls().head(1).to_list()
    spaced = bool(first) and len(first[0]) > 10 and first[0][10] == " " and first[0][-1:].isdigit()
    if spaced:
        parsed = text.str.to_datetime(_SPACE_FORMAT, time_unit="ms", time_zone="UTC", strict=False)
    else:
        parsed = text.str.to_datetime(_ISO_FORMAT, time_unit="ms", strict=False).dt.convert_time_zone("UTC")
    missing = parsed.is_null() & text.is_not_null()
    if missing.any():
        index = missing.arg_true()
        parsed = parsed.scatter(index, parse_timestamps(text.gather(index)))
    return parsed.alias(text.name)


def object_columns(series: pl.Series) -> tuple[pl.DataFrame, pl.Series]:
    """(one text column per key, bad mask) of a column of free-form JSON objects: every key found
    in the batch becomes a column; nested values stay JSON text."""
    decoded, bad = decode_json(series)
    if not isinstance(decoded.dtype, pl.Struct) or not decoded.dtype.fields:
        return pl.DataFrame(height=len(series)), bad
    frame = decoded.struct.unnest()
    return frame.select(
        (pl.col(name).struct.json_encode() if isinstance(dtype, pl.Struct)
         else pl.col(name).cast(pl.String) if not isinstance(dtype, pl.List)
         else pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")).alias(name)
        for name, dtype in frame.schema.items()
    ), bad


def normalise_keys(frame: pl.DataFrame, *, strip: Sequence[str] = ()) -> pl.DataFrame:
    """Lower-case keys, `-` → `_`, prefixes in `strip` removed; columns that collide are coalesced."""
    groups: dict[str, list[str]] = {}
    for name in frame.columns:
        key = name.strip().lower()
        for prefix in strip:
            key = key.removeprefix(prefix)
        key = key.replace("-", "_").replace(" ", "_")
        groups.setdefault(key, []).append(name)
    return frame.select(pl.coalesce(names).alias(key) if len(names) > 1 else pl.col(names[0]).alias(key)
                        for key, names in groups.items())


def tags_json(tags: Mapping[str, pl.Expr]) -> pl.Expr:
    """A JSON object (text) of the non-null, non-empty tags; null when there are none."""
    if not tags:
        return pl.lit(None, dtype=pl.String)
    parts = [
        pl.when(expr.cast(pl.String).fill_null("") != "")
        .then(pl.struct(expr.cast(pl.String).alias(key)).struct.json_encode().str.slice(1).str.strip_suffix("}"))
        for key, expr in tags.items()
    ]
    body = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return pl.when(body != "").then(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))


def is_anthropic(provider: pl.Expr, model: pl.Expr) -> pl.Expr:
    """Calls whose native usage reports input *excluding* cache reads and writes (Claude on the
    Anthropic API, Bedrock or Vertex)."""
    return provider.str.to_lowercase().str.contains("anthropic") | model.str.to_lowercase().str.contains("claude")


class Mapper:
    """Builds canonical columns from a source frame, noting rows whose values cannot be read."""

    def __init__(self, source: pl.DataFrame) -> None:
        self.frame = source
        self.problems: list[tuple[pl.Expr, Reason]] = []

    def integer(self, expr: pl.Expr, label: str) -> pl.Expr:
        """A count from text ("12", "12.0", " 12 "); anything else flags the row."""
        text = expr.cast(pl.String).str.strip_chars()
        number = text.cast(pl.Float64, strict=False)
        value = pl.when(number == number.floor()).then(number).cast(pl.Int64, strict=False)
        self.problems.append((pl.when(text.is_not_null() & (text != "") & value.is_null())
                              .then(pl.format("{} {} is not a whole number", pl.lit(label), text)), Reason.INVALID_TYPE))
        return value

    def timestamp(self, column: str, *, required: bool = False) -> pl.Series:
        """A text column of the source as UTC datetimes; unreadable values flag the row (as do
        missing ones when `required`)."""
        text = self.frame[column]
        parsed = timestamps(text)
        unreadable = parsed.is_null() & text.is_not_null() & (text.str.strip_chars() != "")
        if unreadable.any():
            self.problems.append((pl.when(pl.lit(unreadable)).then(
                pl.format("{} {} is not ISO 8601 or epoch time", pl.lit(column), pl.lit(text))), Reason.INVALID_TIMESTAMP))
        if required:
            absent = text.is_null() | (text.str.strip_chars() == "")
            if absent.any():
                self.problems.append((pl.when(pl.lit(absent)).then(pl.lit(f"no {column}: every call needs its start time")),
                                      Reason.MISSING_TIMESTAMP))
        return parsed

    def decimal(self, expr: pl.Expr, label: str) -> pl.Expr:
        """An exact decimal from its text; anything else flags the row."""
        text = expr.cast(pl.String).str.strip_chars()
        value = text.cast(pl.Decimal(38, 18), strict=False)
        self.problems.append((pl.when(text.is_not_null() & (text != "") & value.is_null())
                              .then(pl.format("{} {} is not a decimal number", pl.lit(label), text)), Reason.INVALID_TYPE))
        return value

    def json(self, column: str, dtype: pl.DataType | None = None) -> pl.Series:
        """A JSON text column of the source decoded (rows that do not parse are flagged, read as null)."""
        return self.json_series(self.frame[column], dtype, column)

    def json_series(self, series: pl.Series, dtype: pl.DataType | None, label: str) -> pl.Series:
        """A series of JSON text decoded (rows that do not parse are flagged, read as null)."""
        decoded, bad = decode_json(series, dtype)
        if bad.any():
            self.problems.append((pl.when(pl.lit(bad)).then(pl.lit(f"{label} is not valid JSON of the expected shape")),
                                  Reason.MALFORMED_JSON))
        return decoded

    def objects(self, series: pl.Series, label: str, *, strip: Sequence[str] = ()) -> pl.DataFrame:
        """A series of free-form JSON objects as one text column per (normalised) key."""
        frame, bad = object_columns(series)
        if bad.any():
            self.problems.append((pl.when(pl.lit(bad)).then(pl.lit(f"{label} is not a JSON object")),
                                  Reason.MALFORMED_JSON))
        return normalise_keys(frame, strip=strip) if frame.width else frame

    def finish(self, raw: RawBatch, mapped: pl.DataFrame, *, exclude: pl.Series | None = None) -> RawBatch:
        """The pipeline's batch: canonical columns of the good rows, failures for the flagged ones.

        Problem expressions are evaluated on `self.frame` (set it to the frame they refer to);
        rows in `exclude` were routed elsewhere (e.g. tool runs) and are left out entirely."""
        if self.problems:
            reason = pl.coalesce([pl.when(expr.is_not_null()).then(pl.lit(r.value)) for expr, r in self.problems])
            detail = pl.coalesce([expr for expr, _ in self.problems])
            flags = self.frame.select(detail.alias(_PROBLEM), reason.alias(_PROBLEM_REASON))
        else:
            flags = pl.DataFrame({_PROBLEM: [None] * mapped.height, _PROBLEM_REASON: [None] * mapped.height},
                                 schema={_PROBLEM: pl.String, _PROBLEM_REASON: pl.String})
        canonical = mapped.select([c for c in mapped.columns if c in CANONICAL])
        if exclude is not None and exclude.any():
            keep = ~exclude
            flags, canonical, raw = flags.filter(keep), canonical.filter(keep), subset_batch(raw, keep)
        bad_rows = flags[_PROBLEM].is_not_null()
        if not bad_rows.any():
            return RawBatch(canonical, line_numbers=raw.line_numbers, first_line=raw.first_line,
                            failures=list(raw.failures), unknown_fields=raw.unknown_fields, raw_rows=raw.raw)
        dropped = bad_rows.arg_true().to_list()
        payloads = raw.raw(dropped)
        failures = list(raw.failures) + [
            ParseFailure(raw.line_no(row), Reason(flags[_PROBLEM_REASON][row]), flags[_PROBLEM][row], payload)
            for row, payload in zip(dropped, payloads, strict=True)
        ]
        good = subset_batch(raw, ~bad_rows)
        return RawBatch(canonical.filter(~bad_rows), line_numbers=good.line_numbers, failures=failures,
                        unknown_fields=raw.unknown_fields, raw_rows=good.raw_rows)


def subset_batch(raw: RawBatch, keep: pl.Series) -> RawBatch:
    """The rows of a batch where `keep` is true, their line numbers and source payloads preserved."""
    rows = keep.arg_true()
    if raw.line_numbers is None:
        lines = (rows.cast(pl.Int64) + raw.first_line).to_list()
    else:
        lines = pl.Series(raw.line_numbers, dtype=pl.Int64).filter(keep).to_list()
    picked = rows.to_list()
    return RawBatch(raw.frame.filter(keep), line_numbers=lines, failures=raw.failures,
                    unknown_fields=raw.unknown_fields, raw_rows=lambda chosen: raw.raw([picked[r] for r in chosen]))
