"""A LiteLLM callback that sends every call's StandardLoggingPayload to llmledger's `/v1/litellm`,
from synchronous and asynchronous code alike.

LiteLLM's own `generic_api` logger starts its periodic flush with `asyncio.create_task` when it is
constructed, so registering it outside a running event loop (a plain `litellm.completion` script)
fails with `RuntimeError: no running event loop`. This logger never touches an event loop: its
sync and async hooks only queue the payload, and one daemon thread posts the queue as NDJSON
(httpx) every `flush_interval_s`, as soon as `batch_size` payloads wait, on `flush()` and at
interpreter exit. A failed post keeps its payloads for the next try (the oldest are dropped past
`max_queue`, with a warning); llmledger de-duplicates on LiteLLM's call id, so a retry never counts
a call twice. Needs `litellm` installed (your application has it; llmledger does not require it).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from typing import Any

import httpx
import orjson
from litellm.integrations.custom_logger import CustomLogger

log = logging.getLogger(__name__)


class LlmledgerLogger(CustomLogger):
    """`litellm.callbacks = [LlmledgerLogger("http://127.0.0.1:8787/v1/litellm", api_key="llk_…")]`."""

    def __init__(self, endpoint: str, *, api_key: str | None = None, batch_size: int = 100,
                 flush_interval_s: float = 5.0, timeout_s: float = 10.0, max_queue: int = 100_000) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.received = 0  # payloads queued since start (for tests and health checks)
        self.sent = 0
        self._queue: deque[dict[str, Any]] = deque(maxlen=max_queue)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        headers = {"content-type": "application/x-ndjson"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(headers=headers, timeout=timeout_s)
        self._thread = threading.Thread(target=self._run, name="llmledger-litellm", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # LiteLLM's hooks: sync calls use the first two, async calls the last two
    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._queue_payload(kwargs)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._queue_payload(kwargs)

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._queue_payload(kwargs)

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._queue_payload(kwargs)

    def _queue_payload(self, kwargs: dict[str, Any]) -> None:
        payload = kwargs.get("standard_logging_object")
        if not isinstance(payload, dict):
            return
        with self._lock:
            if len(self._queue) == self._queue.maxlen:
                log.warning("llmledger: queue full, dropping the oldest payload")
            self._queue.append(payload)
            self.received += 1
            full = len(self._queue) >= self.batch_size
        if full:
            self._wake.set()

    def flush(self) -> bool:
        """Post everything queued now; True when the queue is empty afterwards."""
        while True:
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            if not batch:
                return True
            body = b"\n".join(orjson.dumps(p, default=str) for p in batch)
            try:
                response = self._http.post(self.endpoint, content=body)
                ok = response.status_code < 500 and response.status_code not in (401, 403, 429)
                if response.status_code == 422:
                    log.warning("llmledger: some payloads were dead-lettered: %s", response.text[:500])
            except httpx.HTTPError as err:
                log.warning("llmledger: post to %s failed: %s", self.endpoint, err)
                ok = False
            if not ok:
                with self._lock:
                    self._queue.extendleft(reversed(batch))  # keep order for the next try
                return False
            self.sent += len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Flush what is queued and stop the sender thread (also run at interpreter exit)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
        self._http.close()
