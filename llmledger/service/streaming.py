"""Long operations over HTTP (an ingest, an import, a reprice, a report run, a collector back-fill):
`operation(request, work)` runs `work(feed)` in a worker thread. A caller that accepts
`application/x-ndjson` (the CLI) gets its progress as it happens — one JSON object per line,
`{"task": n, "description", "total"}` and `{"advance": n, "amount"}` — then `{"result": …}` or
`{"error": {"status", "detail"}}`; any other caller gets the result as plain JSON when it is done.

`work` raises `HTTPException` for what the caller did wrong; `OperationError`s that the work's
own modules raise are mapped by `errors` (exception type → HTTP status).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from llmledger.operations import to_json
from llmledger.progress import Advance, Feed

log = logging.getLogger("llmledger.service")

NDJSON = "application/x-ndjson"
Work = Callable[[Feed], Any]


class EventFeed:
    """A progress feed that queues events for the response stream."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._next = 0
        self._lock = threading.Lock()

    def task(self, description: str, total: float | None = None) -> Advance:
        with self._lock:
            task_id, self._next = self._next, self._next + 1
        self.events.put({"task": task_id, "description": description, "total": total})
        return lambda amount: self.events.put({"advance": task_id, "amount": amount})


def _failure(err: BaseException, errors: Mapping[type[BaseException], int]) -> tuple[int, str]:
    if isinstance(err, HTTPException):
        return err.status_code, str(err.detail)
    if isinstance(err, ValidationError):  # one line: where and what
        first = err.errors()[0]
        return 422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    for kind, status in errors.items():
        if isinstance(err, kind):
            return status, str(err)
    log.error("operation failed", exc_info=err)
    return 500, f"{type(err).__name__}: {err}"


async def operation(request: Request, work: Work, *,
                    errors: Mapping[type[BaseException], int] | None = None) -> Response:
    """Run `work` and answer with its result, streaming progress to callers that accept NDJSON."""
    errors = errors or {}
    if NDJSON not in request.headers.get("accept", ""):
        from llmledger.progress import SILENT

        try:
            result = await run_in_threadpool(work, SILENT)
        except HTTPException:
            raise
        except Exception as err:  # noqa: BLE001 - mapped to an HTTP answer
            status, detail = _failure(err, errors)
            raise HTTPException(status, detail) from None
        return Response(to_json(result), media_type="application/json")

    feed = EventFeed()

    def run() -> None:
        try:
            feed.events.put({"result": work(feed)})
        except BaseException as err:  # noqa: BLE001 - reported in-band: the 200 header is already sent
            status, detail = _failure(err, errors)
            feed.events.put({"error": {"status": status, "detail": detail}})

    def lines() -> Iterator[bytes]:
        threading.Thread(target=run, name="operation", daemon=True).start()
        while True:
            try:
                event = feed.events.get(timeout=15)
            except queue.Empty:
                yield b"\n"  # keeps idle proxies from closing a long, quiet operation
                continue
            yield (to_json(event) + "\n").encode()
            if "result" in event or "error" in event:
                return

    return StreamingResponse(lines(), media_type=NDJSON)
