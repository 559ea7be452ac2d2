"""The alert vocabulary: severities, incident states, transition kinds, and a rule's levels.

A rule grades each scope at each evaluation instant with a level index: 0 is OK, 1… are the
rule's `levels` in increasing order (for most rules WARNING then CRITICAL; budgets 50%, 80%, 100%).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How loud an alert is (INFO: a note told once, never a page)."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class IncidentState(StrEnum):
    """Where an incident is in its lifecycle (OK → WARNING → CRITICAL → RESOLVED); INFO: a note
    (e.g. a new spend source), told once and never open."""

    WARNING = "warning"
    CRITICAL = "critical"
    RESOLVED = "resolved"
    INFO = "info"


class EventKind(StrEnum):
    """What happened to an incident."""

    OPENED = "opened"
    ESCALATED = "escalated"
    DOWNGRADED = "downgraded"
    RESOLVED = "resolved"
    RENOTIFIED = "renotified"
    ACKNOWLEDGED = "acknowledged"
    NOTED = "noted"  # an info note (no incident opens)


@dataclass(frozen=True)
class Level:
    """One level of a rule: a label (e.g. 'warning', '80%') and its severity."""

    name: str
    severity: Severity


WARNING_CRITICAL: tuple[Level, ...] = (Level("warning", Severity.WARNING), Level("critical", Severity.CRITICAL))


def scope_key(scope: dict[str, str]) -> str:
    """The canonical text of a scope: `k=v` pairs joined by `,` in the scope's own order."""
    return ",".join(f"{k}={v}" for k, v in scope.items())


def stable_id(*parts: object) -> str:
    """A deterministic id from its parts (so re-evaluating a window rewrites the same rows)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]
