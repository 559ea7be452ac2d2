"""Shared fixtures: one real embedded ClickHouse (chDB) store per test session, one database per test.

chDB allows one engine per process, so the store is session-scoped; each test gets a fresh
database with the real migrations applied and prices loaded, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.pipeline import Pipeline
from ingest.pricing import load_prices
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.migrate import migrate


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's embedded store directory."""
    return tmp_path_factory.mktemp("llmledger-store") / "warehouse"


@pytest.fixture
def settings(store: Path, tmp_path: Path) -> Settings:
    """Settings pointing at the session store, with a per-test home for spools and outputs."""
    return Settings(home=tmp_path / "home", warehouse={"path": store})


@pytest.fixture
def fresh_wh(settings: Settings, store: Path) -> Iterator[Warehouse]:
    """A new, empty database (no migrations applied)."""
    database = f"t_{uuid.uuid4().hex[:10]}"
    wh = Warehouse.embedded(store, database)
    try:
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
