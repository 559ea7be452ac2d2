"""Which warehouse failures are worth retrying, and the retry policy (tenacity) for a server.

Reads and idempotent writes (anti-joined inserts, `IF NOT EXISTS` DDL, lease claims with a dedup
token) are retried on transient engine errors and broken connections; any other write only when the
request never reached the server, since one whose connection broke after sending may have applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from clickhouse_connect.driver.exceptions import OperationalError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

T = TypeVar("T")

# Engine errors meaning "briefly unable; nothing was applied" — ClickHouse src/Common/ErrorCodes.cpp.
TRANSIENT_CODES: dict[int, str] = {
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    203: "NO_FREE_CONNECTION",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    242: "TABLE_IS_READ_ONLY",  # a replica lost its Keeper session
    252: "TOO_MANY_PARTS",  # back-pressure: inserts faster than merges
    254: "NO_ACTIVE_REPLICAS",
    279: "ALL_CONNECTION_TRIES_FAILED",
    285: "TOO_FEW_LIVE_REPLICAS",
    364: "RECEIVED_ERROR_TOO_MANY_REQUESTS",
    369: "ALL_REPLICAS_ARE_STALE",
    425: "SYSTEM_ERROR",
    439: "CANNOT_SCHEDULE_TASK",
    999: "KEEPER_EXCEPTION",
}
# The insert may or may not have happened: only an idempotent statement may run again.
AMBIGUOUS_CODES: dict[int, str] = {319: "UNKNOWN_STATUS_OF_INSERT"}


def never_sent(err: BaseException) -> bool:
    """True when the request could not even be sent: the connection was refused or timed out opening."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError):
            return True
        if isinstance(current, MaxRetryError) and isinstance(current.reason, NewConnectionError | ConnectTimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_transient(err: BaseException, *, idempotent: bool) -> bool:
    """Whether `err` from the driver is worth one more try of the same statement."""
    if never_sent(err):
        return True
    if not idempotent:
        return False
    code = getattr(err, "code", None)
    if code in TRANSIENT_CODES or code in AMBIGUOUS_CODES:
        return True
    # A broken connection, or HTTP 429/503/504 still failing after the driver's own retries.
    return isinstance(err, OperationalError)


def retry_policy(attempts: int, *, idempotent: bool, max_wait_s: float = 5.0) -> Retrying:
    """A tenacity policy: up to `attempts` tries with jittered exponential back-off (0.2 s doubling)."""
    return Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential_jitter(multiplier=0.2, max=max_wait_s),
        retry=retry_if_exception(lambda err: is_transient(err, idempotent=idempotent)),
        reraise=True,
    )


def call_with_retries(fn: Callable[[], T], *, attempts: int, idempotent: bool) -> T:
    """Run `fn` under `retry_policy`; the last error is raised unchanged when the tries run out."""
    if attempts <= 1:
        return fn()
    return retry_policy(attempts, idempotent=idempotent)(fn)
