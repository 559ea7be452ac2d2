"""Running the real service in tests: uvicorn in a thread of the test process (sharing the
session's chDB store, with its own database) or in a subprocess with its own store (for kill -9).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from llmledger.service import create_app
from llmledger.service.state import ServiceState
from llmledger.settings import Settings
from tests.databases import pool_for
from warehouse.client import Warehouse

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A service running in this process."""

    url: str
    settings: Settings
    state: ServiceState
    server: uvicorn.Server

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait_flushed(self, timeout: float = 20) -> None:
        """Until the spool has nothing pending (everything acknowledged is in the warehouse)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state.push.stats.pending_rows == 0 and not self.state.push.spool._queue:  # noqa: SLF001
                return
            time.sleep(0.02)
        raise TimeoutError("spool did not drain")

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.state.read_wh.query_rows(sql, params)


def service_settings(store: Path, home: Path, *, new_database: bool = False, **service: Any) -> Settings:
    """Settings for a service on the session store, flushing quickly, in a database of its own: one
    borrowed from the process's pool (migrated, prices loaded, as new; `start_in_thread` gives it
    back), or with `new_database` an empty one, which the service migrates when it starts."""
    settings = Settings(home=home, warehouse={"path": store},
                        service={"flush_interval_s": 0.05, "key_cache_s": 0, **service})
    database = f"svc_{uuid.uuid4().hex[:10]}" if new_database else pool_for(settings).borrow()
    return settings.model_copy(update={"warehouse": settings.warehouse.model_copy(update={"database": database})})


def start_in_thread(settings: Settings, *, exposed: bool = False) -> Iterator[Running]:
    """Serve `settings` in a thread until the generator is closed; then shut down (flushing) and
    drop the service's database."""
    port = free_port()
    app = create_app(settings, exposed=exposed)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("service did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", settings, app.state.service, server)
    finally:
        server.should_exit = True
        thread.join(60)
        pool = pool_for(settings)
        if pool.lent(settings.warehouse.database) and not thread.is_alive():  # else nothing writes to it now
            pool.give_back(settings.warehouse.database)
        else:
            with Warehouse.embedded(Path(settings.warehouse_path), settings.warehouse.database) as wh:
                wh.command(f"DROP DATABASE IF EXISTS {settings.warehouse.database} SYNC")


@pytest.fixture
def service(store: Path, tmp_path: Path) -> Iterator[Running]:
    """A running service of its own (own database and spool)."""
    yield from start_in_thread(service_settings(store, tmp_path / "home"))


@dataclass
class Subprocess:
    """`llmledger up` in a child process with its own store."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(60)
        return int(self.process.returncode)


def start_subprocess(home: Path, *, env: dict[str, str] | None = None, timeout: float = 90) -> Subprocess:
    """Start `python -m llmledger up` on a free port with `home` as its state directory."""
    port = free_port()
    log = home.parent / f"service-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "LLMLEDGER_HOME": str(home), "PYTHONPATH": str(REPO),
                   "LLMLEDGER_SERVICE__FLUSH_INTERVAL_S": "0.2", "LLMLEDGER_DASHBOARD__ENABLED": "false",
                   **(env or {})}
    environment.pop("LLMLEDGER_CONFIG", None)
    process = subprocess.Popen([sys.executable, "-m", "llmledger", "up", "--port", str(port)], cwd=home.parent,
                               env=environment, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Subprocess(url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"service did not start: {log.read_text()[-3000:]}")
