"""Collector errors: a short hierarchy whose messages are safe to show a user.

Every message names what to fix (a setting or an environment variable) and never contains a
secret. HTTP and parsing failures are translated into these at the collector boundary
(`collectors.http`), so the runner and the CLI only ever see `CollectorError`s.
"""

from __future__ import annotations


class CollectorError(Exception):
    """A collector could not do its job; `kind` is a short stable label for operations."""

    kind = "error"


class ConfigError(CollectorError):
    """The configuration is wrong or incomplete; `setting` names what to change."""

    kind = "config"

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class AuthFailed(ConfigError):
    """The source refused our credentials (HTTP 401/403)."""

    kind = "auth"


class RateLimited(CollectorError):
    """HTTP 429 after every retry; `retry_after` (seconds) is the source's last hint, if any."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(CollectorError):
    """The source failed (5xx, timeout, connection) after every retry."""

    kind = "unavailable"


class RequestRejected(CollectorError):
    """The source rejected a request as invalid (4xx other than 401/403/429)."""

    kind = "rejected"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class CursorExpired(CollectorError):
    """A pagination token was refused and re-reading from the last written bucket failed too."""

    kind = "cursor"


class BadResponse(CollectorError):
    """The source answered with a shape other than the documented one."""

    kind = "bad_response"


class ImportFormatError(CollectorError):
    """A file to import cannot be read at all (unknown format, required columns missing)."""

    kind = "format"
