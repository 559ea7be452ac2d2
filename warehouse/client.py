"""The one client API to ClickHouse: clickhouse-connect over embedded chDB or a server.

`Warehouse` hides which transport is in use. Both run the same SQL with server-side bound
parameters (`{name:Type}`), take Arrow in (`insert_arrow`) and give Polars out (`query_df`).
Every driver exception is translated into `warehouse.errors` here, naming the failing statement;
every query may carry a `tag` that lands in the server's `log_comment`, so the platform can see
what its own warehouse work costs per page and job (embedded, the tag only reaches `on_query`: a
per-call setting costs chDB a settings snapshot, SET and restore, ~5 ms on every read).

Embedded mode takes the store's owner lock (`warehouse.lock`) before opening chDB, because chDB
allows one process per store directory. Server mode (`Warehouse.server`) shares one session-less
client over a bounded HTTP connection pool between threads, retries transient failures
(`warehouse.transient`) and renders DDL through the deployment's topology (`warehouse.topology`).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
from clickhouse_connect import get_client
from clickhouse_connect.driver.binding import format_str, quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as DriverError
from clickhouse_connect.driver.httputil import get_pool_manager
from urllib3 import PoolManager
from urllib3.util.request import ACCEPT_ENCODING

from warehouse import chdb_compat
from warehouse.errors import ConnectionFailed, QueryFailed
from warehouse.lock import StoreLock
from warehouse.migrate import cluster_for_migrations
from warehouse.target import ServerTarget
from warehouse.topology import SingleNode, Topology
from warehouse.transient import call_with_retries

chdb_compat.apply()

log = logging.getLogger(__name__)

ARROW_RELATION = "__ARROW__"
T = TypeVar("T")
_IDEMPOTENT_DDL = re.compile(r"\bIF\s+(NOT\s+)?EXISTS\b", re.IGNORECASE)
# Small writes (dead letters, …) in server mode: the server batches them, the call returns once flushed.
ASYNC_INSERT_SETTINGS = {"async_insert": 1, "wait_for_async_insert": 1}

__all__ = ["ARROW_RELATION", "ServerTarget", "Warehouse", "identifier", "load_sql"]


class _SharedStoreLocks:
    """Process-wide refcounted owner locks: many Warehouse objects in one process share one store."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[Path, tuple[StoreLock, int]] = {}

    def acquire(self, store: Path) -> StoreLock:
        with self._mutex:
            lock, count = self._locks.get(store, (None, 0))
            if lock is None:
                lock = StoreLock(store)
                lock.acquire()
            self._locks[store] = (lock, count + 1)
            return lock

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


@contextmanager
def hold_store(store: Path) -> Iterator[StoreLock]:
    """Hold the embedded store's owner lock for a block (the service holds it for its whole run,
    across opening and closing connections, and announces itself in it); raises `StoreLocked`."""
    store = store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    lock = _STORE_LOCKS.acquire(store)
    try:
        yield lock
    finally:
        _STORE_LOCKS.release(store)


class Warehouse:
    """A connection to one llmledger database, embedded or on a server (or cluster)."""

    def __init__(
        self,
        client: Client,
        *,
        database: str,
        store: Path | None,
        topology: Topology | None = None,
        retries: int = 1,
        async_insert: bool = False,
        query_settings: Mapping[str, Any] | None = None,
        pool: PoolManager | None = None,
        arrow_encoding: str | None = None,
    ) -> None:
        self._client = client
        self.database = database
        self.store = store
        self.topology: Topology = topology or SingleNode()
        self.retries = retries
        self.async_insert = async_insert
        self._query_settings = dict(query_settings or {})
        self._pool = pool
        # clickhouse-connect's Arrow reads (raw queries) ask for no compression; ask for one urllib3 decodes
        self._arrow_headers = {"Accept-Encoding": arrow_encoding} if arrow_encoding else None
        if arrow_encoding:
            self._query_settings.setdefault("enable_http_compression", 1)
        self._closed = False
        # called with (tag, seconds) after every SELECT; the service's /metrics sets it
        self.on_query: Callable[[str | None, float], None] | None = None

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
    def server(
        cls,
        url: str,
        database: str | None = None,
        *,
        password: str | None = None,
        cluster: str | None = None,
        async_insert: bool = True,
        retries: int = 3,
        query_timeout_s: float | None = None,
    ) -> Warehouse:
        """Connect to a ClickHouse server (or a cluster's load balancer); the database comes from the
        URL path or `database` and is created when missing (`ON CLUSTER` in cluster mode).

        One clickhouse-connect client serves every thread: session ids are off (a ClickHouse session
        runs one query at a time, so a shared session would refuse concurrent API requests) and the
        HTTP connections come from one pool of `pool_size` (URL option), which also bounds how many
        statements this process runs at once. `retries` counts tries per statement on transient
        failures; `query_timeout_s` becomes the server-side `max_execution_time` of reads.
        """
        target = ServerTarget.parse(url).with_password(password)
        db = target.database or database or "llmledger"
        topology: Topology = cluster_for_migrations(cluster, db) if cluster else SingleNode()
        pool = get_pool_manager(**target.pool_options())
        common = {**target.client_kwargs(), "pool_mgr": pool, "autogenerate_session_id": False,
                  "client_name": "llmledger", "query_retries": 0}

        def connect() -> Client:
            bootstrap = get_client(**common)
            try:
                for statement in topology.render(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(db)}"):
                    bootstrap.command(statement)
            finally:
                bootstrap.close()
            return get_client(**common, database=db)

        try:
            client = call_with_retries(connect, attempts=retries, idempotent=True)
        except DriverError as err:
            pool.clear()
            raise ConnectionFailed(f"cannot connect to ClickHouse at {target.redacted()}: {err}") from err
        query_settings = {"max_execution_time": int(query_timeout_s)} if query_timeout_s else {}
        arrow_encoding = ("zstd" if "zstd" in ACCEPT_ENCODING else "gzip") if target.compress else None
        return cls(
            client, database=db, store=None, topology=topology, retries=retries, async_insert=async_insert,
            query_settings=query_settings, pool=pool, arrow_encoding=arrow_encoding,
        )

    @classmethod
    def from_settings(cls, settings: Any, *, database: str | None = None) -> Warehouse:
        """The warehouse the settings point at: a server when `warehouse.url` is set, else embedded."""
        section = settings.warehouse
        db = database or section.database
        if section.url:
            password = section.password.get_secret_value() if section.password else None
            return cls.server(
                section.url, db, password=password, cluster=section.cluster, async_insert=section.async_insert,
                retries=section.retries, query_timeout_s=section.query_timeout_s,
            )
        return cls.embedded(Path(settings.warehouse_path), db)

    @property
    def embedded_mode(self) -> bool:
        """True when this is an in-process chDB store."""
        return self.store is not None

    # ---- statements ---------------------------------------------------

    def _run(self, sql: str, fn: Callable[[], T], *, idempotent: bool) -> T:
        """Run one driver call with this warehouse's retry policy; driver errors become QueryFailed."""
        try:
            return call_with_retries(fn, attempts=self.retries, idempotent=idempotent)
        except DriverError as err:
            raise _translate(sql, err) from err

    def _timed(self, tag: str | None, run: Callable[[], T]) -> T:
        """`run()`, its wall time reported to `on_query` (when set), also when it raises."""
        if self.on_query is None:
            return run()
        began = time.perf_counter()
        try:
            return run()
        finally:
            self.on_query(tag, time.perf_counter() - began)

    def _tag(self, tag: str | None) -> dict[str, Any]:
        """The setting that tags a query on a server; none embedded (see the module docstring)."""
        return {} if self.embedded_mode else _log_comment(tag)

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None) -> pl.DataFrame:
        """Run a SELECT and return its result as a Polars frame (via Arrow)."""
        table = self.query_arrow(sql, params, tag=tag)
        return pl.from_arrow(table)  # type: ignore[return-value]

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None) -> pa.Table:
        """Run a SELECT and return its result as an Arrow table."""
        settings = {**self._query_settings, **self._tag(tag)}
        return self._timed(tag, lambda: self._run(
            sql,
            lambda: self._client.query_arrow(
                sql, parameters=dict(params or {}), settings=settings, transport_settings=self._arrow_headers
            ),
            idempotent=True,
        ))

    def query_rows(
        self, sql: str, params: Mapping[str, Any] | None = None, *, tag: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a SELECT and return Python rows (for small results)."""
        settings = {k: v for k, v in {**self._query_settings, **self._tag(tag)}.items() if k != "enable_http_compression"}
        return self._timed(tag, lambda: self._run(
            sql,
            lambda: list(self._client.query(sql, parameters=dict(params or {}), settings=settings).result_rows),
            idempotent=True,
        ))

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
        idempotent: bool = False,
        data: bytes | None = None,
    ) -> Any:
        """Run DDL or an INSERT … SELECT; returns the command's summary or scalar result.

        `idempotent=True` lets a failed attempt be retried on transient errors (a statement that is
        safe to run twice); otherwise it is retried only when it never reached the server.
        `data` is sent as the request body (for `input()`).
        """
        merged = {**self._tag(tag), **(settings or {})}
        return self._run(
            sql,
            lambda: self._client.command(
                sql, parameters=dict(params) if params else None, settings=merged or None, data=data
            ),
            idempotent=idempotent,
        )

    def ddl(self, statement: str, *, tag: str | None = None) -> None:
        """Run a statement written for one node, rendered for this deployment's topology (on a
        cluster: `ON CLUSTER`, shard tables, Distributed tables). Data statements pass through."""
        for rendered in self.topology.render(statement):
            self.command(rendered, tag=tag, idempotent=bool(_IDEMPOTENT_DDL.search(rendered)))

    def written_rows(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        tag: str | None = None,
        idempotent: bool = False,
        data: bytes | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> int:
        """Run an INSERT … SELECT and return how many rows it wrote."""
        merged = {**self.topology.write_settings(), **(settings or {})}
        result = self.command(sql, params, tag=tag, idempotent=idempotent, data=data, settings=merged)
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
        structure: Mapping[str, str],
        tag: str | None = None,
        idempotent: bool = False,
    ) -> int:
        """Run an `INSERT … SELECT` whose SQL names the batch `data` as `__ARROW__`; returns rows written.

        Embedded, chDB's `Python()` table function scans the Arrow table in place (it resolves the
        name on this frame); no copy, no temporary file. Against a server the batch travels in the
        request body in Arrow format and the SQL reads it with `input(structure)`: one request, no
        staging table, nothing left on the server between requests (so any replica of the service,
        and any node behind a load balancer, can take the next batch). `structure` maps column →
        ClickHouse type. `idempotent=True` (an anti-joined insert) allows retries on transient errors.
        """
        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        if self.embedded_mode:
            llmledger_arrow_batch = arrow  # noqa: F841 - read by name by chDB's Python() table function
            return self.written_rows(
                sql.replace(ARROW_RELATION, "Python(llmledger_arrow_batch)"), params, tag=tag, idempotent=idempotent
            )
        columns = ", ".join(f"{quote_identifier(name)} {ch_type}" for name, ch_type in structure.items())
        body = _arrow_ipc(arrow.select(list(structure)))
        statement = f"{sql.replace(ARROW_RELATION, f'input({format_str(columns)})')}\nFORMAT Arrow"
        return self.written_rows(statement, params, tag=tag, idempotent=idempotent, data=body)

    def insert_arrow(
        self, table: str, data: pl.DataFrame | pa.Table, *, tag: str | None = None, small: bool = False
    ) -> int:
        """Insert an Arrow table or Polars frame; columns are matched by name. Returns rows written.

        `small=True` marks frequent small writes (dead letters, records): against a server they use
        asynchronous inserts that wait for the flush (`async_insert=1, wait_for_async_insert=1`), so
        the server batches them into few parts and the call still returns only once they are durable.
        """
        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        if arrow.num_rows == 0:
            return 0
        settings = {**self.topology.write_settings(), **self._tag(tag)}
        if small and self.async_insert and not self.embedded_mode:
            settings.update(ASYNC_INSERT_SETTINGS)
        summary = self._run(
            f"INSERT INTO {table} FORMAT Arrow",
            lambda: self._client.insert_arrow(table, arrow, settings=settings or None),
            idempotent=False,
        )
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
            if self._pool is not None:
                self._pool.clear()
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


def _arrow_ipc(table: pa.Table) -> bytes:
    """An Arrow IPC file (ClickHouse's `Arrow` input format) of `table`."""
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _log_comment(tag: str | None) -> dict[str, Any]:
    return {"log_comment": f"llmledger:{tag}"} if tag else {}


def _translate(sql: str, err: DriverError) -> QueryFailed:
    code = getattr(err, "code", None)
    message = str(err).strip()
    # chDB and the server prefix the same engine message differently; keep the engine's part.
    start = message.find("Code: ")
    return QueryFailed(sql, message[start:] if start >= 0 else message, code=code)
