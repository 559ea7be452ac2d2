"""Test data factories: canonical call records as dicts, written as JSONL when needed."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import polars as pl

_ids = itertools.count(1)


def make_call(**overrides: Any) -> dict[str, Any]:
    """A valid canonical call record (OpenAI gpt-4o, plain), with fields overridden."""
    record: dict[str, Any] = {
        "event_id": f"ev-{next(_ids):08d}",
        "ts": "2025-11-03T10:00:00.000Z",
        "project": "default",
        "user_id": "u1",
        "team": "search",
        "route": "/chat",
        "feature": "assistant",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1000,
        "output_tokens": 200,
        "latency_ms": 1500,
        "ttft_ms": 300,
        "status": "ok",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def write_jsonl(path: Path, records: list[dict[str, Any]], *, extra_lines: list[bytes] = ()) -> Path:
    """Write records (and optional raw lines) as JSON lines."""
    lines = [orjson.dumps(r) for r in records] + list(extra_lines)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Records as a Polars frame (nested objects kept as structs)."""
    return pl.DataFrame(records, infer_schema_length=None)
