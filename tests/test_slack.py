"""Slack delivery end to end: the real slack-sdk against a local server speaking the Web API and
webhook shapes — message content, one thread per incident, transitions only, 429 then success,
an outage then recovery with nothing lost or sent twice, permanent errors parked, no Slack at all."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import WARNING_CRITICAL
from alerts.outbox import build_notifications, deliver_pending, requeue_failed
from alerts.rules.cache import CacheHitCollapse
from alerts.slack import SlackClient
from alerts.state import Incident, Observation, Policy, advance
from alerts.store import write_events, write_incidents, write_notifications
from llmledger.settings import Settings, SlackSettings
from tests.slack_server import SlackStandIn, slack_stand_in
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 4, 10, 7, tzinfo=UTC)
RULE = CacheHitCollapse()
POLICY = Policy(renotify_after=timedelta(minutes=60), resolve_unobserved_after=timedelta(hours=2))


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    with slack_stand_in() as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
        yield server


def _settings(settings: Settings, server: SlackStandIn, **slack: object) -> Settings:
    config = SlackSettings.model_validate({**settings.slack.model_dump(), "base_url": server.base_url,
                                          "channel": "#llm-alerts", "dashboard_url": "https://ledger.example/dash",
                                          **slack})
    return settings.model_copy(update={"slack": config})


def _step(wh: Warehouse, settings: Settings, incident: Incident | None, at: datetime, level: int, peak: int,
          value: float, *, scope: dict[str, str] | None = None) -> Incident | None:
    """One evaluation instant through the lifecycle, written as the evaluator writes it."""
    scope = scope or {"project": "acme-app", "route": "assistant-chat", "model": "claude-sonnet-4-5"}
    obs = Observation(at, level, peak, value, 0.30 if level == 2 else 0.50, "", [0.93, 0.91, 0.6, value])
    incident, event = advance(incident, obs, signal=RULE.name, scope=scope, project="acme-app", team="product",
                              unit=RULE.unit, levels=WARNING_CRITICAL, policy=POLICY)
    if incident is not None and event is not None:
        from dataclasses import replace

        incident = replace(incident, summary=f"Cache hit collapse: {value:.2f}", cause="prompt_version changed v7 → v8",
                           next_step=RULE.next_step, notified_at=at)
        event = replace(event, incident=incident)
        write_incidents(wh, [incident])
        write_events(wh, [event])
        write_notifications(wh, build_notifications(wh, settings, [event], {RULE.name: RULE}, set()))
    return incident


def _fire_and_resolve(wh: Warehouse, settings: Settings) -> None:
    incident = _step(wh, settings, None, T0, 1, 1, 0.42)  # opened: WARNING
    incident = _step(wh, settings, incident, T0 + timedelta(minutes=2), 2, 2, 0.05)  # escalated: CRITICAL
    incident = _step(wh, settings, incident, T0 + timedelta(minutes=3), 2, 2, 0.04)  # holds: no message
    _step(wh, settings, incident, T0 + timedelta(hours=3), 0, 0, 0.95)  # resolved


def _texts(blocks: list[dict]) -> str:
    out = []
    for block in blocks:
        for part in [block.get("text")] + list(block.get("fields") or []) + list(block.get("elements") or []):
            if isinstance(part, dict):
                out.append(part.get("text", ""))
    return "\n".join(out)


def test_one_thread_per_incident_with_transitions_only(wh: Warehouse, settings: Settings,
                                                       slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    _fire_and_resolve(wh, settings)
    assert queries.outbox(wh).height == 3  # opened, escalated, resolved — the hold wrote nothing
    report = deliver_pending(wh, settings, now=T0 + timedelta(hours=4))
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    root, escalated, resolved = slack.messages
    assert slack.auth == ["Bearer xoxb-test"] * 3
    assert root["channel"] == "#llm-alerts" and "thread_ts" not in root
    assert root["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "🟠 WARNING · Cache hit collapse",
                                                           "emoji": True}}
    shown = _texts(root["blocks"])
    for expected in ("route: `assistant-chat`", "0.42 (threshold 0.50)", "*Probable cause*\nprompt_version changed v7 → v8",
                     "*Next step*\nSeparate the fixed prefix", "<https://ledger.example/dash/alerts?signal=cache_hit_collapse",
                     "▁", "█"):
        assert expected in shown, expected
    assert root["text"].startswith("[WARNING] Cache hit collapse (cache_hit_collapse) — project=acme-app, team=product, "
                                   "route=assistant-chat, model=claude-sonnet-4-5")
    assert escalated["thread_ts"] == resolved["thread_ts"] == root["ts"]
    assert escalated["reply_broadcast"] is True and "Escalated to *CRITICAL*" in _texts(escalated["blocks"])
    assert "Resolved at 13:07 UTC" in _texts(resolved["blocks"])
    sent = queries.outbox(wh, states=["sent"])
    assert sorted(sent["message_ts"]) == sorted(m["ts"] for m in slack.messages)
    assert deliver_pending(wh, settings, now=T0 + timedelta(hours=5)).sent == 0  # nothing twice


def test_channel_routing_by_team_and_severity(wh: Warehouse, settings: Settings, slack: SlackStandIn) -> None:
    settings = _settings(settings, slack, routes=[{"severity": "critical", "channel": "#oncall"},
                                                  {"team": "product", "channel": "#product-llm"}])
    _fire_and_resolve(wh, settings)
    deliver_pending(wh, settings, now=T0 + timedelta(hours=4))
    channels = [(m["channel"], "thread_ts" in m) for m in slack.messages]
    # the warning opens a thread in the team's channel; the escalation opens one in #oncall
    assert channels == [("#product-llm", False), ("#oncall", False), ("#product-llm", True)]


def test_rate_limited_then_delivered_when_retries_inside_the_send_are_enabled(
        wh: Warehouse, settings: Settings, slack: SlackStandIn) -> None:
    settings = _settings(settings, slack, rate_limit_retries=1)
    _step(wh, settings, None, T0, 1, 1, 0.42)
    slack.script.append((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    report = deliver_pending(wh, settings, now=T0 + timedelta(minutes=1))
    assert report.sent == 1 and slack.requests == 2 and len(slack.messages) == 1  # retried after Retry-After


def test_rate_limit_beyond_the_retries_waits_for_retry_after(wh: Warehouse, settings: Settings,
                                                             slack: SlackStandIn) -> None:
    settings = _settings(settings, slack, rate_limit_retries=0)
    _step(wh, settings, None, T0, 1, 1, 0.42)
    slack.script.append((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
    now = T0 + timedelta(minutes=1)
    assert deliver_pending(wh, settings, now=now).retried == 1
    pending = queries.outbox(wh, states=["pending"]).row(0, named=True)
    assert pending["attempts"] == 1 and pending["next_attempt_at"].replace(tzinfo=UTC) == now + timedelta(seconds=30)
    assert deliver_pending(wh, settings, now=now + timedelta(seconds=10)).sent == 0  # not yet due
    assert deliver_pending(wh, settings, now=now + timedelta(seconds=31)).sent == 1
    assert len(slack.messages) == 1


def test_outage_then_recovery_loses_nothing_and_sends_nothing_twice(wh: Warehouse, settings: Settings,
                                                                    slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    _fire_and_resolve(wh, settings)  # all three written to the outbox before any send
    slack.down = True
    now = T0 + timedelta(hours=4)
    report = deliver_pending(wh, settings, now=now)
    assert (report.sent, report.retried) == (0, 1) and slack.requests == 1  # stopped at the first failure
    again = deliver_pending(wh, settings, now=now + timedelta(seconds=5))
    assert again.retried == 0 and slack.requests == 1  # backing off: not due yet
    slack.down = False
    recovered = deliver_pending(wh, settings, now=now + timedelta(hours=2))
    assert recovered.sent == 3 and len(slack.messages) == 3
    root = slack.messages[0]
    assert "thread_ts" not in root and all(m["thread_ts"] == root["ts"] for m in slack.messages[1:])
    assert deliver_pending(wh, settings, now=now + timedelta(hours=3)).sent == 0
    assert queries.outbox(wh, states=["sent"]).height == 3 and len(slack.messages) == 3


def test_unreachable_slack_is_retried_later(wh: Warehouse, settings: Settings, slack: SlackStandIn) -> None:
    closed = _settings(settings, slack, base_url="http://127.0.0.1:9/api/", timeout_s=1)
    _step(wh, closed, None, T0, 1, 1, 0.42)
    report = deliver_pending(wh, closed, now=T0 + timedelta(minutes=1))
    assert report.retried == 1 and "unreachable" in report.errors[0]
    assert deliver_pending(wh, _settings(settings, slack), now=T0 + timedelta(hours=1)).sent == 1


def test_permanent_error_parks_the_notification_until_retried(wh: Warehouse, settings: Settings,
                                                              slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    _step(wh, settings, None, T0, 1, 1, 0.42)
    slack.script.append((200, {"ok": False, "error": "channel_not_found"}, {}))
    report = deliver_pending(wh, settings, now=T0 + timedelta(minutes=1))
    assert report.failed == 1 and queries.outbox(wh, states=["failed"]).height == 1
    assert deliver_pending(wh, settings, now=T0 + timedelta(hours=1)).sent == 0
    assert requeue_failed(wh, now=T0 + timedelta(hours=1)) == 1
    assert deliver_pending(wh, settings, now=T0 + timedelta(hours=1)).sent == 1 and len(slack.messages) == 1


def test_incoming_webhook_mode(wh: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with slack_stand_in() as server:
        monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", server.webhook_url)
        settings = _settings(settings, server)
        _fire_and_resolve(wh, settings)
        assert SlackClient.from_settings(settings.slack).threads is False  # type: ignore[union-attr]
        assert deliver_pending(wh, settings, now=T0 + timedelta(hours=4)).sent == 3
        assert [m["webhook"] for m in server.messages] == [True] * 3
        assert all("thread_ts" not in m and m["blocks"] for m in server.messages)


def test_without_slack_alerts_land_in_the_warehouse_and_the_log(wh: Warehouse, settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    _fire_and_resolve(wh, settings)
    with caplog.at_level(logging.WARNING, logger="alerts.outbox"):
        report = deliver_pending(wh, settings, now=T0 + timedelta(hours=4))
    assert report.logged == 3
    assert ("[WARNING] Cache hit collapse (cache_hit_collapse) — project=acme-app, team=product, "
            "route=assistant-chat") in caplog.text
    assert set(queries.outbox(wh)["state"]) == {"logged"}
    assert queries.incident_events(wh, Scope.all()).height == 3
