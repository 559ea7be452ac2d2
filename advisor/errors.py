"""Errors of the advisor; every message is safe to show a user."""

from __future__ import annotations


class AdvisorError(Exception):
    """The advice cannot be computed (no scores, no price, no volume); the message says what to give."""


class ReplayError(AdvisorError):
    """A replay file that cannot be read at all (missing score column, unreadable format)."""
