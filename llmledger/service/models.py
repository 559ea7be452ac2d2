"""Request and response models of the HTTP API (pydantic; they are the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from ingest.schema import CallIn
from llmledger.instants import Instant as InstantType
from warehouse.queries.scope import DIMENSIONS, TAG_PREFIX, is_filterable
from warehouse.queries.series import GRAINS, MEASURES

Dimension = StrEnum("Dimension", {d: d for d in sorted(DIMENSIONS)})  # type: ignore[misc]
Grain = StrEnum("Grain", {g: g for g in GRAINS})  # type: ignore[misc]
Measure = StrEnum("Measure", {m: m for m in MEASURES})  # type: ignore[misc]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def body_docs(kind: str) -> dict[str, Any]:
    """`openapi_extra` documenting a push endpoint's body (the handler reads it raw, streaming)."""
    if kind == "events":
        record = CallIn.model_json_schema()
        record = _inline(record, record.get("$defs", {}))
        content = {
            "application/json": {"schema": {"oneOf": [
                {"type": "array", "items": record}, {"type": "object", "properties": {
                    "events": {"type": "array", "items": record}}, "required": ["events"]}, record]}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One call record per line."}},
        }
    elif kind == "litellm":
        payload = {"type": "object", "description": "LiteLLM StandardLoggingPayload", "additionalProperties": True}
        content = {"application/json": {"schema": {"oneOf": [{"type": "array", "items": payload}, payload]}}}
    else:
        content = {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary",
                                                  "description": "opentelemetry.proto ExportTraceServiceRequest"}},
            "application/json": {"schema": {"type": "object", "description": "OTLP/JSON ExportTraceServiceRequest",
                                            "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}}}},
        }
    return {"requestBody": {"required": True, "content": content}}


# ---- push --------------------------------------------------------------------------------


class RecordError(BaseModel):
    """One rejected record: its position in the request, why, and where it was kept."""

    index: int = Field(description="0-based position of the record (array element or NDJSON line).")
    reason: str = Field(description="Dead-letter reason, e.g. missing_model.")
    detail: str


class PushResult(BaseModel):
    """The fate of a pushed batch. Accepted records are durable (spooled and fsynced) and reach the
    warehouse within the flush interval; rejected ones are kept as dead letters."""

    accepted: int
    rejected: int
    errors: list[RecordError] = Field(default_factory=list)
    unknown_fields: list[str] = Field(default_factory=list, description="Top-level fields that were ignored.")
    tool_runs: int = 0


# ---- read --------------------------------------------------------------------------------


Instant = InstantType  # naive = UTC, 1970 to 2200 (`llmledger.instants`)


class FilterQuery(BaseModel):
    """Filters (`dimension:value`, or `tag.key:value`; repeat `filter` for more values or dimensions)."""

    model_config = {"extra": "forbid"}

    filter: list[str] = Field(default_factory=list, max_length=50,
                              description="dimension:value or tag.key:value, e.g. team:search")

    @field_validator("filter")
    @classmethod
    def _filters(cls, values: list[str]) -> list[str]:
        for value in values:
            name, sep, rest = value.partition(":")
            if not sep or not is_filterable(name):
                raise ValueError(f"{value!r}: use dimension:value with a dimension among {sorted(DIMENSIONS)} "
                                 f"or {TAG_PREFIX}key:value")
            if len(rest) > 512:
                raise ValueError("filter values are at most 512 characters")
        return values

    def filters(self) -> dict[str, list[str]]:
        """Filters as the query library takes them."""
        out: dict[str, list[str]] = {}
        for value in self.filter:
            name, _, rest = value.partition(":")
            out.setdefault(name, []).append(rest)
        return out


class RangeQuery(FilterQuery):
    """A half-open UTC time range [start, end) and filters (`dimension:value`, or `tag.key:value`;
    repeat `filter` for more values or dimensions)."""

    start: Instant = Field(description="Range start (ISO 8601; naive = UTC).")
    end: Instant = Field(description="Range end, exclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> RangeQuery:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=3660):
            raise ValueError("a range is at most ten years")
        return self


class Table(BaseModel):
    """A query result: column names and rows. Money (`*_usd`) is a decimal string, exact to 18
    places; timestamps are ISO 8601 UTC; token counts are integers."""

    columns: list[str]
    rows: list[dict[str, Any]]


class KeyIn(BaseModel):
    """A key to create."""

    model_config = {"extra": "forbid"}

    scopes: list[str] = Field(min_length=1, description="ingest, read and/or admin")
    project: str | None = Field(default=None, max_length=256)
    name: str = Field(default="", max_length=256)


class KeyOut(BaseModel):
    """A key as listed (never the secret)."""

    key_id: str
    name: str
    scopes: list[str]
    project: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    """A new key, with its token (shown once)."""

    token: str
