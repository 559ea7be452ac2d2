"""Any JSON lines / JSON / CSV / Parquet file of LLM calls, with a user-supplied TOML mapping.

The mapping names, for each canonical field, the source column holding it; a dotted path
(`usage.prompt_tokens`) reaches into a column of JSON objects unless a column with that exact
name exists. `[constants]` fills fields with fixed values, `[tags]` copies columns into tags, and
`[source]` states the semantics: whether input tokens include cached tokens (OpenAI) or not
(Anthropic: cache reads and writes are then added), whether cost is in USD or cents, and the
unit of epoch timestamps. An example is in the README (`llmledger import mapped`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import FileFormatName, MappedConfig
from collectors.errors import ConfigError
from collectors.gateways.mapping import CANONICAL, Mapper, tags_json
from collectors.gateways.source import read_source
from ingest.readers import RawBatch
from ingest.schema import TOKEN_FIELDS, USAGE_SCHEMA

_INTEGERS = set(TOKEN_FIELDS) | {"ttft_ms", "latency_ms", "queue_ms", "http_status", "cascade_step"}
_EPOCH_MS = {"s": 1000, "ms": 1, "us": 0.001, "ns": 0.000001}


class SourceSection(BaseModel):
    """`[source]`: the file's name, format and semantics."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    format: FileFormatName = "auto"
    input_includes_cache: bool = True
    cost_unit: Literal["usd", "cents"] = "usd"
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"


class Mapping(BaseModel):
    """A mapping file."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSection = Field(default_factory=SourceSection)
    columns: dict[str, str]
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("columns", "constants")
    @classmethod
    def _canonical(cls, value: dict[str, object]) -> dict[str, object]:
        unknown = set(value) - CANONICAL
        if unknown:
            raise ValueError(f"not canonical fields: {sorted(unknown)} (see the README's call record table)")
        return value

    def model_post_init(self, context: object, /) -> None:
        if "ts" not in self.columns and "ts" not in self.constants:
            raise ValueError("the mapping must say which column holds `ts`")
        if "model" not in self.columns and "model" not in self.constants:
            raise ValueError("the mapping must say which column (or constant) holds `model`")

    @classmethod
    def load(cls, path: Path) -> Mapping:
        """Read and validate a TOML mapping file (errors name the file and the problem)."""
        try:
            return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
            raise ConfigError(f"mapping file {path}: {err}", setting="--mapping") from err

    def source_columns(self) -> list[str]:
        """Columns to read: every path as written and its first segment (for JSON paths)."""
        names: dict[str, None] = {}
        for path in (*self.columns.values(), *self.tags.values()):
            names[path] = None
            names[path.split(".", 1)[0]] = None
        return list(names)


def _resolve(frame: pl.DataFrame, path: str) -> pl.Expr:
    """A column by exact name when it has values, else a JSON path into its first segment."""
    if "." not in path:
        return pl.col(path)
    head, rest = path.split(".", 1)
    exact = pl.col(path)
    nested = pl.col(head).str.json_path_match(f"$.{rest}")
    return pl.coalesce(exact, nested) if frame[path].null_count() < frame.height else nested


def map_records(raw: RawBatch, mapping: Mapping) -> RawBatch:
    """Canonical calls of one batch of the source."""
    src = raw.frame
    m = Mapper(src)
    semantics = mapping.source
    fields: dict[str, pl.Expr] = {}
    for field, path in mapping.columns.items():
        expr = _resolve(src, path)
        if field in _INTEGERS:
            expr = m.integer(expr, path)
        elif field == "provider_reported_cost_usd":
            expr = m.decimal(expr, path)
            expr = expr / 100 if semantics.cost_unit == "cents" else expr
        elif field == "usage":
            expr = pl.lit(m.json_series(src.select(expr.alias("u")).to_series(), USAGE_SCHEMA, path))
        elif field == "ts" and semantics.timestamp_unit != "auto":
            epoch_ms = (expr.cast(pl.Float64, strict=False) * _EPOCH_MS[semantics.timestamp_unit]).round(0)
            expr = pl.coalesce(epoch_ms.cast(pl.Int64, strict=False).cast(pl.String), expr)
        fields[field] = expr
    for field, value in mapping.constants.items():
        fields.setdefault(field, pl.lit(value))
    if not semantics.input_includes_cache and "input_tokens" in fields:
        cache = [fields[f].fill_null(0) for f in ("cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
                 if f in fields]
        fields["input_tokens"] = fields["input_tokens"] + pl.sum_horizontal(cache) if cache else fields["input_tokens"]
    if mapping.tags:
        fields["tags"] = tags_json({name: _resolve(src, path) for name, path in mapping.tags.items()})
    if mapping.source.name and "source" not in fields:
        fields["source"] = pl.lit(mapping.source.name)
    mapped = src.select(expr.alias(field) for field, expr in fields.items())
    return m.finish(raw, mapped)


class MappedImport:
    """Imports any tabular file of calls through a TOML column mapping."""

    name: ClassVar[str] = "mapped"
    Config: ClassVar[type[MappedConfig]] = MappedConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.FILE,
        outputs=frozenset({Output.CALLS}),
        incremental=False,
        backfill=False,
        summary="any JSON lines / JSON / CSV / Parquet file with a TOML column mapping",
    )

    def __init__(self, config: MappedConfig) -> None:
        self.config = config

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of calls from the file."""
        if self.config.path is None:
            raise ConfigError("mapped: no file to import", setting="path")
        if self.config.mapping is None:
            raise ConfigError("mapped: no mapping file; pass --mapping map.toml", setting="--mapping")
        mapping = Mapping.load(self.config.mapping)
        fmt = self.config.format if self.config.format != "auto" else mapping.source.format
        for raw in read_source(self.config.path, fmt, mapping.source_columns(),
                               batch_rows=self.config.batch_rows, batch_bytes=self.config.batch_bytes):
            yield Batch(Output.CALLS, records=map_records(raw, mapping))
