"""The server path of `Warehouse` against the ClickHouse HTTP endpoint (tests/chhttp.py): what reaches
the server (tags, settings, compression, one stateless request per batch), TLS, credentials,
retries of transient failures, and concurrent use of one warehouse from many threads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import polars as pl
import pytest
import urllib3
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from ingest.pipeline import Pipeline
from ingest.writer import DeadLetter, write_dead_letters
from llmledger.settings import Settings
from tests.chhttp import ClickHouseHTTP, self_signed_tls
from tests.conftest import both_transports
from tests.factories import make_call, write_jsonl
from warehouse.client import Warehouse
from warehouse.errors import ConnectionFailed, QueryFailed
from warehouse.target import ServerTarget
from warehouse.transient import is_transient, never_sent



@pytest.fixture
def transport(request: pytest.FixtureRequest) -> str:
    """This module's tests reach the warehouse over HTTP unless a test asks for both."""
    return str(getattr(request, "param", "http"))


@pytest.fixture
def endpoint(chhttp: ClickHouseHTTP) -> Iterator[ClickHouseHTTP]:
    """The session endpoint with its log cleared for this test."""
    chhttp.log.clear()
    chhttp.fail_next.clear()
    yield chhttp
    chhttp.fail_next.clear()


def test_url_carries_tls_timeouts_compression_and_pool() -> None:
    target = ServerTarget.parse(
        "clickhouse://ll%40m:p%2Fw@ch.internal:8443/analytics?secure=1&ca_cert=/etc/ch/ca.pem&verify=1"
        "&connect_timeout=3&send_receive_timeout=90&compress=zstd&pool_size=16&server_host_name=ch"
    )
    assert (target.username, target.password, target.database, target.port) == ("ll@m", "p/w", "analytics", 8443)
    assert target.secure and target.verify and target.ca_cert == "/etc/ch/ca.pem"
    assert (target.connect_timeout_s, target.send_receive_timeout_s, target.compress) == (3.0, 90.0, "zstd")
    assert target.pool_options() == {
        "maxsize": 16, "block": True, "verify": True, "ca_cert": "/etc/ch/ca.pem",
        "server_hostname": "ch", "assert_hostname": "ch",
    }
    assert "p/w" not in target.redacted()
    assert target.with_password("from-env").password == "from-env"
    assert ServerTarget.parse("clickhouses://h").port == 8443
    with pytest.raises(ValueError, match="unknown warehouse URL option"):
        ServerTarget.parse("clickhouse://h/db?sslmode=require")
    with pytest.raises(ValueError, match="not a boolean"):
        ServerTarget.parse("clickhouse://h/db?verify=maybe")


def test_query_tags_and_read_timeouts_reach_the_server(wh: Warehouse, endpoint: ClickHouseHTTP) -> None:
    wh.query_df("SELECT count() FROM calls", tag="page:overview")
    (logged,) = endpoint.queries("SELECT count() FROM calls")
    assert logged.settings["log_comment"] == "llmledger:page:overview"
    assert logged.settings["max_execution_time"] == "60"
    assert logged.user == "llmledger"


def test_a_batch_is_one_stateless_request(pipeline: Pipeline, wh: Warehouse, endpoint: ClickHouseHTTP, tmp_path: Path) -> None:
    tables_before = set(r[0] for r in wh.query_rows("SHOW TABLES"))
    endpoint.log.clear()
    summary = pipeline.ingest_file(write_jsonl(tmp_path / "a.jsonl", [make_call(), make_call(), make_call()]))
    assert summary.written == 3
    writes = endpoint.queries("INSERT INTO calls")
    assert len(writes) == 1 and "FROM input(" in writes[0].query
    assert writes[0].settings["log_comment"] == "llmledger:ingest:promote"
    assert not endpoint.queries("Memory") and not endpoint.queries("TRUNCATE")
    assert set(r[0] for r in wh.query_rows("SHOW TABLES")) == tables_before


def test_small_writes_use_async_inserts_that_wait(wh: Warehouse, endpoint: ClickHouseHTTP) -> None:
    letter = DeadLetter("src", "malformed_json", "bad", 1, b"{")
    assert write_dead_letters(wh, [letter], batch_id="b1", max_raw_bytes=100) == 1
    (insert,) = [q for q in endpoint.queries("dead_letters") if q.query.startswith("INSERT")]
    assert insert.settings["async_insert"] == "1" and insert.settings["wait_for_async_insert"] == "1"
    assert wh.scalar("SELECT count() FROM dead_letters") == 1


def test_responses_are_compressed_as_the_url_asks(chhttp: ClickHouseHTTP, endpoint: ClickHouseHTTP) -> None:
    for compress, native, arrow in (("lz4", "lz4", "zstd"), ("gzip", "gzip", "zstd"), ("0", "", "")):
        with Warehouse.server(chhttp.url(compress=compress), "default") as wh:
            endpoint.log.clear()
            assert len(wh.query_rows("SELECT number FROM numbers(1000)")) == 1000
            assert wh.query_df("SELECT number FROM numbers(1001)").height == 1001
            assert endpoint.queries("numbers(1000)")[0].response_encoding == native
            assert endpoint.queries("numbers(1001)")[0].response_encoding == arrow


def test_native_inserts_with_compressed_bodies(chhttp: ClickHouseHTTP, endpoint: ClickHouseHTTP) -> None:
    database = f"n_{uuid.uuid4().hex[:8]}"
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=chhttp.port, username="llmledger", password="s3cret", compress="lz4"
    )
    try:
        client.command(f"CREATE DATABASE {database}")
        client.command(f"CREATE TABLE {database}.t (k String, n UInt64) ENGINE = MergeTree ORDER BY k")
        summary = client.insert(f"{database}.t", [["a", 1], ["b", 2]], column_names=["k", "n"])
        assert summary.written_rows == 2
        assert endpoint.queries(f"INSERT INTO {database}.t")[0].request_encoding == "lz4"
        assert client.query(f"SELECT sum(n) FROM {database}.t").result_rows == [(3,)]
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database}")
        client.close()


def test_errors_keep_the_engine_code_over_http(wh: Warehouse) -> None:
    with pytest.raises(QueryFailed) as info:
        wh.query_df("SELECT * FROM no_such_table")
    assert info.value.code == 60
    assert "UNKNOWN_TABLE" in str(info.value)


def test_wrong_credentials_are_refused(chhttp: ClickHouseHTTP) -> None:
    with pytest.raises(ConnectionFailed, match="AUTHENTICATION_FAILED"):
        Warehouse.server(chhttp.url().replace("s3cret", "wrong"), "default", retries=1)
    settings = Settings(warehouse={"url": chhttp.url().replace("s3cret", "wrong"), "password": "s3cret"})
    with Warehouse.from_settings(settings, database="default") as wh:  # the environment's password wins
        assert wh.scalar("SELECT 1") == 1


def test_transient_errors_are_retried_where_safe(wh: Warehouse, endpoint: ClickHouseHTTP) -> None:
    busy = (202, "TOO_MANY_SIMULTANEOUS_QUERIES", "Code: 202. DB::Exception: Too many simultaneous queries. (TOO_MANY_SIMULTANEOUS_QUERIES)")
    endpoint.fail_next[:] = [busy, busy]
    assert wh.scalar("SELECT 41 + 1") == 42  # a read: retried
    endpoint.fail_next[:] = [busy]
    with pytest.raises(QueryFailed, match="TOO_MANY_SIMULTANEOUS_QUERIES"):  # a plain write: not repeated
        wh.command("INSERT INTO price_loads (loaded_at, checksum) VALUES (now64(3), 'x')")
    endpoint.fail_next[:] = [busy]
    wh.command("INSERT INTO price_loads (loaded_at, checksum) VALUES (now64(3), 'y')", idempotent=True)
    assert wh.scalar("SELECT count() FROM price_loads WHERE checksum IN ('x', 'y')") == 1
    endpoint.fail_next[:] = [(62, "SYNTAX_ERROR", "Syntax error")]
    with pytest.raises(QueryFailed):  # not transient: no retry
        wh.scalar("SELECT 1")


def test_an_unreachable_server_is_retried_then_reported(tmp_path: Path) -> None:
    began = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        Warehouse.server("clickhouse://default@127.0.0.1:9/db?connect_timeout=1", retries=2)
    assert time.monotonic() - began < 10
    try:
        clickhouse_connect.get_client(host="127.0.0.1", port=9, connect_timeout=1)
    except Exception as err:  # noqa: BLE001 - classifying the driver's own error
        assert never_sent(err) and is_transient(err, idempotent=False)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_with_a_private_ca(store: Path, tmp_path: Path) -> None:
    context, ca = self_signed_tls(tmp_path)
    secure = ClickHouseHTTP(store, user="llmledger", password="s3cret", tls=context).start()
    try:
        with Warehouse.server(secure.url(ca_cert=str(ca)), "default") as wh:
            assert wh.scalar("SELECT 1") == 1
        with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            Warehouse.server(secure.url(), "default", retries=1)
        with Warehouse.server(secure.url(verify="0"), "default") as wh:
            assert wh.scalar("SELECT 2") == 2
    finally:
        secure.stop()


def test_one_warehouse_serves_many_threads(wh: Warehouse, endpoint: ClickHouseHTTP) -> None:
    errors: list[BaseException] = []
    results: list[int] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                results.append(int(wh.scalar("SELECT {i:UInt32} + count() FROM numbers(100)", {"i": i})))
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == sorted(i + 100 for i in range(16) for _ in range(5))
    assert all("session_id" not in q.settings for q in endpoint.log)


def test_a_shared_session_cannot_serve_concurrent_queries(chhttp: ClickHouseHTTP) -> None:
    """Why the warehouse turns session ids off: one ClickHouse session runs one query at a time."""
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=chhttp.port, username="llmledger", password="s3cret", autogenerate_session_id=True
    )
    failures: list[BaseException] = []

    def work() -> None:
        for _ in range(20):
            try:
                client.query("SELECT count() FROM numbers(200000)")
            except (ProgrammingError, DatabaseError) as err:
                failures.append(err)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert failures, "concurrent queries in one session should be refused"
    assert any("session" in str(f).lower() for f in failures)


@both_transports
def test_dead_letters_land_over_both_transports(wh: Warehouse) -> None:
    frame_letters = [DeadLetter("s", "invalid_type", "x", i, b"raw") for i in range(3)]
    assert write_dead_letters(wh, frame_letters, batch_id="b", max_raw_bytes=10) == 3
    assert wh.query_df("SELECT line_no FROM dead_letters ORDER BY line_no")["line_no"].to_list() == [0, 1, 2]
    assert isinstance(wh.query_df("SELECT 1 AS x"), pl.DataFrame)


def test_slow_statements_hit_the_socket_timeout(chhttp: ClickHouseHTTP) -> None:
    with Warehouse.server(chhttp.url(send_receive_timeout="1"), "default", retries=1) as wh:
        began = time.monotonic()
        with pytest.raises(QueryFailed, match="timed out|Read timed out"):
            wh.scalar("SELECT sleep(2)")
        assert time.monotonic() - began < 2


def test_cluster_mode_needs_a_server_and_a_plain_name() -> None:
    with pytest.raises(ValueError, match="needs warehouse.url"):
        Settings(warehouse={"cluster": "llm"})
    with pytest.raises(ValueError):
        Settings(warehouse={"url": "clickhouse://h/db", "cluster": "llm; DROP"})
