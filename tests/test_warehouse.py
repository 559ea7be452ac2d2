"""The warehouse client, the migration runner and the embedded store's owner lock, on real chDB."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import both_transports
from warehouse.client import Warehouse
from warehouse.errors import QueryFailed, SchemaMismatch, StoreLocked
from warehouse.migrate import Migration, applied, discover, migrate, split_statements

REPO = Path(__file__).resolve().parents[1]


@both_transports
def test_migrations_apply_once_and_record_checksums(fresh_wh: Warehouse) -> None:
    names = migrate(fresh_wh)
    assert names == [m.name for m in discover()]
    assert migrate(fresh_wh) == []
    recorded = applied(fresh_wh)
    assert {v: c for v, (_, c) in recorded.items()} == {m.version: m.checksum for m in discover()}
    assert {"calls", "prices", "dead_letters", "ingest_batches", "tool_runs"} <= set(
        r[0] for r in fresh_wh.query_rows("SELECT name FROM system.tables WHERE database = currentDatabase()")
    )


@both_transports
def test_edited_applied_migration_is_refused(fresh_wh: Warehouse) -> None:
    migrations = discover()
    migrate(fresh_wh, migrations)
    edited = [*migrations[:-1], Migration(migrations[-1].version, migrations[-1].name, migrations[-1].sql + "\n-- x")]
    with pytest.raises(SchemaMismatch, match="edited after it was applied"):
        migrate(fresh_wh, edited)


def test_migration_missing_on_disk_is_refused(fresh_wh: Warehouse) -> None:
    migrations = discover()
    migrate(fresh_wh, migrations)
    with pytest.raises(SchemaMismatch, match="missing on disk"):
        migrate(fresh_wh, migrations[:-1])


def test_migration_numbers_are_unique_and_max_file_names_the_newest() -> None:
    migrations = discover()
    assert len({m.version for m in migrations}) == len(migrations)
    newest = int((REPO / "migrations" / "max_migration.txt").read_text().strip())
    assert newest == migrations[-1].version


def test_split_statements_keeps_semicolons_in_strings() -> None:
    sql = "CREATE TABLE a (x String DEFAULT ';');\n-- comment only;\nSELECT 'a;\nb';\n"
    assert split_statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')", "-- comment only;\nSELECT 'a;\nb'"]


def test_split_statements_ignores_quotes_in_comments() -> None:
    sql = "-- the table's comment\nCREATE TABLE a (x UInt8);\n-- don't split here; or here\nSELECT 1;\n"
    assert split_statements(sql) == ["-- the table's comment\nCREATE TABLE a (x UInt8)", "-- don't split here; or here\nSELECT 1"]


@both_transports
def test_arrow_round_trip_with_bound_parameters(wh: Warehouse) -> None:
    wh.command("CREATE TABLE t (name String, n UInt32) ENGINE = Memory")
    wh.insert_arrow("t", pl.DataFrame({"name": ["a", "b", "c"], "n": pl.Series([1, 2, 3], dtype=pl.UInt32)}))
    out = wh.query_df("SELECT name, n FROM t WHERE n >= {k:UInt32} ORDER BY n", {"k": 2})
    assert out.to_dicts() == [{"name": "b", "n": 2}, {"name": "c", "n": 3}]
    hostile = "x' OR 1=1 --"
    assert wh.query_df("SELECT count() AS c FROM t WHERE name = {v:String}", {"v": hostile})["c"][0] == 0


@both_transports
def test_query_errors_name_the_statement(wh: Warehouse) -> None:
    with pytest.raises(QueryFailed) as info:
        wh.query_df("SELECT no_such_column FROM calls")
    assert "no_such_column" in str(info.value)
    assert "in statement: SELECT no_such_column FROM calls" in str(info.value)


def test_second_process_is_refused_with_the_holder_named(wh: Warehouse) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from warehouse.client import Warehouse
        from warehouse.errors import StoreLocked
        try:
            Warehouse.embedded(Path({str(wh.store)!r}), "other")
        except StoreLocked as err:
            print(err)
            sys.exit(3)
        sys.exit(0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 3, result.stderr
    assert f"process {os.getpid()}" in result.stdout
    assert "LLMLEDGER_WAREHOUSE__URL" in result.stdout


def test_the_lock_file_tells_others_where_the_service_listens(tmp_path: Path) -> None:
    from warehouse.lock import StoreLock, holder

    store = tmp_path / "warehouse"
    assert holder(store) is None
    lock = StoreLock(store)
    lock.acquire()
    try:
        found = holder(store)
        assert found is not None and found.pid == str(os.getpid()) and found.url is None
        lock.announce(url="http://127.0.0.1:8787", token="llk_local-cli_x", state="serving")
        found = holder(store)
        assert found is not None and (found.url, found.token, found.state) == ("http://127.0.0.1:8787",
                                                                               "llk_local-cli_x", "serving")
        assert (lock.path.stat().st_mode & 0o777) == 0o600  # it holds a token: its owner's eyes only
        lock.announce(url=None, token=None)
        assert holder(store).url is None  # type: ignore[union-attr]
    finally:
        lock.release()
    assert holder(store) is None  # a released (or dead) holder leaves nothing behind


def test_lock_is_shared_within_one_process(wh: Warehouse) -> None:
    assert wh.store is not None
    with Warehouse.embedded(wh.store, wh.database) as second:
        assert second.scalar("SELECT count() FROM calls") == 0
    assert wh.scalar("SELECT 1") == 1
    assert issubclass(StoreLocked, Exception)
