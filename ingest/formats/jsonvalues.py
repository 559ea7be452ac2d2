"""JSON bodies as Python producers write them: `NaN`, `Infinity` and `-Infinity` are parsed
(Python's `json.dumps` writes them by default, LiteLLM among others), so that one such value
rejects only the record holding it instead of the whole request.

`loads` parses with orjson and, only when that fails, again with the standard library, whose
`parse_constant` hook turns each non-finite number into a `NonFinite` marker; `describe` names
where a record holds one. Clean bodies pay nothing extra.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class NonFinite:
    """A `NaN` / `Infinity` / `-Infinity` found in a body (as written)."""

    text: str


def loads(body: bytes | str) -> Any:
    """The JSON value of `body`; non-finite numbers become `NonFinite`. Raises `ValueError`
    (orjson's `JSONDecodeError` is one) when the body is not JSON even so."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        if "NaN" not in text and "Infinity" not in text:
            raise
    return json.loads(text, parse_constant=NonFinite)


def non_finite(value: Any, path: str = "") -> tuple[str, NonFinite] | None:
    """(dotted path, marker) of the first non-finite number inside `value` (`usage.prompt_tokens`,
    `tags[2]`), else None."""
    if isinstance(value, NonFinite):
        return path or "(value)", value
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for where, item in items:
        found = non_finite(item, where)
        if found is not None:
            return found
    return None


def describe(value: Any) -> str | None:
    """The dead-letter detail of a record holding a non-finite number, else None."""
    found = non_finite(value)
    if found is None:
        return None
    path, marker = found
    return f"{path} is {marker.text}: NaN and Infinity are not numbers here; only this record is rejected"


def dumps(value: Any) -> bytes:
    """`value` as JSON with its non-finite numbers written back as they came (for dead letters)."""
    return json.dumps(_floats(value), default=str).encode()


def _floats(value: Any) -> Any:
    if isinstance(value, NonFinite):
        return float(value.text)  # json.dumps writes these back as NaN / Infinity / -Infinity
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return value
