"""One route per registered operation (`llmledger.operations`): the CLI's verbs over HTTP.

GET parameters come from the query string, POST ones from a JSON body — or, for an upload
operation, from the query string with the file as the request body (streamed to
`<home>/uploads/` and removed when the operation ends). The caller needs the operation's scope
(`operator`: an admin key not bound to a project). Long operations stream their progress to
callers that accept NDJSON (`llmledger.service.streaming`). Errors: 404 for what does not exist,
403 for what the key may not touch, 422 for invalid input.
"""

# No `from __future__ import annotations` here: the routes are built at run time from each
# operation's parameter model, and FastAPI must see the real annotation objects.

import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from llmledger import operations as ops
from llmledger.progress import Feed
from llmledger.service.auth import Principal, State, operator, require
from llmledger.service.keys import KeyScope
from llmledger.service.state import ServiceState
from llmledger.service.streaming import operation as respond

OPERATOR_MARK = "x-llmledger-operator"  # maintenance work on every project (admin key not bound to a project)
ERRORS: dict[type[BaseException], int] = {LookupError: 404, PermissionError: 403, ValueError: 422}
SCOPES = {ops.READ: require(KeyScope.READ), ops.ADMIN: require(KeyScope.ADMIN), ops.OPERATOR: operator}
TAGS = {"ingest": "ingest", "import": "ingest", "jobs": "jobs", "collectors": "jobs", "rollups": "jobs",
        "signals": "alerts", "alerts": "alerts", "report": "reports", "routing": "read", "summary": "read"}


def build_router() -> APIRouter:
    """A router with every registered operation."""
    router = APIRouter()
    for op in ops.load_all().values():
        router.add_api_route(op.path, _endpoint(op), methods=[op.method], summary=op.summary,
                             description=(op.func.__doc__ or "").strip(), response_class=Response,
                             tags=[TAGS.get(op.name.split(".")[0], "admin")],
                             openapi_extra={OPERATOR_MARK: True} if op.scope == ops.OPERATOR else None)
    return router


def _endpoint(op: ops.Operation) -> Any:
    Params = op.params  # noqa: N806 - a type
    Caller = Annotated[Principal, Depends(SCOPES[op.scope])]  # noqa: N806

    if op.method == "GET" or op.upload:
        async def from_query(request: Request, state: State, who: Caller,
                             p: Annotated[Params, Query()]) -> Response:  # type: ignore[valid-type]
            return await _run(op, request, state, who, p)

        return from_query

    async def from_body(request: Request, state: State, who: Caller, p: Params) -> Response:  # type: ignore[valid-type]
        return await _run(op, request, state, who, p)

    return from_body


async def _run(op: ops.Operation, request: Request, state: ServiceState, who: Principal, p: Any) -> Response:
    folder = Path(state.settings.home) / "uploads" / uuid.uuid4().hex
    upload = await _receive(request, folder, getattr(p, "name", None)) if op.upload else None
    if op.upload and upload is None and op.name != "routing.advise":  # the advice's replay file is optional
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(422, "send the file as the request body")

    def work(feed: Feed) -> Any:
        try:
            ctx = ops.OpContext(
                wh=state.read_wh if op.scope == ops.READ else state.wh, settings=state.settings,
                scope=who.read_scope, feed=feed, upload=upload, pipeline=state.pipeline,
                writer_lock=state.pipeline.writer.lock, run_job=_scheduler(state), in_service=True)
            return op.func(ctx, p)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return await respond(request, work, errors=ERRORS)


async def _receive(request: Request, folder: Path, name: str | None) -> Path | None:
    """Stream the request body to a file named `name` in `folder`; None for an empty body."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or "upload")
    size = 0
    with target.open("wb") as out:
        async for chunk in request.stream():
            if chunk:
                size += len(chunk)
                await run_in_threadpool(out.write, chunk)
    return target if size else None


def _scheduler(state: ServiceState) -> Any:
    """The scheduler's `run_now` (jobs run on its connection, recorded as manual), if it runs here."""
    for component in state.components:
        if component.name == "scheduler":
            return component.run_now  # type: ignore[attr-defined]
    return None
