"""How parameters travel in the query string of the service's API, the same from every client (the
CLI's `llmledger.remote` and the dashboards' `dashboards.client`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def query_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Parameters as query pairs: lists repeat, None is left out, datetimes are ISO 8601 UTC (ms,
    `Z`). The dashboards' client sends its parameters the same way."""
    pairs: list[tuple[str, str]] = []
    for name, raw in params.items():
        for item in raw if isinstance(raw, list | tuple) else [raw]:
            if item is None:
                continue
            if isinstance(item, datetime):
                item = item.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            elif isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((name, str(item)))
    return pairs
