"""The alert lifecycle as a pure function, and its commands against the real warehouse:
sustained escalation, holding on unjudged windows, silent downgrades, resolution, re-notification
after the cool-down (not once acknowledged, never for budgets), silences, per-scope overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.commands import acknowledge_incident, lift_silence, silence
from alerts.errors import UnknownIncident
from alerts.model import WARNING_CRITICAL, EventKind, IncidentState
from alerts.outbox import build_notifications, channel_for
from alerts.rules.budget import BudgetThreshold
from alerts.state import Incident, Observation, Policy, advance, expire
from alerts.store import load_open_incidents, write_events, write_incidents, write_notifications
from llmledger.settings import Settings, SignalsSettings, SlackSettings
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 4, 10, 0, tzinfo=UTC)
SCOPE = {"project": "acme-app", "route": "assistant-chat", "model": "claude-sonnet-4-5"}
POLICY = Policy(renotify_after=timedelta(minutes=60), resolve_unobserved_after=timedelta(hours=2))


def step(incident: Incident | None, minutes: int, level: int, peak: int | None = None, *,
         policy: Policy = POLICY, levels=WARNING_CRITICAL) -> tuple[Incident | None, EventKind | None]:
    obs = Observation(T0 + timedelta(minutes=minutes), level, level if peak is None else peak, 0.1, 0.3, "s")
    incident, event = advance(incident, obs, signal="cache_hit_collapse", scope=SCOPE, project="acme-app",
                              team="product", unit="ratio", levels=levels, policy=policy)
    if event is not None and event.notify and incident is not None:
        from dataclasses import replace

        incident = replace(incident, notified_at=event.at)
    return incident, event.kind if event else None


def test_open_escalate_hold_downgrade_resolve() -> None:
    incident, kind = step(None, 0, 0, 1)  # a warning point, not yet sustained: nothing
    assert incident is None and kind is None
    incident, kind = step(None, 1, 1)
    assert kind is EventKind.OPENED and incident.state is IncidentState.WARNING
    opened_id = incident.incident_id
    incident, kind = step(incident, 2, 2)
    assert kind is EventKind.ESCALATED and incident.state is IncidentState.CRITICAL
    incident, kind = step(incident, 3, 0, -1)  # no volume to judge: hold, never resolve
    assert kind is None and incident.state is IncidentState.CRITICAL
    incident, kind = step(incident, 4, 1, 1)  # critical no longer reached anywhere in the sustain period
    assert kind is EventKind.DOWNGRADED and incident.state is IncidentState.WARNING
    incident, kind = step(incident, 5, 0, 1)  # some point still breaches: hold
    assert kind is None
    incident, kind = step(incident, 6, 0, 0)
    assert kind is EventKind.RESOLVED and incident.state is IncidentState.RESOLVED
    assert incident.incident_id == opened_id and incident.resolved_at == T0 + timedelta(minutes=6)
    again, kind = step(incident, 7, 1)
    assert kind is EventKind.OPENED and again.incident_id != opened_id  # a new incident, a new thread


def test_standing_critical_is_renotified_after_the_cool_down_unless_acknowledged() -> None:
    incident, _ = step(None, 0, 2)
    kinds = [step(incident, m, 2)[1] for m in (30, 59)]
    assert kinds == [None, None]
    incident, kind = step(incident, 60, 2)
    assert kind is EventKind.RENOTIFIED
    from alerts.state import acknowledge

    acked, event = acknowledge(incident, by="ana", at=T0 + timedelta(minutes=61))
    assert event.kind is EventKind.ACKNOWLEDGED and acked.acked_by == "ana"
    assert step(acked, 200, 2)[1] is None


def test_budget_levels_notify_once_and_never_renotify() -> None:
    rule = BudgetThreshold([0.5, 0.8, 1.0])
    policy = Policy(POLICY.renotify_after, POLICY.resolve_unobserved_after, notify_resolved=False, renotify=False)
    incident, kinds = None, []
    for minute, level in ((0, 1), (5, 1), (10, 2), (15, 3), (200, 3), (400, 3)):
        incident, kind = step(incident, minute, level, policy=policy, levels=rule.levels)
        kinds.append(kind)
    assert kinds == [EventKind.OPENED, None, EventKind.ESCALATED, EventKind.ESCALATED, None, None]
    assert incident.stage == "100%" and incident.severity.value == "critical"


def test_unjudged_incident_expires_after_its_timeout() -> None:
    incident, _ = step(None, 0, 1)
    same, event = expire(incident, T0 + timedelta(minutes=90), POLICY)
    assert event is None and same.is_open
    resolved, event = expire(incident, T0 + timedelta(hours=3), POLICY)
    assert event.kind is EventKind.RESOLVED and resolved.resolved_at == T0 + timedelta(hours=2)


def test_incidents_round_trip_and_ack_and_silence(wh: Warehouse, settings: Settings) -> None:
    incident, _ = step(None, 0, 2)
    write_incidents(wh, [incident])
    loaded = load_open_incidents(wh, "cache_hit_collapse")
    assert list(loaded) == [incident.scope_key]
    assert loaded[incident.scope_key].scope == SCOPE and loaded[incident.scope_key].state is IncidentState.CRITICAL
    acked = acknowledge_incident(wh, settings, incident.incident_id, by="ana", now=T0 + timedelta(minutes=5))
    assert acked.acked_by == "ana"
    assert queries.incident(wh, Scope.all(), incident.incident_id)["acked_by"] == "ana"
    assert queries.outbox(wh)["kind"].to_list() == ["acknowledged"]
    assert queries.incident(wh, Scope.of("other-project"), incident.incident_id) is None
    with pytest.raises(UnknownIncident):
        acknowledge_incident(wh, settings, "nope", by="ana")

    silence_id = silence(wh, signal="cache_hit_collapse", matchers={"route": "assistant-*"},
                         duration=timedelta(hours=1), by="ana", reason="deploy", now=T0)
    assert queries.silences(wh, active_at=T0 + timedelta(minutes=30))["silence_id"].to_list() == [silence_id]
    from alerts.evaluate import _silenced

    active = queries.silences(wh, active_at=T0).to_dicts()
    assert _silenced(active, "cache_hit_collapse", SCOPE, T0 + timedelta(minutes=10))
    assert not _silenced(active, "cache_hit_collapse", {**SCOPE, "route": "support-chat"}, T0 + timedelta(minutes=10))
    assert not _silenced(active, "cache_hit_collapse", SCOPE, T0 + timedelta(hours=2))
    assert lift_silence(wh, silence_id, now=T0 + timedelta(minutes=20))
    assert queries.silences(wh, active_at=T0 + timedelta(minutes=30)).is_empty()


def test_silenced_events_are_recorded_but_not_sent(wh: Warehouse, settings: Settings) -> None:
    incident, _ = step(None, 0, 1)
    from alerts.state import Event

    event = Event("e1", EventKind.OPENED, T0, incident, "ok", notify=True)
    write_events(wh, [event])
    write_notifications(wh, build_notifications(wh, settings, [event], {}, {"e1"}))
    assert queries.outbox(wh)["state"].to_list() == ["suppressed"]
    assert queries.incident_events(wh, Scope.all()).height == 1


def test_per_scope_overrides_and_channel_routing() -> None:
    signals = SignalsSettings(overrides=[{"signal": "stale_routing", "match": {"routing_policy": "cascade-lite"},
                                          "set": {"warning": 0.2, "critical": 0.3}}])
    assert signals.rule("stale_routing", {"routing_policy": "cascade-lite"}).critical == 0.3
    assert signals.rule("stale_routing", {"routing_policy": "cascade-v2"}).critical == 0.7
    with pytest.raises(ValueError, match="unknown field"):
        SignalsSettings(overrides=[{"signal": "stale_routing", "set": {"nope": 1}}])
    slack = SlackSettings(routes=[{"team": "data", "severity": "critical", "channel": "#data-oncall"},
                                  {"signal": "budget", "channel": "#finops"}])
    assert channel_for(slack, team="data", severity="critical", signal="x") == "#data-oncall"
    assert channel_for(slack, team="data", severity="warning", signal="budget") == "#finops"
    assert channel_for(slack, team="data", severity="warning", signal="x") == "#llm-alerts"


def test_spend_spike_summaries_read_as_sentences_for_new_and_held_spend() -> None:
    from decimal import Decimal

    from alerts.rules.spend import SpendSpike

    rule = SpendSpike()
    usual = rule.describe({"cost_usd": Decimal("13.40"), "base_cost_usd": Decimal("2.34"), "value": 5.73})
    assert usual == "Spend spike: $13.40 in the last hour, 5.7x the usual $2.34"
    new = rule.describe({"cost_usd": Decimal("8.53"), "base_cost_usd": Decimal(0), "value": float("inf")})
    assert new == "Spend spike: $8.53 in the last hour, new spend (this hour usually costs nothing)"
    held = rule.describe({"cost_usd": None, "base_cost_usd": None, "value": None})
    assert "inf" not in held and "n/a" not in held and held.startswith("Spend spike: held")
