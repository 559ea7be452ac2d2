"""Migrated test databases, built once per test process and reset between tests instead of rebuilt.

Migrating a new database (some 150 DDL statements and ledger rows) and loading the price table cost
a test ~2-3 s on a quiet machine, and most tests need exactly that state. So each process migrates
one *template* database once; a test borrows a database from a pool and, when it is done, the pool
puts the database back into the template's state: every table truncated (`TRUNCATE ALL TABLES`,
which also empties the insert-deduplication logs), then the template's rows (the migration ledger,
the price table and its load record) copied in. A database is reused only when it then matches the
template exactly (every object's definition and row count); anything else (a test that altered,
dropped, added or detached a table) drops it, and the next borrower gets a new one cloned from the
template. So a test still sees only its own writes, from the same starting state as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.pricing import load_prices
from llmledger.settings import PricingSettings, Settings
from warehouse.client import Warehouse
from warehouse.migrate import migrate

# Objects that hold no rows of their own: created after the tables they read from and write to.
_VIEW_ENGINES = ("MaterializedView", "View", "LiveView", "WindowView")


class DatabasePool:
    """One process's migrated databases on the session store: a template and reusable copies."""

    def __init__(self, store: Path, pricing: PricingSettings) -> None:
        self.pricing = pricing
        self.template = f"t_template_{uuid.uuid4().hex[:8]}"
        self._admin = Warehouse.embedded(store, self.template)
        migrate(self._admin)
        load_prices(self._admin, pricing)
        self._objects = self._admin.query_rows(
            "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String} "
            "ORDER BY metadata_modification_time, name", {"db": self.template})
        self._seeded = [name for name, rows in self._admin.query_rows(
            "SELECT name, total_rows FROM system.tables WHERE database = {db:String} AND total_rows > 0 "
            "ORDER BY name", {"db": self.template})]
        self._state = self._fingerprint(self.template)
        self._free: list[str] = []
        self._lent: set[str] = set()

    def borrow(self) -> str:
        """A database in the template's state, for one borrower until it is given back."""
        while self._free:
            name = self._free.pop()
            if self._exists(name):  # a test may drop a database after giving it back (its own cleanup)
                break
        else:
            name = self._clone()
        self._lent.add(name)
        return name

    def _exists(self, database: str) -> bool:
        return bool(self._admin.scalar("SELECT count() FROM system.databases WHERE name = {db:String}",
                                       {"db": database}))

    def lent(self, database: str) -> bool:
        """True when `database` is one of this pool's, lent out now."""
        return database in self._lent

    def give_back(self, database: str) -> None:
        """Reset `database` to the template's state for the next borrower, or drop it when that fails."""
        self._lent.discard(database)
        try:
            self._admin.command(f"TRUNCATE ALL TABLES FROM {database}")
            for table in self._seeded:
                self._admin.command(f"INSERT INTO {database}.{table} SELECT * FROM {self.template}.{table}")
            if self._fingerprint(database) == self._state:
                self._free.append(database)
                return
        except Exception:  # noqa: BLE001 — a database that cannot be reset is dropped, not reused
            pass
        self.drop(database)

    def drop(self, database: str) -> None:
        self._admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")

    @contextmanager
    def database(self) -> Iterator[str]:
        """Borrow a database for a block (a module's shared database, a service's)."""
        name = self.borrow()
        try:
            yield name
        finally:
            self.give_back(name)

    def close(self) -> None:
        for name in [*self._free, *self._lent, self.template]:
            self.drop(name)
        self._free.clear()
        self._admin.close()

    def _clone(self) -> str:
        """A new database with the template's objects (definitions re-pointed at it) and rows."""
        name = f"t_{uuid.uuid4().hex[:10]}"
        self._admin.command(f"CREATE DATABASE {name}")
        try:
            for _, _, create in sorted(self._objects, key=lambda o: o[1] in _VIEW_ENGINES):
                self._admin.command(create.replace(f"{self.template}.", f"{name}."))
            for table in self._seeded:
                self._admin.command(f"INSERT INTO {name}.{table} SELECT * FROM {self.template}.{table}")
            if self._fingerprint(name) != self._state:
                raise RuntimeError(f"a clone of the template database differs from it: {name}")
        except BaseException:
            self.drop(name)
            raise
        return name

    def _fingerprint(self, database: str) -> list[tuple[str, str, str, int | None]]:
        """Every object's name, engine, definition (its own database name taken out) and row count."""
        rows = self._admin.query_rows(
            "SELECT name, engine, create_table_query, total_rows FROM system.tables WHERE database = {db:String} "
            "ORDER BY name", {"db": database})
        return [(name, engine, create.replace(f"{database}.", "<db>."), total) for name, engine, create, total in rows]


_POOLS: dict[Path, DatabasePool] = {}


def pool_for(settings: Settings) -> DatabasePool:
    """This process's pool on the settings' store, made on first use (its template migrated then)."""
    store = Path(settings.warehouse_path).resolve()
    if store not in _POOLS:
        _POOLS[store] = DatabasePool(store, settings.pricing)
    return _POOLS[store]


def close_pools() -> None:
    """Drop every pool's databases (at the end of the session)."""
    while _POOLS:
        _POOLS.popitem()[1].close()
