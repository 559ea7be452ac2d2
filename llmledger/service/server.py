"""Running the service under uvicorn: migrate, optionally seed the demo, decide where to listen,
start the dashboard process beside it (`llmledger.service.dashboard`), serve until SIGINT/SIGTERM
(uvicorn's handlers trigger the app's lifespan shutdown, which flushes the spool), then stop the
dashboard.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from llmledger.runtime import open_warehouse
from llmledger.service import dashboard
from llmledger.service.app import create_app
from llmledger.service.dashboard import Dashboard
from llmledger.service.keys import KeyStore
from llmledger.service.state import is_loopback
from llmledger.settings import Settings

log = logging.getLogger("llmledger.service")

LOCALHOST = "127.0.0.1"


def prepare_store(settings: Settings, *, demo: bool) -> bool:
    """Migrate (and seed the demo into an empty store); returns whether any active API key exists."""
    with open_warehouse(settings) as wh:
        if demo and not wh.scalar("SELECT count() FROM calls", tag="service:demo-check"):
            from llmledger.demo import seed_demo

            log.info("empty store: seeding %d days of simulated traffic", settings.service.demo_days)
            result = seed_demo(wh, settings, days=settings.service.demo_days,
                               calls_per_day=settings.service.demo_calls_per_day)
            log.info("demo: %d calls, %d tool runs, %d node samples, %d alert incidents", result.written,
                     result.tool_runs, result.node_samples, result.incidents)
            from llmledger.summary import build_summary, render_summary

            render_summary(build_summary(wh, result.start, result.end))  # what the dashboards will show
        return KeyStore(wh).any_active()


def bind_address(host: str, *, keys_exist: bool) -> tuple[str, bool]:
    """(host to bind, exposed?): without any API key the service listens on localhost only."""
    if is_loopback(host):
        return host, False
    if not keys_exist:
        log.warning("no API key configured: listening on %s instead of %s; create a key with "
                    "`llmledger keys create --scope admin` to serve beyond localhost", LOCALHOST, host)
        return LOCALHOST, False
    return host, True


def start_dashboard(settings: Settings, *, api_url: str, host: str, exposed: bool) -> Dashboard | None:
    """Start the Streamlit dashboard as a client of `api_url`, listening on `host`; served beyond
    localhost (`exposed`), its visitors must sign in with a read key."""
    return dashboard.start(settings, api_url=api_url, host=host, exposed=exposed)


def local_url(bind: str, port: int) -> str:
    """How a process on this machine reaches a server bound to `bind`."""
    host = "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the captured SIGINT/SIGTERM after a graceful shutdown
    (which would interrupt an already finished lifespan): the process just exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, demo: bool = False) -> None:
    """Run the service in this process until interrupted."""
    keys_exist = prepare_store(settings, demo=demo)
    if demo:
        from llmledger.demo import with_demo_budget

        settings = with_demo_budget(settings)  # the demo's team budget unless you configured your own
    bind, exposed = bind_address(host or settings.service.host, keys_exist=keys_exist)
    port = port or settings.service.port
    config = uvicorn.Config(create_app(settings, exposed=exposed), host=bind, port=port, log_level="info",
                            timeout_graceful_shutdown=30, access_log=False)
    board = start_dashboard(settings, api_url=local_url(bind, port), host=bind, exposed=exposed)
    try:
        _Server(config).run()
    finally:
        if board is not None:
            board.stop()
