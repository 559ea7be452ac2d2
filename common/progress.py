"""The progress contract every layer may take: long work calls `feed.task(description, total)` for
each stage, then the returned function with each amount done. `SILENT` shows nothing; the shell
(`llmledger.progress`) draws Rich bars or streams the events from the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Advance = Callable[[float], None]


class Feed(Protocol):
    """Where progress goes."""

    def task(self, description: str, total: float | None = None) -> Advance:
        """Start a stage of work (`total` units, None: unknown); returns the function to call with each amount done."""
        ...


class Silent:
    """A feed that shows nothing."""

    def task(self, description: str, total: float | None = None) -> Advance:
        return _ignore


def _ignore(amount: float) -> None:
    return None


SILENT = Silent()
