"""The service's FastAPI app: `create_app(settings)` builds it; its lifespan opens the warehouse
(migrated, prices loaded), replays and starts the push spool and the registered background
components, and on shutdown stops them in reverse — flushing everything pending — and closes
the warehouse. Nothing is opened at import or in `create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ingest.flusher import PushSpool
from ingest.pipeline import Pipeline
from llmledger import __version__
from llmledger.runtime import open_warehouse
from llmledger.service.components import REGISTRY, Component, ComponentFactory
from llmledger.service.keys import KeyStore, LocalKeys
from llmledger.service.push import Coalescer
from llmledger.service.routes import (
    alerting,
    behaviour,
    caching,
    calls,
    health,
    keys,
    nodes,
    ops,
    push,
    read,
    routing,
    spend,
)
from llmledger.service.routes import exports as export_routes
from llmledger.service.routes import metrics as metrics_routes
from llmledger.service.routes import reconciliation
from llmledger.service.routes.operations import build_router as operation_routes
from llmledger.service.state import ServiceState
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.errors import WarehouseError

log = logging.getLogger("llmledger.service")


def open_state(settings: Settings, *, exposed: bool = False, local_keys: LocalKeys | None = None) -> ServiceState:
    """Open the warehouse and build the service's state (spool not started yet)."""
    wh = open_warehouse(settings)
    read_wh: Warehouse | None = None
    try:
        read_wh = Warehouse.from_settings(settings)
        pipeline = Pipeline(wh, settings)
        svc = settings.service
        spool = PushSpool(pipeline, settings.spool_path, max_bytes=svc.spool_max_bytes,
                          flush_interval_s=svc.flush_interval_s, flush_rows=svc.flush_rows)
        state = ServiceState(settings=settings, wh=wh, read_wh=read_wh, pipeline=pipeline, push=spool,
                             keys=KeyStore(wh, cache_s=svc.key_cache_s), exposed=exposed, local_keys=local_keys)
        state.coalescer = Coalescer(state)
        state.meters.observe(wh, read_wh)
        return state
    except BaseException:
        if read_wh is not None:
            read_wh.close()
        wh.close()
        raise


def close_state(state: ServiceState) -> None:
    """Close what `open_state` opened."""
    state.pipeline.close()
    state.read_wh.close()
    state.wh.close()


def create_app(
    settings: Settings, *, components: Sequence[ComponentFactory] | None = None, exposed: bool = False,
    local_keys: LocalKeys | None = None,
) -> FastAPI:
    """The app. `components`: background factories (default: `components.REGISTRY`);
    `exposed`: the server listens beyond localhost, so a key is always required; `local_keys`:
    the per-run keys of the CLI and dashboard on this machine (`llmledger up` makes them)."""
    factories = list(REGISTRY if components is None else components)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(open_state, settings, exposed=exposed, local_keys=local_keys)
        started: list[Component] = []
        try:
            for component in [state.push, *(factory(state) for factory in factories)]:
                await run_in_threadpool(component.start)
                started.append(component)
            state.components = started[1:]
            app.state.service = state
            log.info("llmledger service ready; auth: %s", state.auth_mode()["detail"])
            yield
        finally:
            for component in reversed(started):
                try:
                    await run_in_threadpool(component.stop)
                except Exception:  # noqa: BLE001 - stop the others; the spool keeps what did not flush
                    log.exception("stopping %s failed", component.name)
            await run_in_threadpool(close_state, state)
            log.info("llmledger service stopped")

    app = FastAPI(
        title="llmledger",
        version=__version__,
        summary="LLM cost and latency attribution: push ingest (events, LiteLLM, OTLP) and the read API.",
        lifespan=lifespan,
    )
    for router in (health.router, push.router, read.router, spend.router, caching.router, behaviour.router,
                   nodes.router, ops.router, alerting.router, keys.router, routing.router,
                   reconciliation.router, calls.router):
        app.include_router(router)
    app.include_router(keys.whoami_router)
    app.include_router(operation_routes())  # the CLI's verbs (llmledger.operations)
    app.include_router(metrics_routes.router)
    app.include_router(export_routes.router)

    @app.exception_handler(WarehouseError)
    async def _warehouse_error(request: Request, err: WarehouseError) -> JSONResponse:
        log.error("warehouse error on %s %s: %s", request.method, request.url.path, err)
        return JSONResponse({"detail": err.user_message}, status_code=503)

    return app
