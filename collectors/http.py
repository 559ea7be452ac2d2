"""The collectors' HTTP client: httpx with tenacity retries and errors translated once.

429 and 5xx/408 answers and network errors are retried with exponential back-off and jitter,
honouring `Retry-After` (seconds or an HTTP date, capped at `backoff_max_s`); 401/403 become
`AuthFailed` naming the environment variable that holds the key; other 4xx become
`RequestRejected`. JSON is parsed with floats as `Decimal`, so money keeps the digits it was
sent with. Headers (which carry keys) are never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from collectors.config import HttpConfig
from collectors.errors import AuthFailed, BadResponse, RateLimited, RequestRejected, SourceUnavailable

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 500, 502, 503, 504, 520, 522, 524, 529}


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Wait:
    """Tenacity wait: the source's Retry-After when it gave one, else exponential with jitter."""

    def __init__(self, config: HttpConfig) -> None:
        self.cap = config.backoff_max_s
        self.backoff = wait_exponential_jitter(multiplier=config.backoff_initial_s, max=config.backoff_max_s,
                                               jitter=config.backoff_initial_s)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, self.cap)
        return min(self.backoff(state), self.cap)


class ApiClient:
    """GET-and-parse JSON from one API, with retries; use as a context manager or call `close`."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        config: HttpConfig,
        source: str,
        key_env: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source = source
        self.key_env = key_env
        self.config = config
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", headers=dict(headers), timeout=config.timeout_s,
            transport=transport, follow_redirects=False,  # never resend key headers elsewhere
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: Any = None) -> Any:
        """GET `path` (relative to the base URL) and return its JSON body, retrying as described."""
        return self._retrying()(self._get_json_once, path, params)

    def get_text(self, url: str) -> str:
        """GET an absolute URL and return its text body, retrying as described."""
        return self._retrying()(lambda: self._send(url, None).text)

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type((RateLimited, SourceUnavailable)),
            wait=_Wait(self.config),
            stop=stop_after_attempt(self.config.max_attempts),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s: %s; retry %d in %.1fs", self.source, error, state.attempt_number, wait)

    def _get_json_once(self, path: str, params: Any) -> Any:
        response = self._send(path.lstrip("/"), params)
        try:
            return json.loads(response.text, parse_float=Decimal)
        except ValueError as err:
            raise BadResponse(f"{self.source}: {response.request.url.path} answered with invalid JSON: {err}") from err

    def _send(self, url: str, params: Any) -> httpx.Response:
        try:
            response = self._client.get(url, params=params)
        except httpx.TimeoutException as err:
            raise SourceUnavailable(f"{self.source}: timed out after {self.config.timeout_s}s") from err
        except httpx.TransportError as err:
            raise SourceUnavailable(f"{self.source}: cannot connect: {err}") from err
        status = response.status_code
        if status < 400:
            return response
        detail = _error_detail(response)
        where = response.request.url.path
        if status in (401, 403):
            fix = f"check the key in the environment variable {self.key_env}" if self.key_env else "check credentials"
            raise AuthFailed(
                f"{self.source} refused the credentials (HTTP {status} on {where}: {detail}); {fix} "
                "(an organization admin key is needed)",
                setting=self.key_env or "",
            )
        if status == 429:
            raise RateLimited(f"{self.source}: rate limited (HTTP 429 on {where})",
                              retry_after=retry_after_seconds(response.headers.get("retry-after")))
        if status in _RETRYABLE_STATUS or status >= 500:
            raise SourceUnavailable(f"{self.source}: HTTP {status} on {where}: {detail}")
        raise RequestRejected(f"{self.source}: HTTP {status} on {where}: {detail}", status=status)


def _error_detail(response: httpx.Response) -> str:
    """The error message of a JSON error body (OpenAI/Anthropic shapes), else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("type") or error)[:300]
        return str(error)[:300]
    return str(body)[:300]
