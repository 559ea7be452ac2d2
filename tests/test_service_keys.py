"""API keys: scopes, project binding on writes and reads, revocation, hashed storage, the CLI,
and the no-key localhost rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmledger.service.keys import KeyScope, parse_token
from llmledger.service.server import bind_address
from tests.factories import make_call
from tests.service_support import Running, service, service_settings, start_in_thread  # noqa: F401

RANGE = {"start": "2025-11-03T00:00:00Z", "end": "2025-11-04T00:00:00Z", "dimension": "project"}


def test_scopes_and_project_isolation(service: Running) -> None:
    keys = service.state.keys
    _, admin = keys.create([KeyScope.ADMIN], name="ops")
    _, ingest_a = keys.create([KeyScope.INGEST], project="A")
    _, read_a = keys.create([KeyScope.READ], project="A")
    _, read_all = keys.create([KeyScope.READ])
    with service.client() as anonymous:
        assert anonymous.post("/v1/events", json=[make_call()]).status_code == 401
        assert anonymous.get("/v1/usage", params=RANGE).status_code == 401
        assert anonymous.get("/health").json()["auth"]["required"] is True
    with service.client("llk_nope_wrong") as bad, service.client(admin[:-2] + "xx") as almost:
        assert bad.get("/v1/usage", params=RANGE).status_code == 401
        assert almost.get("/v1/usage", params=RANGE).status_code == 401
    with service.client(read_a) as reader:
        assert reader.post("/v1/events", json=[make_call()]).status_code == 403
    with service.client(ingest_a) as writer:
        assert writer.get("/v1/usage", params=RANGE).status_code == 403
        r = writer.post("/v1/events", json=[make_call(event_id="a1", project=None), make_call(event_id="a2", project="A"),
                                            make_call(event_id="b1", project="B")])
        assert r.status_code == 422
        assert [(e["index"], e["reason"]) for e in r.json()["errors"]] == [(2, "project_not_allowed")]
    with service.client(admin) as root:
        assert root.post("/v1/events", json=[make_call(event_id="b2", project="B")]).status_code == 200
    service.wait_flushed()
    assert service.rows("SELECT event_id, project FROM calls ORDER BY event_id") == [("a1", "A"), ("a2", "A"), ("b2", "B")]
    with service.client(read_a) as reader:
        rows = reader.get("/v1/usage", params=RANGE).json()["rows"]
        assert [r["key"] for r in rows] == ["A"]
        filtered = reader.get("/v1/usage", params={**RANGE, "filter": "project:B"}).json()["rows"]
        assert filtered == []  # a filter cannot widen the scope
        assert reader.get("/v1/dead-letters", params={"start": "2000-01-01", "end": "2100-01-01"}).status_code == 403
        assert reader.get("/v1/keys").status_code == 403
    with service.client(read_all) as reader:
        assert sorted(r["key"] for r in reader.get("/v1/usage", params=RANGE).json()["rows"]) == ["A", "B"]


def test_keys_are_hashed_revocable_and_admin_managed(service: Running) -> None:
    key, admin = service.state.keys.create([KeyScope.ADMIN])
    secret = parse_token(admin)[1]
    stored = service.rows("SELECT * FROM api_keys")
    assert secret not in repr(stored) and admin not in repr(stored)
    with service.client(admin) as root:
        created = root.post("/v1/keys", json={"scopes": ["read"], "project": "A", "name": "dash"})
        assert created.status_code == 201
        token = created.json()["token"]
        assert root.post("/v1/keys", json={"scopes": ["root"]}).status_code == 422
        listed = root.get("/v1/keys").json()
        assert {k["key_id"] for k in listed} == {key.key_id, created.json()["key_id"]}
        assert all("token" not in k for k in listed)
        with service.client(token) as reader:
            assert reader.get("/v1/totals", params={"start": "2025-01-01", "end": "2025-02-01"}).status_code == 200
            assert root.delete(f"/v1/keys/{created.json()['key_id']}").json()["revoked_at"] is not None
            assert reader.get("/v1/totals", params={"start": "2025-01-01", "end": "2025-02-01"}).status_code == 401
        assert root.delete("/v1/keys/unknown").status_code == 404


def test_without_keys_the_service_stays_on_localhost(store: Path, tmp_path: Path) -> None:
    assert bind_address("0.0.0.0", keys_exist=False) == ("127.0.0.1", False)
    assert bind_address("0.0.0.0", keys_exist=True) == ("0.0.0.0", True)
    assert bind_address("127.0.0.1", keys_exist=False) == ("127.0.0.1", False)
    # exposed but every key revoked: refuse everything rather than fall open
    for svc in start_in_thread(service_settings(store, tmp_path / "home"), exposed=True):
        with svc.client() as http:
            assert http.get("/health").json()["auth"]["required"] is True
            assert http.post("/v1/events", json=[make_call()]).status_code == 401


def test_keys_cli(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmledger.cli import app
    from llmledger.settings import get_settings

    settings = service_settings(store, tmp_path / "home")
    monkeypatch.setenv("LLMLEDGER_HOME", str(settings.home))
    monkeypatch.setenv("LLMLEDGER_WAREHOUSE__PATH", str(store))
    monkeypatch.setenv("LLMLEDGER_WAREHOUSE__DATABASE", settings.warehouse.database)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        created = runner.invoke(app, ["keys", "create", "--scope", "ingest", "--scope", "read", "--project", "A"])
        assert created.exit_code == 0, created.output
        key = json.loads(created.output)
        assert key["scopes"] == ["ingest", "read"] and key["project"] == "A" and key["token"].startswith("llk_")
        listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)
        assert [k["key_id"] for k in listed] == [key["key_id"]]
        assert runner.invoke(app, ["keys", "revoke", key["key_id"]]).exit_code == 0
        listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)
        assert listed[0]["revoked_at"] is not None
        assert runner.invoke(app, ["keys", "create", "--scope", "root"]).exit_code == 2
        # while a service holds the store, the CLI goes through the admin API instead
        for svc in start_in_thread(settings):
            over_api = runner.invoke(app, ["keys", "create", "--scope", "read", "--api", svc.url])
            assert over_api.exit_code == 0, over_api.output
            assert json.loads(over_api.output)["token"].startswith("llk_")
    finally:
        get_settings.cache_clear()
        from warehouse.client import Warehouse

        with Warehouse.embedded(store, settings.warehouse.database) as wh:
            wh.command(f"DROP DATABASE IF EXISTS {settings.warehouse.database} SYNC")


def test_keys_are_re_read_in_the_background_not_by_requests(wh) -> None:  # noqa: ANN001 - the conftest fixture
    """With the refresher running, a key written elsewhere (another replica) becomes valid without any
    verification reading the table; stopped, a stale copy is re-read by the request as before."""
    import threading
    import time

    from llmledger.service.keys import KeyRefresher, KeyStore

    requests = KeyStore(wh, cache_s=2.0)
    requests.any_active()  # the copy, before the key exists
    _, token = KeyStore(wh).create([KeyScope.READ], name="replica")
    reads: list[str] = []
    query_rows = wh.query_rows

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        reads.append(threading.current_thread().name)
        return query_rows(*args, **kwargs)

    wh.query_rows = counted
    refresher = KeyRefresher(requests)
    refresher.start()
    try:
        deadline = time.monotonic() + 30
        while requests.verify(token) is None:
            assert time.monotonic() < deadline, "the refresher never picked up the new key"
            time.sleep(0.02)
        assert reads and set(reads) == {"keys-refresh"}  # every read was the refresher's
        assert refresher.health()["state"] == "running"
    finally:
        refresher.stop()
    reads.clear()
    time.sleep(2.1)
    assert requests.verify(token) is not None and reads == [threading.current_thread().name]
