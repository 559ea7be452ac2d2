"""The one client API to ClickHouse: clickhouse-connect over embedded chDB or a server.

`Warehouse` hides which transport is in use. Both run the same SQL with server-side bound
parameters (`{name:Type}`), take Arrow in (`insert_arrow`) and give Polars out (`query_df`).
Every driver exception is translated into `warehouse.errors` here, naming the failing statement;
every query may carry a `tag` that lands in ClickHouse's `log_comment`, so the platform can see
what its own warehouse work costs per page and job.

Embedded mode takes the store's owner lock (`warehouse.lock`) before opening chDB, because chDB
allows one process per store directory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import polars as pl
import pyarrow as pa
from clickhouse_connect import get_client
from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as DriverError

from warehouse import chdb_compat
from warehouse.errors import ConnectionFailed, QueryFailed
from warehouse.lock import StoreLock

chdb_compat.apply()

log = logging.getLogger(__name__)

ARROW_RELATION = "__ARROW__"


@dataclass(frozen=True)
class ServerTarget:
    """Connection parameters parsed from a `clickhouse://` URL."""

    host: str
    port: int
    username: str
    password: str
    database: str | None
    secure: bool

    @classmethod
    def parse(cls, url: str) -> ServerTarget:
        """Parse `clickhouse[s]://user:pass@host:port/db?secure=1` (http/https schemes also accepted)."""
        parts = urlparse(url)
        if parts.scheme not in {"clickhouse", "clickhouses", "http", "https"}:
            raise ValueError(f"unsupported warehouse URL scheme {parts.scheme!r}; use clickhouse://host:8123/db")
        query = parse_qs(parts.query)
        secure = parts.scheme in {"clickhouses", "https"} or query.get("secure", ["0"])[0] in {"1", "true"}
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or None,
            secure=secure,
        )


class _SharedStoreLocks:
    """Process-wide refcounted owner locks: many Warehouse objects in one process share one store."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[Path, tuple[StoreLock, int]] = {}

    def acquire(self, store: Path) -> None:
        with self._mutex:
            lock, count = self._locks.get(store, (None, 0))
            if lock is None:
                lock = StoreLock(store)
                lock.acquire()
            self._locks[store] = (lock, count + 1)

    def release(self, store: Path) -> None:
        with self._mutex:
            lock, count = self._locks.get(store, (None, 0))
            if lock is None:
                return
            if count <= 1:
                lock.release()
                del self._locks[store]
            else:
                self._locks[store] = (lock, count - 1)


_STORE_LOCKS = _SharedStoreLocks()


class Warehouse:
    """A connection to one llmledger database, embedded or on a server."""

    def __init__(self, client: Client, *, database: str, store: Path | None) -> None:
        self._client = client
        self.database = database
        self.store = store
        self._closed = False

    # ---- construction -------------------------------------------------

    @classmethod
    def embedded(cls, store: Path, database: str) -> Warehouse:
        """Open (creating if needed) the chDB store at `store` and the database in it."""
        store = store.resolve()
        store.mkdir(parents=True, exist_ok=True)
        _STORE_LOCKS.acquire(store)
        try:
            bootstrap = get_client(interface="chdb", path=str(store))
            try:
                bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
            finally:
                bootstrap.close()
            client = get_client(interface="chdb", path=str(store), database=database)
        except DriverError as err:
            _STORE_LOCKS.release(store)
            raise ConnectionFailed(f"cannot open the embedded warehouse at {store}: {err}") from err
        except BaseException:
            _STORE_LOCKS.release(store)
            raise
        return cls(client, database=database, store=store)

    @classmethod
    def server(cls, url: str, database: str | None = None) -> Warehouse:
        """Connect to a ClickHouse server; the database comes from the URL path or `database`."""
        target = ServerTarget.parse(url)
        db = target.database or database or "llmledger"
        try:
            bootstrap = get_client(
                host=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                secure=target.secure,
            )
            try:
                bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(db)}")
            finally:
                bootstrap.close()
            client = get_client(
                host=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                secure=target.secure,
                database=db,
            )
        except DriverError as err:
            raise ConnectionFailed(f"cannot connect to ClickHouse at {target.host}:{target.port}: {err}") from err
        return cls(client, database=db, store=None)

    @classmethod
    def from_settings(cls, settings: Any, *, database: str | None = None) -> Warehouse:
        """The warehouse the settings point at: a server when `warehouse.url` is set, else embedded."""
        db = database or settings.warehouse.database
        if settings.warehouse.url:
            return cls.server(settings.warehouse.url, db)
        return cls.embedded(Path(settings.warehouse_path), db)

    @property
    def embedded_mode(self) -> bool:
        """True when this is an in-process chDB store."""
        return self.store is not None

    # ---- statements ---------------------------------------------------

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None) -> pl.DataFrame:
        """Run a SELECT and return its result as a Polars frame (via Arrow)."""
        table = self.query_arrow(sql, params, tag=tag)
        return pl.from_arrow(table)  # type: ignore[return-value]

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None) -> pa.Table:
        """Run a SELECT and return its result as an Arrow table."""
        try:
            return self._client.query_arrow(sql, parameters=dict(params or {}), settings=_tag(tag))
        except DriverError as err:
            raise _translate(sql, err) from err

    def query_rows(
        self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a SELECT and return Python rows (for small results)."""
        try:
            return list(self._client.query(sql, parameters=dict(params or {}), settings=_tag(tag)).result_rows)
        except DriverError as err:
            raise _translate(sql, err) from err

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None) -> Any:
        """Run a SELECT returning one value."""
        rows = self.query_rows(sql, params, tag=tag)
        return rows[0][0] if rows else None

    def command(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        tag: str | None = None,
    ) -> Any:
        """Run DDL or an INSERT … SELECT; returns the command's summary or scalar result."""
        merged = {**_tag(tag), **(settings or {})}
        try:
            return self._client.command(sql, parameters=dict(params) if params else None, settings=merged or None)
        except DriverError as err:
            raise _translate(sql, err) from err

    def written_rows(
        self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None
    ) -> int:
        """Run an INSERT … SELECT and return how many rows it wrote."""
        result = self.command(sql, params, tag=tag)
        written = getattr(result, "written_rows", None)
        if written is None:
            written = (getattr(result, "summary", None) or {}).get("written_rows", 0)
        return int(written)

    def written_rows_over_arrow(
        self,
        sql: str,
        data: pl.DataFrame | pa.Table,
        params: Mapping[str, Any] | None = None,
        *,
        stage_table: str,
        tag: str | None = None,
    ) -> int:
        """Run an `INSERT … SELECT` whose SQL names the batch `data` as `__ARROW__`; returns rows written.

        Embedded, chDB's `Python()` table function scans the Arrow table in place (it resolves the
        name on this frame); no copy, no temporary file. Against a server the batch is first
        inserted into `stage_table` (an existing Memory table the caller owns) and the SQL reads that.
        """
        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        if self.embedded_mode:
            llmledger_arrow_batch = arrow  # noqa: F841 - read by name by chDB's Python() table function
            return self.written_rows(sql.replace(ARROW_RELATION, "Python(llmledger_arrow_batch)"), params, tag=tag)
        self.command(f"TRUNCATE TABLE {quote_identifier(stage_table)}")
        try:
            self.insert_arrow(stage_table, arrow, tag=tag)
            return self.written_rows(sql.replace(ARROW_RELATION, quote_identifier(stage_table)), params, tag=tag)
        finally:
            self.command(f"TRUNCATE TABLE {quote_identifier(stage_table)}")

    def insert_arrow(self, table: str, data: pl.DataFrame | pa.Table, *, tag: str | None = None) -> int:
        """Insert an Arrow table or Polars frame; columns are matched by name. Returns rows written."""
        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        if arrow.num_rows == 0:
            return 0
        try:
            summary = self._client.insert_arrow(table, arrow, settings=_tag(tag) or None)
        except DriverError as err:
            raise _translate(f"INSERT INTO {table} FORMAT Arrow", err) from err
        return int(summary.written_rows or arrow.num_rows)

    def table_columns(self, table: str) -> dict[str, str]:
        """Column name → ClickHouse type for a table of this database."""
        rows = self.query_rows(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            {"db": self.database, "t": table},
        )
        return {name: type_ for name, type_ in rows}

    def close(self) -> None:
        """Close the connection and, in embedded mode, release this process's share of the store lock."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        finally:
            if self.store is not None:
                _STORE_LOCKS.release(self.store)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def identifier(name: str, allowed: Sequence[str] | frozenset[str]) -> str:
    """Quote an identifier that must come from an allow-list (group-by columns, table names)."""
    if name not in allowed:
        raise ValueError(f"{name!r} is not one of {sorted(allowed)}")
    return quote_identifier(name)


def load_sql(package: str, name: str) -> str:
    """Read a `.sql` file shipped inside a package (e.g. `load_sql("ingest.sql", "promote_calls.sql")`)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def _tag(tag: str | None) -> dict[str, Any]:
    return {"log_comment": f"llmledger:{tag}"} if tag else {}


def _translate(sql: str, err: DriverError) -> QueryFailed:
    code = getattr(err, "code", None)
    message = str(err).strip()
    # chDB and the server prefix the same engine message differently; keep the engine's part.
    start = message.find("Code: ")
    return QueryFailed(sql, message[start:] if start >= 0 else message, code=code)
