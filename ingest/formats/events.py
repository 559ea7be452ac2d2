"""Canonical call records pushed as a JSON array, `{"events": [...]}`, one object, or NDJSON.

The body is parsed once by orjson (a JSON body that does not parse is an error for the whole
request; `NaN` / `Infinity`, which Python producers write, are parsed and reject only the record
holding them); arrays are re-serialised as JSON lines by orjson in C and read by the same Polars
reader as files, so validation, unknown-field reporting and bad-record isolation are shared with
`llmledger ingest`. Row i of the batch is record i (`line_no` = i + 1). The field names of the
decoded records are collected on the way, so reporting unknown fields needs no second parse.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ingest.formats import jsonvalues
from ingest.readers import RawBatch, parse_jsonl_chunk


class MalformedBody(ValueError):
    """The body is not JSON / NDJSON of the expected shape (answer 400)."""


@dataclass(frozen=True)
class EventLines:
    """A body's records as JSON lines, not read into a frame yet (the push API reads the lines of
    concurrent requests together), and the top-level field names of its records when the body was
    decoded (None: an NDJSON body passed through as it came)."""

    data: bytes
    fields: frozenset[str] | None = None


def parse_events(body: bytes, *, ndjson: bool = False) -> RawBatch:
    """A batch of canonical records from a request body (see module docstring)."""
    return parse_jsonl_chunk(event_lines(body, ndjson=ndjson).data)


def event_lines(body: bytes, *, ndjson: bool = False) -> EventLines:
    """The body's records as JSON lines (record i on line i + 1). Raises `MalformedBody`."""
    if not body.strip():
        raise MalformedBody("empty body: send a JSON array of call records, {\"events\": [...]}, or NDJSON")
    if ndjson:
        return EventLines(body)
    try:
        value = jsonvalues.loads(body)
    except ValueError as err:
        if looks_like_ndjson(body):
            return EventLines(body)
        raise MalformedBody(f"body is not valid JSON: {err}") from None
    if isinstance(value, dict) and "events" in value:
        value = value["events"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise MalformedBody(f"expected a JSON array of call records, got {type(value).__name__}")
    fields = frozenset().union(*[record.keys() for record in value if isinstance(record, dict)])
    if b"NaN" in body or b"Infinity" in body:  # a record may hold a non-finite number: written back as
        # it came, so the line reader rejects that record alone (`invalid_type`) and keeps the others
        return EventLines(b"\n".join(jsonvalues.dumps(r) if jsonvalues.describe(r) else orjson.dumps(r) for r in value),
                          fields)
    return EventLines(b"\n".join(map(orjson.dumps, value)), fields)


def looks_like_ndjson(body: bytes) -> bool:
    """True when the first line alone is a JSON object (a body of several JSON lines)."""
    first, _, rest = body.strip().partition(b"\n")
    if not rest.strip():
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False
