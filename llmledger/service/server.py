"""Running the service under uvicorn: hold the embedded store for the whole run, migrate,
optionally seed the demo, store a bootstrap key, decide where to listen, start the dashboard
process beside it (`llmledger.service.dashboard`) with a read key of its own, serve until
SIGINT/SIGTERM (uvicorn's handlers trigger the app's lifespan shutdown, which flushes the spool),
then stop the dashboard.

While it serves, the store's lock file says where (`url`) and holds a per-run admin token for
commands on this machine (`token`), so every `llmledger` command finds the service by itself
(`llmledger.dispatch`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import uvicorn

from llmledger.errors import UserError
from llmledger.progress import SILENT, Feed
from llmledger.runtime import open_warehouse
from llmledger.service import dashboard
from llmledger.service.app import create_app
from llmledger.service.dashboard import Dashboard
from llmledger.service.keys import KeyScope, KeyStore, LocalKeys
from llmledger.service.state import is_loopback
from llmledger.settings import Settings
from warehouse.lock import StoreLock

log = logging.getLogger("llmledger.service")

LOCALHOST = "127.0.0.1"


def prepare_store(settings: Settings, *, demo: bool, feed: Feed | None = None) -> bool:
    """Migrate (and seed the demo into an empty store, store the bootstrap key); returns whether
    any active API key exists."""
    with open_warehouse(settings) as wh:
        if demo and not wh.scalar("SELECT count() FROM calls", tag="service:demo-check"):
            from llmledger.demo import seed_demo

            log.info("empty store: seeding %d days of simulated traffic", settings.service.demo_days)
            result = seed_demo(wh, settings, days=settings.service.demo_days,
                               calls_per_day=settings.service.demo_calls_per_day, feed=feed)
            log.info("demo: %d calls, %d tool runs, %d node samples, %d alert incidents", result.written,
                     result.tool_runs, result.node_samples, result.incidents)
            from llmledger.summary import build_summary, render_summary

            render_summary(build_summary(wh, result.start, result.end))  # what the dashboards will show
        store = KeyStore(wh)
        bootstrap = settings.service.bootstrap_key
        if bootstrap is not None:
            try:
                key = store.ensure(bootstrap.get_secret_value(), [KeyScope.ADMIN], name="bootstrap")
            except ValueError as err:
                raise UserError(f"LLMLEDGER_SERVICE__BOOTSTRAP_KEY: {err}") from None
            if key.active:
                log.info("bootstrap admin key %s is in place", key.key_id)
            else:
                log.warning("the bootstrap key %s was revoked: it stays revoked (remove "
                            "LLMLEDGER_SERVICE__BOOTSTRAP_KEY from the environment)", key.key_id)
        return store.any_active()


def bind_address(host: str, *, keys_exist: bool) -> tuple[str, bool]:
    """(host to bind, exposed?): without any API key the service listens on localhost only."""
    if is_loopback(host):
        return host, False
    if not keys_exist:
        log.warning("no API key configured: listening on %s instead of %s; create a key with "
                    "`llmledger keys create --scope admin` (or set LLMLEDGER_SERVICE__BOOTSTRAP_KEY) to serve "
                    "beyond localhost", LOCALHOST, host)
        return LOCALHOST, False
    return host, True


def start_dashboard(settings: Settings, *, api_url: str, host: str, exposed: bool,
                    key: str | None = None) -> Dashboard | None:
    """Start the Streamlit dashboard as a client of `api_url`, listening on `host`; served on
    localhost it reads with `key` (its own), beyond it (`exposed`) every visitor signs in."""
    return dashboard.start(settings, api_url=api_url, host=host, exposed=exposed, key=key)


def local_url(bind: str, port: int) -> str:
    """How a process on this machine reaches a server bound to `bind`."""
    host = "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the captured SIGINT/SIGTERM after a graceful shutdown
    (which would interrupt an already finished lifespan): the process just exits 0. Calls
    `on_started` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


@contextlib.contextmanager
def _no_progress() -> Iterator[Feed]:
    yield SILENT


@contextlib.contextmanager
def _own_store(settings: Settings) -> Iterator[StoreLock | None]:
    """The embedded store's lock for the whole run (None with a ClickHouse server)."""
    if settings.warehouse.url:
        yield None
        return
    from warehouse.client import hold_store
    from warehouse.errors import StoreLocked
    from warehouse.lock import holder

    try:
        with hold_store(settings.warehouse_path) as lock:
            yield lock
    except StoreLocked:
        found = holder(settings.warehouse_path.resolve())
        if found is not None and found.url:
            raise UserError(f"llmledger is already running at {found.url} ({found.describe()})",
                            "stop it first, or use it: commands go through it by themselves") from None
        raise


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, demo: bool = False,
          progress: Callable[[], AbstractContextManager[Feed]] | None = None) -> None:
    """Run the service in this process until interrupted; `progress` shows the preparation (the
    demo's seeding) while it lasts."""
    with _own_store(settings) as lock:
        if lock is not None:
            lock.announce(state="starting")
        with (progress or _no_progress)() as feed:
            keys_exist = prepare_store(settings, demo=demo, feed=feed)
        if demo:
            from llmledger.demo import with_demo_budget

            settings = with_demo_budget(settings)  # the demo's team budget unless you configured your own
        bind, exposed = bind_address(host or settings.service.host, keys_exist=keys_exist)
        port = port or settings.service.port
        url = local_url(bind, port)
        local = LocalKeys.generate()
        config = uvicorn.Config(create_app(settings, exposed=exposed, local_keys=local), host=bind, port=port,
                                log_level="info", timeout_graceful_shutdown=30, access_log=False)

        def announce() -> None:
            if lock is not None:
                lock.announce(url=url, token=local.cli, dashboard_token=local.dashboard, state="serving")

        board = start_dashboard(settings, api_url=url, host=bind, exposed=exposed, key=local.dashboard)
        try:
            _Server(config, on_started=announce).run()
        finally:
            if lock is not None:
                lock.announce(url=None, token=None, dashboard_token=None, state="stopping")
            if board is not None:
                board.stop()
