"""Acting on alerts over HTTP (what the CLI and the dashboards use while the service owns the
store): an incident with its timeline, acknowledge, silence, list and lift silences; scopes and
project binding keep one tenant from seeing or muting another's alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.model import WARNING_CRITICAL, IncidentState
from alerts.state import Observation, Policy, advance
from alerts.store import write_events, write_incidents
from llmledger.service.keys import KeyScope
from tests.service_support import Running, service  # noqa: F401
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 4, 10, 0, tzinfo=UTC)
POLICY = Policy(renotify_after=timedelta(minutes=60), resolve_unobserved_after=timedelta(hours=2))


def _open(project: str, route: str) -> tuple:
    """A CRITICAL cache-collapse incident of `project`/`route` (opened, then escalated) and its events."""
    scope = {"project": project, "route": route, "model": "claude-sonnet-4-5"}
    incident, events = None, []
    for minute, level in ((0, 1), (5, 2)):
        obs = Observation(T0 + timedelta(minutes=minute), level, level, 0.1, 0.3, "s")
        incident, event = advance(incident, obs, signal="cache_hit_collapse", scope=scope, project=project,
                                  team="product", unit="ratio", levels=WARNING_CRITICAL, policy=POLICY)
        events.append(event)
    return incident, [e for e in events if e is not None]


def test_incident_detail_ack_and_silences_respect_scopes(service: Running) -> None:
    wh = service.state.wh
    mine, mine_events = _open("A", "assistant-chat")
    theirs, theirs_events = _open("B", "search")
    write_incidents(wh, [mine, theirs])
    write_events(wh, mine_events + theirs_events)
    keys = service.state.keys
    _, admin = keys.create([KeyScope.ADMIN], name="ops")
    _, read_a = keys.create([KeyScope.READ], project="A")
    _, admin_a = keys.create([KeyScope.ADMIN], project="A")

    with service.client(read_a) as reader:
        detail = reader.get(f"/v1/alerts/{mine.incident_id}").json()
        assert detail["incident"]["state"] == "critical" and detail["incident"]["project"] == "A"
        assert [e["kind"] for e in detail["events"]["rows"]] == ["opened", "escalated"]
        assert reader.get(f"/v1/alerts/{theirs.incident_id}").status_code == 404  # another tenant's
        assert reader.post(f"/v1/alerts/{mine.incident_id}/ack", json={"by": "ana"}).status_code == 403
        assert reader.get("/v1/alerts/nope").status_code == 404

    with service.client(admin_a) as operator:
        assert operator.post(f"/v1/alerts/{theirs.incident_id}/ack", json={"by": "eve"}).status_code == 404
        acked = operator.post(f"/v1/alerts/{mine.incident_id}/ack", json={"by": "ana"})
        assert acked.status_code == 200 and acked.json() == {"incident_id": mine.incident_id, "state": "critical",
                                                             "acked_by": "ana"}
        assert operator.post("/v1/silences", json={"minutes": 60, "by": "ana", "scope": {"project": "B"}}
                             ).status_code == 403
        made = operator.post("/v1/silences", json={"minutes": 120, "by": "ana", "signal": "latency_tail",
                                                   "scope": {"route": "nightly-*"}, "reason": "batch window"})
        assert made.status_code == 201
        silence_a = made.json()["silence_id"]
        assert made.json()["matchers"] == {"route": "nightly-*", "project": "A"}  # bound to its own project

    row = queries.incidents(wh, Scope.all(), incident_id=mine.incident_id).row(0, named=True)
    assert row["acked_by"] == "ana" and row["state"] == IncidentState.CRITICAL.value
    events = queries.incident_events(wh, Scope.all(), incident_id=mine.incident_id)
    assert events["kind"].to_list()[-1] == "acknowledged"

    with service.client(admin) as root:
        silence_all = root.post("/v1/silences", json={"minutes": 30, "by": "ops", "signal": ""}).json()["silence_id"]
        active = root.get("/v1/silences").json()["rows"]
        assert {r["silence_id"] for r in active} == {silence_a, silence_all}
    with service.client(admin_a) as operator:
        assert [r["silence_id"] for r in operator.get("/v1/silences").json()["rows"]] == [silence_a]
        assert operator.delete(f"/v1/silences/{silence_all}").status_code == 404  # not its own
        assert operator.delete(f"/v1/silences/{silence_a}").status_code == 204
    with service.client(admin) as root:
        assert [r["silence_id"] for r in root.get("/v1/silences").json()["rows"]] == [silence_all]
        assert {r["silence_id"] for r in root.get("/v1/silences", params={"active": "false"}).json()["rows"]} == {
            silence_a, silence_all}
        assert root.delete("/v1/silences/missing").status_code == 404
        assert root.post("/v1/silences", json={"minutes": 0, "by": "ops"}).status_code == 422
