"""Errors of the weekly report. `SendFailed` carries a `kind` recorded in the ledger
(`unavailable`, `auth`, `refused`, `config`); its message is safe to show (no secrets).
"""

from __future__ import annotations


class ReportError(Exception):
    """Base of the weekly report's errors."""


class ChartsUnavailable(ReportError):
    """Charts cannot be drawn (no Chromium, or it failed); the report goes out without them."""


class SendFailed(ReportError):
    """A report could not be handed to the mail server."""

    kind = "unavailable"
    retryable = True

    def __init__(self, message: str, *, kind: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if retryable is not None:
            self.retryable = retryable


class ServerUnavailable(SendFailed):
    """The server could not be reached or dropped the connection (retried with back-off)."""

    kind = "unavailable"


class AuthRefused(SendFailed):
    """The server refused the credentials (not retried within a run; the next run tries again)."""

    kind = "auth"
    retryable = False


class RecipientsRefused(SendFailed):
    """The server refused the sender or every recipient."""

    kind = "refused"
    retryable = False


class ConfigMissing(SendFailed):
    """Settings needed to send are missing (e.g. the SMTP password variable is empty)."""

    kind = "config"
    retryable = False
