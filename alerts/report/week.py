"""ISO weeks in UTC: `Week.parse("2025-W45")`, `Week.last_complete(now)`, and the ranges a weekly
report compares (the week, the week before, the month to date, the rest of the month).
Every range is half-open [start, end) with timezone-aware UTC datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

_ISO_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")


@dataclass(frozen=True, order=True)
class Week:
    """One ISO week: Monday 00:00 UTC to the next Monday."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """`2025-W45` (or `2025W45`); ValueError for anything else or a week the year lacks."""
        match = _ISO_WEEK.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not an ISO week like 2025-W45")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError as err:
            raise ValueError(f"{year} has no ISO week {number}") from err
        return cls(year, number)

    @classmethod
    def containing(cls, at: datetime) -> Week:
        """The week an instant (UTC) falls in."""
        year, number, _ = at.astimezone(UTC).isocalendar()
        return cls(year, number)

    @classmethod
    def last_complete(cls, now: datetime | None = None) -> Week:
        """The latest week that has ended at `now` (default: the current time)."""
        return cls.containing(now or datetime.now(UTC)).previous

    @property
    def start(self) -> datetime:
        """Monday 00:00 UTC."""
        day = date.fromisocalendar(self.year, self.number, 1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 UTC (exclusive)."""
        return self.start + timedelta(days=7)

    @property
    def last_day(self) -> date:
        """The Sunday that ends the week."""
        return (self.end - timedelta(days=1)).date()

    @property
    def previous(self) -> Week:
        """The week before."""
        return Week.containing(self.start - timedelta(days=1))

    @property
    def label(self) -> str:
        """`2025-W45`."""
        return f"{self.year}-W{self.number:02d}"

    @property
    def month_start(self) -> datetime:
        """00:00 UTC on the first day of the month the week ends in (its last day's month)."""
        last_day = self.end - timedelta(days=1)
        return datetime(last_day.year, last_day.month, 1, tzinfo=UTC)

    @property
    def month_end(self) -> datetime:
        """00:00 UTC on the first day of the next month."""
        nxt = self.month_start + timedelta(days=32)
        return datetime(nxt.year, nxt.month, 1, tzinfo=UTC)

    @property
    def days_left_in_month(self) -> Decimal:
        """Days from the week's end to the month's end (0 when the week ends the month)."""
        return Decimal(max((self.month_end - self.end).total_seconds(), 0)) / Decimal(86_400)

    def __str__(self) -> str:
        return self.label
