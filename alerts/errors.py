"""Alerting errors, translated once at their boundary (Slack, the warehouse, user commands).

`AlertError.user_message` is safe to show to an API or CLI user.
"""

from __future__ import annotations


class AlertError(Exception):
    """Base of every alerting failure."""

    user_message = "alerting error"


class UnknownIncident(AlertError):
    """No incident has that id (ack, silence or show)."""

    user_message = "no such incident"


class DeliveryFailed(AlertError):
    """A notification could not be delivered. `permanent`: retrying will not help until someone
    fixes the configuration (bad token, unknown channel); `retry_after_s`: the service asked us to
    wait (HTTP 429 Retry-After)."""

    user_message = "alert delivery failed"

    def __init__(self, detail: str, *, permanent: bool = False, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        self.retry_after_s = retry_after_s
