"""The notification outbox: notifications are written to the warehouse with their delivery state
before anything is sent, and delivered by `deliver_pending` in passes that never block for long.

Per (incident, channel) the first delivered message opens a Slack thread and later ones reply in
it, in order (a notification waits while an earlier one of its thread is undelivered). A failed
send is retried in a later pass with exponential back-off; permanent errors park the notification
as `failed` (`llmledger alerts retry` re-queues). A 429 ends the pass: no request goes to the
workspace until its Retry-After has passed (read back from the outbox, so every replica honours
it). Without Slack, notifications go to the log.

Exactly once, as people see it. Before a post the row is set `sending` with the scheduler lease
owner and term (the fencing token), and the lease is checked before each post, leaving the post's
whole time budget (`LeaseFence`): a holder that lost the lease stops before the next post, and a
post ends before anyone else can take over. Each post carries its outbox id in the message
metadata. A row found `sending` (a crash mid-send, a timeout, a 5xx) is first looked up in Slack
(`SlackClient.find_posted`) and only posted when Slack does not have it — at once when the lease
holder's fence shows its claimant is gone, else (a one-off run without a lease) after STUCK_SENDING.

What stays at-least-once: (1) webhook mode, which cannot look messages up; (2) a post whose
request Slack processes after our own timeout gave up and after the recovering lookup ran (Slack
accepting a request more than `slack.timeout_s` late); (3) a one-off `llmledger alerts deliver`
racing a running service; (4) history searches are bounded (10 pages of 200 messages since the
claim), so a lost post in a busier channel is posted again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

from alerts.errors import DeliveryFailed
from alerts.message import chart_url, fallback_text, render
from alerts.rules.base import Rule, format_value
from alerts.slack import RATE_LIMITED, SlackClient
from alerts.state import Event, Policy
from alerts.store import STATE_LOCK, Notification, notification_for, notification_from_row, write_notifications
from alerts.settings import AlertingSettings, SlackSettings
from warehouse.client import Warehouse
from warehouse.lease import LeaseFence, LeaseLost
from warehouse.queries import alerts as queries

log = logging.getLogger(__name__)
STUCK_SENDING = timedelta(minutes=5)
_BACKOFF = BackoffRetryIntervalCalculator(backoff_factor=15.0)


def channel_for(slack: SlackSettings, *, team: str, severity: str, signal: str) -> str:
    """The first route matching the alert's team, severity and signal (globs), else the default."""
    for route in slack.routes:
        if all(want is None or fnmatchcase(have, want)
               for want, have in ((route.team, team), (route.severity, severity), (route.signal, signal))):
            return route.channel
    return slack.channel


def slack_configured(settings: AlertingSettings) -> bool:
    """True when the environment holds a Slack bot token or webhook URL."""
    return bool(os.environ.get(settings.slack.token_env) or os.environ.get(settings.slack.webhook_env))


def payload_of(event: Event, rule: Rule | None, settings: AlertingSettings) -> dict[str, Any]:
    """Everything a message about `event` shows, frozen at the time of the event."""
    incident = event.incident
    unit = incident.unit
    payload: dict[str, Any] = {
        "incident_id": incident.incident_id, "signal": incident.signal,
        "title": rule.title if rule else incident.signal, "kind": event.kind.value, "state": incident.state.value,
        "from_state": event.from_state, "severity": incident.severity.value if incident.is_open else "ok",
        "stage": incident.stage, "scope": incident.scope, "team": incident.team, "project": incident.project,
        "value": None if incident.value != incident.value else incident.value,
        "threshold": None if incident.threshold != incident.threshold else incident.threshold, "unit": unit,
        "value_text": format_value(None if incident.value != incident.value else incident.value, unit),
        "threshold_text": format_value(None if incident.threshold != incident.threshold else incident.threshold, unit),
        "summary": incident.summary, "cause": incident.cause, "next_step": incident.next_step,
        "series": incident.series, "at": event.at.isoformat(), "opened_at": incident.opened_at.isoformat(),
        "actor": event.actor,
    }
    payload["chart_url"] = chart_url(settings.slack.dashboard_url, payload)
    if rule is None or rule.renotify:  # issue 12: the message states its back-off schedule
        payload["renotify_backoff_min"] = list(settings.signals.renotify_backoff_min)
        if event.kind.value in ("opened", "escalated", "renotified") and incident.severity.value == "critical":
            gaps = [timedelta(minutes=m) for m in settings.signals.renotify_backoff_min]
            policy = Policy(timedelta(minutes=settings.signals.renotify_after_min), timedelta(0),
                            renotify_backoff=tuple(gaps))
            payload["next_renotify_min"] = int(policy.next_gap(event.at - incident.changed_at).total_seconds() // 60)
    # one incident per cause: the scopes it groups, and where its cause was looked for
    payload["members"] = list(incident.detail.get("members") or [])
    payload["onset"] = incident.detail.get("onset")
    return payload


def build_notifications(wh: Warehouse, settings: AlertingSettings, events: Iterable[Event], rules: dict[str, Rule],
                        silenced: set[str]) -> list[Notification]:
    """Outbox rows for the notifying events, skipping any already written (a re-run)."""
    destination = "slack" if slack_configured(settings) else "log"
    rows = []
    for event in events:
        if not event.notify:
            continue
        incident = event.incident
        severity = incident.severity.value if incident.is_open else "ok"
        channel = channel_for(settings.slack, team=incident.team, severity=severity, signal=incident.signal)
        payload = payload_of(event, rules.get(incident.signal), settings)
        rows.append(notification_for(event, destination=destination, channel=channel, payload=payload,
                                     suppressed=event.event_id in silenced))
    if not rows:
        return []
    existing = set(queries.outbox(wh, incident_ids=sorted({n.incident_id for n in rows}))["notification_id"])
    return [n for n in rows if n.notification_id not in existing]


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    recovered: int = 0  # found already in Slack after a crash mid-send: marked sent, not posted again
    logged: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0
    stopped: str = ""  # why the pass ended early (rate limited, Slack down, lease lost, deadline)
    errors: list[str] = field(default_factory=list)


def _roots(wh: Warehouse, incident_ids: list[str]) -> dict[tuple[str, str], str]:
    """(incident, channel) → ts of the delivered message that opened its thread."""
    sent = queries.outbox(wh, states=["sent"], incident_ids=incident_ids)
    roots: dict[tuple[str, str], str] = {}
    for row in sent.iter_rows(named=True):
        if not row["thread_ts"] and row["message_ts"]:
            roots.setdefault((row["incident_id"], row["channel"]), row["message_ts"])
    return roots


def rate_limited_until(notes: Iterable[Notification]) -> datetime | None:
    """The latest Retry-After end a 429 set on an undelivered notification (the workspace's pause)."""
    ends = [n.next_attempt_at for n in notes
            if n.destination == "slack" and n.last_error.startswith(RATE_LIMITED) and n.next_attempt_at]
    return max(ends) if ends else None


# Notifications being posted by this process right now (a one-off run beside the scheduler).
_IN_FLIGHT: set[str] = set()
_IN_FLIGHT_LOCK = threading.Lock()


def _due(note: Notification, now: datetime, fence: LeaseFence | None) -> bool:
    at = note.next_attempt_at or now
    if note.state != "sending":
        return at <= now
    with _IN_FLIGHT_LOCK:
        if note.notification_id in _IN_FLIGHT:
            return False
    if note.last_error or fence is not None:
        # a failed attempt backing off (its sender is done), or we hold the lease: whoever claimed
        # the row cannot be posting any more (its lease ended before ours began, or it was our own
        # earlier pass) — recover at once, looking it up first
        return at <= now
    return now - at >= STUCK_SENDING  # a one-off run: the service may still be posting it


def deliver_pending(
    wh: Warehouse,
    settings: AlertingSettings,
    *,
    client: SlackClient | None = None,
    now: datetime | None = None,
    limit: int = 200,
    deadline_s: float = 20.0,
    fence: LeaseFence | None = None,
) -> DeliveryReport:
    """Deliver due notifications, oldest first; returns counts. Stops early at `deadline_s`, when
    Slack is unreachable or rate-limits us, or when `fence` says the lease is lost, leaving the rest
    pending (so a Slack outage never blocks the scheduler). `fence`: the scheduler's lease check
    (None for a one-off run)."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    client = client if client is not None else SlackClient.from_settings(settings.slack)
    report = DeliveryReport()
    with STATE_LOCK:
        rows = queries.outbox(wh, states=["pending", "sending"], limit=limit)
    undelivered = [notification_from_row(r) for r in rows.iter_rows(named=True)]
    if not undelivered:
        return report
    paused = rate_limited_until(undelivered)
    paused = paused if paused is not None and paused > now else None
    roots = _roots(wh, sorted({n.incident_id for n in undelivered}))
    blocked: set[tuple[str, str]] = set()
    for note in undelivered:
        key = (note.incident_id, note.channel)
        if key in blocked or not _due(note, now, fence):
            blocked.add(key)  # a thread's messages go out in order: later ones wait for this one
            report.waiting += 1
            continue
        if note.destination == "log" or client is None:
            log.warning("alert: %s", fallback_text(note.payload))
            with STATE_LOCK:
                write_notifications(wh, [replace(note, state="logged", sent_at=now, attempts=note.attempts + 1)])
            report.logged += 1
            continue
        if paused is not None:  # the workspace asked us to wait: no request at all until then
            blocked.add(key)
            report.waiting += 1
            report.stopped = report.stopped or f"rate limited until {paused.isoformat()}"
            continue
        if time.monotonic() - started > deadline_s:
            report.stopped = "deadline"
            break
        try:
            outcome = _deliver_one(wh, client, note, roots.get(key) if client.threads else None, now, fence)
        except LeaseLost as err:
            log.warning("delivery pass stopped before the next post: %s", err)
            report.stopped = f"lease lost: {err}"
            break
        except DeliveryFailed as err:
            report.errors.append(err.detail)
            blocked.add(key)
            if err.permanent:
                report.failed += 1
                continue
            report.retried += 1
            if err.retry_after_s is not None:
                paused = now + timedelta(seconds=err.retry_after_s)
                report.stopped = f"rate limited until {paused.isoformat()}"
                continue  # log-destined rows may still go; no further request to Slack
            report.stopped = "Slack unavailable"
            break  # Slack is down or unreachable: leave the rest for a later pass
        if outcome.found:
            report.recovered += 1
        else:
            report.sent += 1
        if not outcome.thread and outcome.ts:
            roots[key] = outcome.ts
    return report


@dataclass(frozen=True)
class _Outcome:
    ts: str
    thread: str | None
    found: bool


def _deliver_one(wh: Warehouse, client: SlackClient, note: Notification, thread: str | None, now: datetime,
                 fence: LeaseFence | None) -> _Outcome:
    """Look a `sending` row up in Slack, else claim and post it; writes the row's new state.
    Raises `LeaseLost` (nothing written) or `DeliveryFailed` (written: back-off or parked)."""
    budget = client.request_budget_s
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.add(note.notification_id)
    try:
        term = fence.check(budget) if fence is not None else 0
        if note.state == "sending" and client.can_look_up:
            log.warning("notification %s was being sent when its sender stopped (claimed by %s, term %d): "
                        "looking it up in Slack", note.notification_id, note.claim_owner or "?", note.claim_term)
            since = (note.next_attempt_at or note.created_at) - timedelta(minutes=1)
            try:
                ts = client.find_posted(note.channel, note.notification_id, thread_ts=thread, since=since)
            except DeliveryFailed as err:
                _failed(wh, note, err, keep_sending=True, now=now, max_backoff_s=client.settings.max_backoff_s)
                raise
            if ts:
                with STATE_LOCK:
                    write_notifications(wh, [replace(note, state="sent", attempts=note.attempts + 1, sent_at=now,
                                                     message_ts=ts, thread_ts=thread or "", last_error="")])
                return _Outcome(ts, thread, True)
            term = fence.check(budget) if fence is not None else 0
        elif note.state == "sending":
            log.warning("notification %s was being sent when its sender stopped; sending again (a webhook "
                        "cannot be asked whether it arrived)", note.notification_id)
        text, blocks = render(note.payload, reply=thread is not None)
        claimed = replace(note, state="sending", next_attempt_at=now, last_error="",
                          claim_owner=fence.owner if fence is not None else "", claim_term=term)
        with STATE_LOCK:
            write_notifications(wh, [claimed])
        if fence is not None:
            fence.check(budget)  # the claim write took time: the post itself must still fit the lease
        try:
            ts = client.post(note.channel, text, blocks, thread_ts=thread,
                             broadcast=note.kind in ("escalated", "renotified"), outbox_id=note.notification_id)
        except DeliveryFailed as err:
            # a refusal (429, a permanent error) was certainly not posted; anything else (5xx, timeout,
            # reset) may have been: the row stays `sending`, so the retry looks it up first
            _failed(wh, claimed, err, keep_sending=err.retry_after_s is None and not err.permanent, now=now,
                    max_backoff_s=client.settings.max_backoff_s)
            raise
        with STATE_LOCK:
            write_notifications(wh, [replace(claimed, state="sent", attempts=note.attempts + 1, sent_at=now,
                                             message_ts=ts, thread_ts=thread or "", last_error="")])
        return _Outcome(ts, thread, False)
    finally:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.discard(note.notification_id)


def _failed(wh: Warehouse, note: Notification, err: DeliveryFailed, *, keep_sending: bool, now: datetime,
            max_backoff_s: float) -> None:
    attempts = note.attempts + 1
    if err.permanent:
        state, wait = "failed", 0.0
    else:
        state = "sending" if keep_sending and note.state == "sending" else "pending"
        wait = err.retry_after_s if err.retry_after_s is not None else min(
            _BACKOFF.calculate_sleep_duration(attempts - 1), max_backoff_s)
    with STATE_LOCK:
        write_notifications(wh, [replace(note, state=state, attempts=attempts, last_error=err.detail,
                                         next_attempt_at=now + timedelta(seconds=wait))])


def requeue_failed(wh: Warehouse, *, now: datetime | None = None) -> int:
    """Put every `failed` notification back to pending (after fixing the token or channel)."""
    now = now or datetime.now(UTC)
    with STATE_LOCK:
        failed = [notification_from_row(r) for r in queries.outbox(wh, states=["failed"]).iter_rows(named=True)]
        write_notifications(wh, [replace(n, state="pending", next_attempt_at=now, last_error="") for n in failed])
    return len(failed)
