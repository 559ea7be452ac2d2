"""Instants as the API and the CLI take them: naive means UTC, and only what the warehouse's
DateTime64 columns hold (1970 to 2200), so a typo in a year is a clear 422, not an engine error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def utc_instant(value: datetime) -> datetime:
    """UTC (naive = UTC), within what the warehouse's DateTime64 holds."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not datetime(1970, 1, 1, tzinfo=UTC) <= value <= datetime(2200, 1, 1, tzinfo=UTC):
        raise ValueError("must be between 1970 and 2200")
    return value


Instant = Annotated[datetime, AfterValidator(utc_instant)]
