"""Query scope and filters: the tenant restriction and the allow-listed dimensions.

`Scope.all()` sees every project (admin, CLI); `Scope.of("a")` one project (a key bound to it).
Filters are `{dimension: [values]}`; dimensions must be in `DIMENSIONS` (or `tag.<key>` for a
free-form tag), values and tag keys are bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warehouse.client import identifier

# Columns of `calls` that attribution may group or filter by.
DIMENSIONS: frozenset[str] = frozenset(
    {
        "project",
        "api_key_id",
        "user_id",
        "team",
        "feature",
        "route",
        "environment",
        "session_id",
        "tool_name",
        "prompt_version",
        "provider",
        "model",
        "model_raw",
        "deployment",
        "node",
        "service_tier",
        "routing_policy",
        "status",
        "source",
    }
)


@dataclass(frozen=True)
class Scope:
    """Which projects a query may read; None means all."""

    projects: tuple[str, ...] | None

    @classmethod
    def all(cls) -> Scope:
        return cls(None)

    @classmethod
    def of(cls, *projects: str) -> Scope:
        return cls(tuple(projects))

    def clause(self, params: dict[str, Any], column: str = "project") -> str:
        """SQL condition restricting `column` to the scope; adds its bound parameter."""
        if self.projects is None:
            return "1"
        params["scope_projects"] = list(self.projects)
        return f"{column} IN {{scope_projects:Array(String)}}"


Filters = Mapping[str, Sequence[str]]

TAG_PREFIX = "tag."


def is_filterable(name: str) -> bool:
    """True for an allow-listed dimension or a `tag.<key>` filter."""
    return name in DIMENSIONS or (name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX))


def where(
    scope: Scope,
    start: datetime,
    end: datetime,
    filters: Filters | None = None,
    *,
    params: dict[str, Any],
    ts: str = "ts",
    bounds: tuple[str, str] = ("start", "end"),
) -> str:
    """The WHERE body for a time range [start, end), a scope and dimension filters (`bounds`: the
    parameter names of start and end, for a second range in the same statement)."""
    lo, hi = bounds
    params[lo] = start
    params[hi] = end
    parts = [scope.clause(params), f"{ts} >= {{{lo}:DateTime64(3, 'UTC')}}", f"{ts} < {{{hi}:DateTime64(3, 'UTC')}}"]
    for i, (dimension, values) in enumerate(sorted((filters or {}).items())):
        if not values:
            continue
        name = f"filter_{i}"
        params[name] = [str(v) for v in values]
        if dimension.startswith(TAG_PREFIX):
            params[f"{name}_key"] = dimension[len(TAG_PREFIX):]
            parts.append(f"tags[{{{name}_key:String}}] IN {{{name}:Array(String)}}")
            continue
        parts.append(f"{identifier(dimension, DIMENSIONS)} IN {{{name}:Array(String)}}")
    return " AND ".join(parts)
