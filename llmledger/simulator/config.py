"""What a simulation run is asked to produce: range, volume, seed, incidents, budget.

`SimulationConfig` is validated by pydantic; times are UTC (naive datetimes are read as UTC) and
the range is whole UTC days from `start`'s date. The same config always gives the same output.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmledger.simulator.catalog import TEAMS

INCIDENT_NAMES: tuple[str, ...] = (
    "cache_hit_collapse",
    "cache_not_applied",
    "prompt_accumulation",
    "llm_calls_in_tools",
    "reasoning_runaway",
    "stale_routing",
    "sandbox_runaway",
    "latency_tail",
    "spend_spike",
    "budget_overrun",
)
DEFAULT_START = datetime(2025, 11, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SimulationConfig(BaseModel):
    """One simulation: `days` UTC days from `start`, about `calls_per_day` calls a day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime = Field(
        DEFAULT_START,
        description="First simulated day (UTC); its time of day is ignored.",
    )
    days: int = Field(30, ge=1, le=3660)
    calls_per_day: int = Field(30_000, ge=100, description="Mean calls a day over a week (weekdays ~1.15x).")
    seed: int = Field(7, ge=0, lt=2**63)
    incidents: bool | list[str] = Field(True, description="True: all; False: none; or INCIDENT_NAMES.")
    incident_starts: dict[str, datetime] = Field(
        default_factory=dict, description="Override an incident's start instant (UTC) by name."
    )
    end_at: datetime | None = Field(None, description="Drop traffic at or after this instant (e.g. now).")
    project: str | None = Field(
        None, description="One project for every route (default: acme-app / acme-internal)."
    )
    source: str = Field("simulator", min_length=1)
    budget_team: str = Field("data", description="Team whose monthly budget budget_overrun crosses.")
    budget_usd: float | None = Field(
        None, gt=0, description="That team's monthly budget; default: month-to-date spend at the planned "
        "crossing."
    )

    @field_validator("start", "end_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    @field_validator("incident_starts")
    @classmethod
    def _starts_as_utc(cls, value: dict[str, datetime]) -> dict[str, datetime]:
        unknown = set(value) - set(INCIDENT_NAMES)
        if unknown:
            raise ValueError(f"unknown incident(s) {sorted(unknown)}; known: {', '.join(INCIDENT_NAMES)}")
        return {name: _utc(at) for name, at in value.items()}

    @field_validator("incidents")
    @classmethod
    def _known_incidents(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            unknown = set(value) - set(INCIDENT_NAMES)
            if unknown:
                raise ValueError(f"unknown incident(s) {sorted(unknown)}; known: {', '.join(INCIDENT_NAMES)}")
        return value

    @model_validator(mode="after")
    def _known_team(self) -> SimulationConfig:
        if self.budget_team not in TEAMS:
            raise ValueError(f"budget_team must be one of {', '.join(TEAMS)}")
        return self

    @property
    def first_day(self) -> date:
        """The first simulated UTC date."""
        return self.start.date()

    @property
    def range_start(self) -> datetime:
        """Midnight UTC of the first day."""
        return datetime(self.first_day.year, self.first_day.month, self.first_day.day, tzinfo=UTC)

    @property
    def range_end(self) -> datetime:
        """End (exclusive) of the simulated traffic: the last day's end, or `end_at` if earlier."""
        end = self.range_start + timedelta(days=self.days)
        return min(end, self.end_at) if self.end_at is not None else end

    def day(self, index: int) -> date:
        """The UTC date of day `index` (0-based)."""
        return self.first_day + timedelta(days=index)

    def enabled_incidents(self) -> list[str]:
        """Names of the incidents to inject, in catalogue order."""
        if self.incidents is True:
            return list(INCIDENT_NAMES)
        if self.incidents is False:
            return []
        return [name for name in INCIDENT_NAMES if name in self.incidents]
