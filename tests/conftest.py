"""Shared fixtures: one real embedded ClickHouse (chDB) store per test session, one database per test.

chDB allows one engine per process, so the store is session-scoped; each test gets a database of
its own with the real migrations applied and prices loaded, in exactly the state a new one has: the
process migrates a template once and lends out copies that are reset after each test
(`tests.databases`). The `transport`
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
from tests.databases import DatabasePool, close_pools, pool_for
from warehouse.client import Warehouse


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


def pytest_sessionfinish(session: pytest.Session) -> None:
    close_pools()


@pytest.fixture(scope="session")
def database_pool(store: Path, tmp_path_factory: pytest.TempPathFactory) -> DatabasePool:
    """This process's migrated databases on the session store (see `tests.databases`)."""
    return pool_for(Settings(home=tmp_path_factory.mktemp("pool-home"), warehouse={"path": store}))


@contextmanager
def migrated_database(settings: Settings) -> Iterator[Warehouse]:
    """A database with the real migrations and prices, as new, for a test (`wh`) or a module's shared
    fixture; reset for reuse (or dropped) afterwards."""
    pool = pool_for(settings)
    with pool.database() as database:
        wh = Warehouse.from_settings(settings, database=database)
        try:
            _load_own_prices(wh, settings, pool)
            yield wh
        finally:
            wh.close()


@pytest.fixture
def wh(settings: Settings) -> Iterator[Warehouse]:
    """A database of the test's own with the real migrations applied and prices loaded."""
    with migrated_database(settings) as migrated:
        yield migrated


def _load_own_prices(wh: Warehouse, settings: Settings, pool: DatabasePool) -> None:
    """Settings with their own pricing get the price table a new database would have loaded for them."""
    if settings.pricing != pool.pricing:
        wh.command("TRUNCATE TABLE prices")
        wh.command("TRUNCATE TABLE price_loads")
        load_prices(wh, settings.pricing)


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
            patch.setattr(hybrid, "whole_hours", lambda *a, **k: None)
            return fn(*args, **kwargs)

    return run


# session-scoped services of the dashboard tests (seeded once, shared by their modules)
from tests.dashboard_support import demo_service, empty_service  # noqa: E402, F401


# Parallel runs (`make test` runs two pytest-xdist workers with `--dist loadgroup`): a module's
# tests stay together on one worker, so its module-scoped fixtures are built once; the modules that
# share the session's demo service run on one worker, so it is seeded once; and the tests of a
# module marked `spread` (independent tests, no module-scoped fixture) are dealt out one by one.
# Groups holding a `slow` or `browser` test are handed out first and the spread tests last
# (`--no-loadscope-reorder` keeps this order), so that no long module starts while the other worker idles.
SHARED_SESSION_FIXTURES = ("demo_service",)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups: dict[str, str] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        shared = next((f for f in SHARED_SESSION_FIXTURES if f in getattr(item, "fixturenames", ())), None)
        groups[module] = shared or groups.get(module, Path(module).stem)
    for item in items:
        if item.get_closest_marker("spread") and not item.get_closest_marker("xdist_group"):
            continue
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid.split("::", 1)[0]]))
        if getattr(config.option, "loadgroup", False) and "@" not in item.nodeid:
            # xdist's scheduler reads the group from a `@group` suffix of the test id; xdist 3.8 still
            # writes it to `item._nodeid`, which pytest 9.2 no longer reads (ids are `item._id`)
            name = "_".join(sorted({str(m.args[0]) for m in item.iter_markers("xdist_group")}))
            item._id = type(item.id).parse(f"{item.nodeid}@{name}")  # noqa: SLF001
    if getattr(config.option, "loadgroup", False):
        first = {_group(i) for i in items if i.get_closest_marker("slow") or i.get_closest_marker("browser")}
        # stable: collection order otherwise; the spread tests last, small units that fill the end
        items.sort(key=lambda i: 0 if _group(i) in first else 2 if i.get_closest_marker("spread") else 1)


def _group(item: pytest.Item) -> str:
    return item.nodeid.rpartition("@")[2] if "@" in item.nodeid else item.nodeid
