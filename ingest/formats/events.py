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
from ingest.readers import ParseFailure, RawBatch, parse_jsonl_chunk
from ingest.validate import Reason


class MalformedBody(ValueError):
    """The body is not JSON / NDJSON of the expected shape (answer 400)."""


def parse_events(body: bytes, *, ndjson: bool = False) -> RawBatch:
    """A batch of canonical records from a request body (see module docstring)."""
    if not body.strip():
        raise MalformedBody("empty body: send a JSON array of call records, {\"events\": [...]}, or NDJSON")
    if ndjson:
        return parse_jsonl_chunk(body)
    try:
        value = jsonvalues.loads(body)
    except ValueError as err:
        if looks_like_ndjson(body):
            return parse_jsonl_chunk(body)
        raise MalformedBody(f"body is not valid JSON: {err}") from None
    if isinstance(value, dict) and "events" in value:
        value = value["events"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise MalformedBody(f"expected a JSON array of call records, got {type(value).__name__}")
    if not value:
        return parse_jsonl_chunk(b"")
    return records_chunk(value)


def records_chunk(records: list[object]) -> RawBatch:
    """Record i of `records` as line i + 1 of a batch; a record holding NaN or Infinity (from
    `jsonvalues.loads`) is rejected alone (`invalid_type`), the others read as usual."""
    bad = {i: detail for i, r in enumerate(records) if (detail := jsonvalues.describe(r)) is not None}
    if not bad:
        return parse_jsonl_chunk(b"\n".join(map(orjson.dumps, records)))
    kept = [i for i in range(len(records)) if i not in bad]
    batch = parse_jsonl_chunk(b"\n".join(orjson.dumps(records[i]) for i in kept)) if kept else parse_jsonl_chunk(b"")
    original = [kept[batch.line_no(row) - 1] + 1 for row in range(batch.frame.height)]
    for failure in batch.failures:
        failure.line_no = kept[failure.line_no - 1] + 1
    batch.failures += [ParseFailure(i + 1, Reason.INVALID_TYPE, detail, jsonvalues.dumps(records[i]))
                       for i, detail in bad.items()]
    batch.line_numbers = original
    return batch


def looks_like_ndjson(body: bytes) -> bool:
    """True when the first line alone is a JSON object (a body of several JSON lines)."""
    first, _, rest = body.strip().partition(b"\n")
    if not rest.strip():
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False
