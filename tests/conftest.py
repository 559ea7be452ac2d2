"""Shared fixtures: one real embedded ClickHouse (chDB) store per test session, one database per test.

chDB allows one engine per process, so the store is session-scoped; each test gets a fresh
database with the real migrations applied and prices loaded, dropped afterwards. The `transport`
fixture picks how the test reaches it: `embedded` (clickhouse-connect's chDB interface, the default)
or `http` (clickhouse-connect's HTTP client against `tests.chhttp`, a ClickHouse-speaking endpoint
over the same engine). Tests run over both with `@both_transports`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import Pipeline
from ingest.pricing import load_prices
from llmledger.settings import Settings
from tests.chhttp import ClickHouseHTTP
from warehouse.client import Warehouse
from warehouse.migrate import migrate


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's embedded store directory."""
    return tmp_path_factory.mktemp("llmledger-store") / "warehouse"


TRANSPORTS = ("embedded", "http")
both_transports = pytest.mark.parametrize("transport", TRANSPORTS, indirect=True)


@pytest.fixture(scope="session")
def chhttp(store: Path) -> Iterator[ClickHouseHTTP]:
    """The session's ClickHouse HTTP endpoint over the session store (user `llmledger`, a password)."""
    store.mkdir(parents=True, exist_ok=True)
    endpoint = ClickHouseHTTP(store, user="llmledger", password="s3cret").start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> str:
    """How tests reach the warehouse (default `embedded`); `@both_transports` runs a test over both."""
    return str(getattr(request, "param", "embedded"))


@pytest.fixture
def settings(store: Path, tmp_path: Path, transport: str, request: pytest.FixtureRequest) -> Settings:
    """Settings pointing at the session store (embedded) or at the endpoint (http), with a per-test
    home for spools and outputs."""
    if transport == "http":
        endpoint: ClickHouseHTTP = request.getfixturevalue("chhttp")
        return Settings(home=tmp_path / "home", warehouse={"url": endpoint.url(), "path": store})
    return Settings(home=tmp_path / "home", warehouse={"path": store})


@pytest.fixture
def fresh_wh(settings: Settings, store: Path) -> Iterator[Warehouse]:
    """A new, empty database (no migrations applied), over the test's transport."""
    database = f"t_{uuid.uuid4().hex[:10]}"
    wh = Warehouse.from_settings(settings, database=database)
    try:
        yield wh
    finally:
        wh.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        wh.close()


@contextmanager
def migrated_database(settings: Settings) -> Iterator[Warehouse]:
    """A new database with the real migrations and prices, for a module's shared (module-scoped)
    fixture; dropped afterwards."""
    database = f"t_{uuid.uuid4().hex[:10]}"
    wh = Warehouse.from_settings(settings, database=database)
    try:
        migrate(wh)
        load_prices(wh, settings.pricing)
        yield wh
    finally:
        wh.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        wh.close()


@pytest.fixture
def wh(fresh_wh: Warehouse, settings: Settings) -> Warehouse:
    """A new database with the real migrations applied and prices loaded."""
    migrate(fresh_wh)
    load_prices(fresh_wh, settings.pricing)
    return fresh_wh


@pytest.fixture
def pipeline(wh: Warehouse, settings: Settings) -> Iterator[Pipeline]:
    """The ingest pipeline on the test database."""
    with Pipeline(wh, settings) as p:
        yield p


@pytest.fixture
def raw_only(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run a query with the rollups switched off: its plan over raw calls, the reference that
    rollup-served reads must equal."""
    from warehouse.queries import hybrid

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with monkeypatch.context() as patch:
            patch.setattr(hybrid, "rows", lambda *a, **k: None)
            patch.setattr(hybrid, "whole_days", lambda *a, **k: None)
            return fn(*args, **kwargs)

    return run


# session-scoped services of the dashboard tests (seeded once, shared by their modules)
from tests.dashboard_support import demo_service, empty_service  # noqa: E402, F401
