"""The test databases lent by `tests.databases`: a database given back reaches its next borrower
exactly as a new one would be (migrated, prices loaded, none of the last borrower's rows or leases),
and one whose schema a test changed, or that a test dropped, is never lent again."""

from __future__ import annotations

from pathlib import Path

from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from tests.databases import DatabasePool
from tests.factories import make_call, write_jsonl
from warehouse.client import Warehouse
from warehouse.migrate import check


def _counts(wh: Warehouse) -> dict[str, int]:
    rows = wh.query_rows("SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
                         "AND total_rows IS NOT NULL")
    return {name: int(total) for name, total in rows}


def test_a_database_given_back_is_lent_again_as_new(database_pool: DatabasePool, settings: Settings,
                                                      tmp_path: Path) -> None:
    name = database_pool.borrow()
    with Warehouse.from_settings(settings, database=name) as wh:
        new = _counts(wh)
        with Pipeline(wh, settings) as pipeline:
            assert pipeline.ingest_file(write_jsonl(tmp_path / "c.jsonl", [make_call()])).written == 1
        # a lease claimed: scheduler_leases deduplicates inserts by token (warehouse/lease.py)
        wh.command("INSERT INTO scheduler_leases (name, term, owner, expires_at) VALUES ('lease', 1, 'a', now64(3))",
                   settings={"insert_deduplication_token": "lease/1"})
        assert _counts(wh)["calls"] == 1 and _counts(wh) != new
    database_pool.give_back(name)

    again = database_pool.borrow()
    assert again == name  # reused, not rebuilt
    try:
        with Warehouse.from_settings(settings, database=again) as wh:
            assert _counts(wh) == new and check(wh) == []
            assert wh.scalar("SELECT count() FROM prices") > 0
            # the deduplication log went with the rows: the same claim succeeds again
            wh.command("INSERT INTO scheduler_leases (name, term, owner, expires_at) VALUES ('lease', 1, 'b', now64(3))",
                       settings={"insert_deduplication_token": "lease/1"})
            assert wh.query_rows("SELECT owner FROM scheduler_leases") == [("b",)]
    finally:
        database_pool.give_back(again)


def test_a_database_whose_schema_changed_is_dropped(database_pool: DatabasePool, settings: Settings) -> None:
    name = database_pool.borrow()
    with Warehouse.from_settings(settings, database=name) as wh:
        wh.command("ALTER TABLE calls ADD COLUMN scratch UInt8 DEFAULT 0")
    database_pool.give_back(name)
    other = database_pool.borrow()
    try:
        assert other != name
        with Warehouse.from_settings(settings, database=other) as wh:
            assert wh.query_rows("SELECT name FROM system.databases WHERE name = {n:String}", {"n": name}) == []
            assert "scratch" not in wh.table_columns("calls")
    finally:
        database_pool.give_back(other)


def test_a_database_dropped_after_it_was_given_back_is_not_lent(database_pool: DatabasePool,
                                                                settings: Settings) -> None:
    """A test that cleans up after itself (drops its service's database once the service gave it
    back) must not leave the next borrower a database that no longer exists."""
    name = database_pool.borrow()
    database_pool.give_back(name)
    database_pool.drop(name)
    other = database_pool.borrow()
    try:
        assert other != name
        with Warehouse.from_settings(settings, database=other) as wh:
            assert check(wh) == [] and wh.scalar("SELECT count() FROM prices") > 0
    finally:
        database_pool.give_back(other)
