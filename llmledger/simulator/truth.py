"""Ground truth of a simulation: the incidents injected and the savings opportunities planted.

Plain dataclasses that round-trip through JSON (`GroundTruth.to_json` / `from_json`); times are
ISO 8601 UTC strings with a `Z`. Scope keys are canonical call / tool-run column names (route,
model, provider, tool_name, routing_policy, user_id, team, feature).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(at: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """The inverse of `iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class IncidentTruth:
    """One injected incident, as a signal should report it."""

    name: str
    signal: str  # design.md §5 signal, e.g. "1 cache hit collapse"
    scope: dict[str, str]  # the dimension(s) and value(s) the alert names
    start: str  # ISO UTC: first affected call / run
    end: str  # ISO UTC, exclusive: the data is back to normal from here
    expected_severity: str  # "warning" | "critical"
    measure: str  # what to compute
    expected_value: str  # what the measure shows inside the window
    baseline_value: str  # what it shows outside
    threshold: str  # design default it crosses
    cause_hint: str  # what the alert's probable cause should point at
    details: dict[str, Any] = field(default_factory=dict)
    also_trips: list[str] = field(default_factory=list)  # other signals this incident legitimately fires

    @property
    def start_at(self) -> datetime:
        return parse_iso(self.start)

    @property
    def end_at(self) -> datetime:
        return parse_iso(self.end)


@dataclass(frozen=True)
class OpportunityTruth:
    """A savings opportunity planted in the baseline (present every day, never an alert)."""

    name: str
    kind: str  # uncached_prefix | not_on_batch_api | cheap_step_answers_most
    scope: dict[str, str]
    evidence: str
    expected_saving: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroundTruth:
    """Everything a test or a newcomer needs to know about what the simulator planted."""

    seed: int
    start: str
    end: str
    calls_per_day: int
    incidents: list[IncidentTruth]
    opportunities: list[OpportunityTruth]
    baseline: dict[str, Any]
    skipped: list[str] = field(default_factory=list)  # incidents enabled but not fitting the range

    def incident(self, name: str) -> IncidentTruth:
        """The incident of that name (KeyError if it was not injected)."""
        for incident in self.incidents:
            if incident.name == name:
                return incident
        raise KeyError(name)

    def to_json(self) -> str:
        """Indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """Read what `to_json` wrote."""
        data = json.loads(text)
        data["incidents"] = [IncidentTruth(**item) for item in data["incidents"]]
        data["opportunities"] = [OpportunityTruth(**item) for item in data["opportunities"]]
        return cls(**data)
