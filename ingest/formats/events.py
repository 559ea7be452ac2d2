"""Canonical call records pushed as a JSON array, `{"events": [...]}`, one object, or NDJSON.

The body is parsed once by orjson (a JSON body that does not parse is an error for the whole
request; `NaN` / `Infinity`, which Python producers write, are parsed and reject only the record
holding them); arrays are re-serialised as JSON lines by orjson in C and read by the same Polars
reader as files, so validation, unknown-field reporting and bad-record isolation are shared with
`llmledger ingest`. Row i of the batch is record i (`line_no` = i + 1).
"""

from __future__ import annotations

import orjson

from ingest.formats import jsonvalues
from ingest.readers import RawBatch, parse_jsonl_chunk


class MalformedBody(ValueError):
    """The body is not JSON / NDJSON of the expected shape (answer 400)."""


def parse_events(body: bytes, *, ndjson: bool = False) -> RawBatch:
    """A batch of canonical records from a request body (see module docstring)."""
    return parse_jsonl_chunk(events_ndjson(body, ndjson=ndjson))


def events_ndjson(body: bytes, *, ndjson: bool = False) -> bytes:
    """The body's records as JSON lines (record i on line i + 1), without parsing them into a frame:
    the push API parses the lines of concurrent requests together. Raises `MalformedBody`."""
    if not body.strip():
        raise MalformedBody("empty body: send a JSON array of call records, {\"events\": [...]}, or NDJSON")
    if ndjson:
        return body
    try:
        value = jsonvalues.loads(body)
    except ValueError as err:
        if looks_like_ndjson(body):
            return body
        raise MalformedBody(f"body is not valid JSON: {err}") from None
    if isinstance(value, dict) and "events" in value:
        value = value["events"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise MalformedBody(f"expected a JSON array of call records, got {type(value).__name__}")
    if b"NaN" in body or b"Infinity" in body:  # a record may hold a non-finite number: written back as
        # it came, so the line reader rejects that record alone (`invalid_type`) and keeps the others
        return b"\n".join(jsonvalues.dumps(r) if jsonvalues.describe(r) else orjson.dumps(r) for r in value)
    return b"\n".join(map(orjson.dumps, value))


def looks_like_ndjson(body: bytes) -> bool:
    """True when the first line alone is a JSON object (a body of several JSON lines)."""
    first, _, rest = body.strip().partition(b"\n")
    if not rest.strip():
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False
