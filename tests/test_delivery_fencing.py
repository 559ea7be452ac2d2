"""Exactly-once delivery mechanics against the Slack stand-in and a real lease: a 429 costs one
request per pass (not one per notification), a post Slack accepted before a crash is found by its
metadata and not posted again (channel and thread), a holder that lost its lease stops before the
next post, and a restart on the same home takes its dead predecessor's lease back at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.outbox import deliver_pending
from alerts.slack import SlackClient
from alerts.store import Notification, write_notifications
from llmledger.scheduler import HomeIdentity, build_scheduler
from llmledger.settings import Settings, SlackSettings
from tests.slack_server import SlackStandIn, slack_stand_in
from warehouse.client import Warehouse
from warehouse.lease import LeaseFence, acquire_scheduler_lease, current_holder, release_scheduler_lease
from warehouse.queries import alerts as queries

T0 = datetime(2025, 11, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    with slack_stand_in() as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
        yield server


def _settings(settings: Settings, server: SlackStandIn) -> Settings:
    config = SlackSettings.model_validate({**settings.slack.model_dump(), "base_url": server.base_url,
                                          "channel": "#llm-alerts", "timeout_s": 2})
    return settings.model_copy(update={"slack": config})


def note(incident: str, kind: str, at: datetime, **changes: Any) -> Notification:
    """An outbox row with a renderable payload naming its project, team and signal."""
    payload = {"incident_id": incident, "signal": "budget", "title": "Budget", "kind": kind, "state": "warning",
               "from_state": "ok", "severity": "warning", "stage": "", "scope": {"project": incident, "period": "2026-12"},
               "team": "search", "project": incident, "value": 1.0, "threshold": 0.8, "unit": "ratio",
               "value_text": "100%", "threshold_text": "80%", "summary": f"{incident} over budget", "cause": "",
               "next_step": "", "series": [], "at": at.isoformat(), "opened_at": T0.isoformat(), "actor": "",
               "chart_url": None}
    return replace(Notification(notification_id=f"{incident}-{kind}", event_id=f"e-{incident}-{kind}",
                                incident_id=incident, kind=kind, destination="slack", channel="#llm-alerts",
                                payload=payload, created_at=at, next_attempt_at=at), **changes)


def test_a_429_makes_one_request_per_pass_not_one_per_notification(wh: Warehouse, settings: Settings,
                                                                   slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    write_notifications(wh, [note(f"p{i}", "opened", T0 + timedelta(seconds=i)) for i in range(5)])
    slack.rate_limited, slack.retry_after = True, 30
    now = T0 + timedelta(minutes=1)
    first = deliver_pending(wh, settings, now=now)
    assert slack.requests == 1 and first.retried == 1 and first.waiting == 4 and "rate limited" in first.stopped
    assert deliver_pending(wh, settings, now=now + timedelta(seconds=10)).waiting == 5
    assert slack.requests == 1  # the workspace asked us to wait 30 s: no request at all
    deliver_pending(wh, settings, now=now + timedelta(seconds=31))  # still limited: one more request
    assert slack.requests == 2
    slack.rate_limited = False
    done = deliver_pending(wh, settings, now=now + timedelta(seconds=62))
    assert done.sent == 5 and sorted(slack.outbox_ids()) == sorted(f"p{i}-opened" for i in range(5))


def test_a_post_slack_accepted_before_a_crash_is_found_and_not_sent_again(wh: Warehouse, settings: Settings,
                                                                          slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    client = SlackClient.from_settings(settings.slack)
    assert client is not None
    opened, escalated = note("acme", "opened", T0), note("acme", "escalated", T0 + timedelta(minutes=2))
    # the dead holder posted the root and crashed before recording it
    client.post("#llm-alerts", "x", [], outbox_id=opened.notification_id)
    write_notifications(wh, [replace(opened, state="sending", claim_owner="dead:1", claim_term=7,
                                     next_attempt_at=T0 + timedelta(minutes=3)), escalated])
    lease = acquire_scheduler_lease(wh, "b", ttl_s=30)
    fence = LeaseFence(wh, lambda: lease, owner="b")
    report = deliver_pending(wh, settings, now=T0 + timedelta(minutes=3), fence=fence)
    assert (report.recovered, report.sent) == (1, 1)  # at once, not after STUCK_SENDING
    assert slack.outbox_ids() == [opened.notification_id, escalated.notification_id]
    root = slack.messages[0]
    assert slack.messages[1]["thread_ts"] == root["ts"]  # the reply found its thread through the lookup
    # now the reply: accepted by Slack, the sender crashed; found in the thread by conversations.replies
    resolved = note("acme", "resolved", T0 + timedelta(minutes=5))
    client.post("#llm-alerts", "y", [], thread_ts=root["ts"], outbox_id=resolved.notification_id)
    write_notifications(wh, [replace(resolved, state="sending", claim_owner="dead:1", claim_term=7)])
    again = deliver_pending(wh, settings, now=T0 + timedelta(minutes=6), fence=fence)
    assert (again.recovered, again.sent) == (1, 0) and slack.count("conversations.replies") == 1
    assert len(slack.messages) == 3
    rows = queries.outbox(wh, states=["sent"])
    assert sorted(rows["message_ts"]) == sorted(m["ts"] for m in slack.messages)


def test_a_sending_row_not_in_slack_is_posted_once_and_a_one_off_run_waits(wh: Warehouse, settings: Settings,
                                                                           slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    crashed = note("acme", "opened", T0, state="sending", claim_owner="dead:1", claim_term=3)
    write_notifications(wh, [crashed])
    # without the lease, the claimant might still be posting: wait STUCK_SENDING
    assert deliver_pending(wh, settings, now=T0 + timedelta(minutes=1)).waiting == 1 and slack.requests == 0
    lease = acquire_scheduler_lease(wh, "b", ttl_s=30)
    report = deliver_pending(wh, settings, now=T0 + timedelta(minutes=1), fence=LeaseFence(wh, lambda: lease, owner="b"))
    assert report.sent == 1 and slack.outbox_ids() == [crashed.notification_id]
    row = queries.outbox(wh, states=["sent"]).row(0, named=True)
    assert (row["claim_owner"], row["claim_term"]) == ("b", lease.term)  # the fencing token of the post


def test_a_holder_that_lost_its_lease_stops_before_the_next_post(wh: Warehouse, settings: Settings,
                                                                 slack: SlackStandIn) -> None:
    settings = _settings(settings, slack)
    write_notifications(wh, [note(f"p{i}", "opened", T0 + timedelta(seconds=i)) for i in range(3)])
    mine = acquire_scheduler_lease(wh, "a", ttl_s=30)
    assert mine is not None

    class TakenOverAfterOnePost(SlackClient):
        def post(self, *args: Any, **kwargs: Any) -> str:
            ts = super().post(*args, **kwargs)
            release_scheduler_lease(wh, mine)  # another replica takes over mid-pass
            acquire_scheduler_lease(wh, "b", ttl_s=30)
            return ts

    client = TakenOverAfterOnePost(settings.slack, token="xoxb-test")
    report = deliver_pending(wh, settings, client=client, now=T0 + timedelta(minutes=1),
                             fence=LeaseFence(wh, lambda: mine, owner="a"))  # still "held" on a's clock
    assert report.sent == 1 and "lease lost" in report.stopped and len(slack.messages) == 1
    assert current_holder(wh) == "b"
    assert queries.outbox(wh, states=["pending"]).height == 2  # untouched, for the new holder


def test_the_lease_is_renewed_while_a_long_job_runs(wh: Warehouse, settings: Settings) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    from llmledger.scheduler import JobSpec

    config = settings.scheduler.model_copy(update={"lease_ttl_s": 2.0, "max_workers": 1})
    fast = settings.model_copy(update={"scheduler": config})
    slow = JobSpec("custom.slow", lambda ctx: time.sleep(5), lambda s: IntervalTrigger(seconds=1, timezone=UTC), "sleeps")
    scheduler = build_scheduler(fast, wh=wh, extra_jobs={"custom.slow": slow})
    scheduler.start()
    try:
        first = scheduler.lease.term  # type: ignore[union-attr]
        time.sleep(4)  # the one worker is busy sleeping; the lease thread renews regardless
        assert scheduler.health()["lease"]["held"] and scheduler.lease.term > first  # type: ignore[union-attr]
    finally:
        scheduler.stop(wait=False)


def test_a_restart_on_the_same_home_takes_its_dead_predecessors_lease_at_once(wh: Warehouse, settings: Settings,
                                                                              tmp_path) -> None:
    home = tmp_path / "replica-home"
    dead = HomeIdentity.take(home)
    assert dead is not None and HomeIdentity.take(home) is None  # one live process per home
    held = acquire_scheduler_lease(wh, dead.owner(), ttl_s=60)
    assert held is not None
    other = HomeIdentity.take(tmp_path / "other-home")
    assert other is not None
    assert acquire_scheduler_lease(wh, other.owner(), ttl_s=60, reclaim=other.predecessor) is None  # not its own
    dead.release()  # what the kernel does when the process dies
    again = HomeIdentity.take(home)
    assert again is not None and again.prefix == dead.prefix
    started = time.monotonic()
    taken = acquire_scheduler_lease(wh, again.owner(), ttl_s=60, reclaim=again.predecessor)
    assert taken is not None and taken.term == held.term + 1 and time.monotonic() - started < 5
    again.release()
    other.release()


def test_every_notification_text_names_its_project_team_and_signal() -> None:
    from alerts.message import fallback_text

    text = fallback_text(note("acme-app", "opened", T0).payload)
    assert text.startswith("[WARNING] Budget (budget) — project=acme-app, team=search, period=2026-12:")
