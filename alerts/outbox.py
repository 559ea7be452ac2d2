"""The notification outbox: notifications are written to the warehouse with their delivery state
before anything is sent, and delivered by `deliver_pending` in passes that never block for long.

Per (incident, channel) the first delivered message opens a Slack thread and later ones reply in
it, in order (a notification waits while an earlier one of its thread is undelivered). A failed
send is retried in a later pass with exponential back-off (a 429's Retry-After wins); permanent
errors park the notification as `failed` (`llmledger alerts retry` re-queues). Without Slack,
notifications go to the log. A send interrupted by a crash (state `sending`) is retried: the one
case where Slack may see a message twice, because chat.postMessage has no idempotency key.
"""

from __future__ import annotations

import logging
import os
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
from alerts.slack import SlackClient
from alerts.state import Event
from alerts.store import STATE_LOCK, Notification, notification_for, notification_from_row, write_notifications
from llmledger.settings import Settings, SlackSettings
from warehouse.client import Warehouse
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


def slack_configured(settings: Settings) -> bool:
    """True when the environment holds a Slack bot token or webhook URL."""
    return bool(os.environ.get(settings.slack.token_env) or os.environ.get(settings.slack.webhook_env))


def payload_of(event: Event, rule: Rule | None, settings: Settings) -> dict[str, Any]:
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
    return payload


def build_notifications(wh: Warehouse, settings: Settings, events: Iterable[Event], rules: dict[str, Rule],
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
    logged: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)


def _roots(wh: Warehouse, incident_ids: list[str]) -> dict[tuple[str, str], str]:
    """(incident, channel) → ts of the delivered message that opened its thread."""
    sent = queries.outbox(wh, states=["sent"], incident_ids=incident_ids)
    roots: dict[tuple[str, str], str] = {}
    for row in sent.iter_rows(named=True):
        if not row["thread_ts"] and row["message_ts"]:
            roots.setdefault((row["incident_id"], row["channel"]), row["message_ts"])
    return roots


def deliver_pending(
    wh: Warehouse,
    settings: Settings,
    *,
    client: SlackClient | None = None,
    now: datetime | None = None,
    limit: int = 200,
    deadline_s: float = 20.0,
) -> DeliveryReport:
    """Deliver due notifications, oldest first; returns counts. Stops early at `deadline_s` or when
    Slack is unreachable, leaving the rest pending (so a Slack outage never blocks the scheduler)."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    client = client if client is not None else SlackClient.from_settings(settings.slack)
    report = DeliveryReport()
    with STATE_LOCK:
        rows = queries.outbox(wh, states=["pending", "sending"], limit=limit)
    undelivered = [notification_from_row(r) for r in rows.iter_rows(named=True)]
    if not undelivered:
        return report
    roots = _roots(wh, sorted({n.incident_id for n in undelivered}))
    blocked: set[tuple[str, str]] = set()
    for note in undelivered:
        key = (note.incident_id, note.channel)
        due = (note.next_attempt_at or now) <= now and (
            note.state == "pending" or now - (note.next_attempt_at or now) >= STUCK_SENDING)
        if key in blocked or not due:
            blocked.add(key)  # a thread's messages go out in order: later ones wait for this one
            report.waiting += 1
            continue
        if note.destination == "log" or client is None:
            log.warning("alert: %s", fallback_text(note.payload))
            with STATE_LOCK:
                write_notifications(wh, [replace(note, state="logged", sent_at=now, attempts=note.attempts + 1)])
            report.logged += 1
            continue
        if note.state == "sending":
            log.warning("notification %s was being sent when the process stopped; sending again",
                        note.notification_id)
        thread = roots.get(key) if client.threads else None
        text, blocks = render(note.payload, reply=thread is not None)
        with STATE_LOCK:
            write_notifications(wh, [replace(note, state="sending", next_attempt_at=now)])
        try:
            ts = client.post(note.channel, text, blocks, thread_ts=thread,
                             broadcast=note.kind in ("escalated", "renotified"))
        except DeliveryFailed as err:
            attempts = note.attempts + 1
            if err.permanent:
                state, wait = "failed", 0.0
                report.failed += 1
            else:
                state = "pending"
                wait = err.retry_after_s if err.retry_after_s is not None else min(
                    _BACKOFF.calculate_sleep_duration(attempts - 1), settings.slack.max_backoff_s)
                report.retried += 1
            with STATE_LOCK:
                write_notifications(wh, [replace(note, state=state, attempts=attempts, last_error=err.detail,
                                                 next_attempt_at=now + timedelta(seconds=wait))])
            report.errors.append(err.detail)
            blocked.add(key)
            if not err.permanent and err.retry_after_s is None:
                break  # Slack is down or unreachable: leave the rest for a later pass
            continue
        with STATE_LOCK:
            write_notifications(wh, [replace(note, state="sent", attempts=note.attempts + 1, sent_at=now,
                                             message_ts=ts, thread_ts=thread or "", last_error="")])
        if thread is None and ts:
            roots[key] = ts
        report.sent += 1
        if time.monotonic() - started > deadline_s:
            break
    return report


def requeue_failed(wh: Warehouse, *, now: datetime | None = None) -> int:
    """Put every `failed` notification back to pending (after fixing the token or channel)."""
    now = now or datetime.now(UTC)
    with STATE_LOCK:
        failed = [notification_from_row(r) for r in queries.outbox(wh, states=["failed"]).iter_rows(named=True)]
        write_notifications(wh, [replace(n, state="pending", next_attempt_at=now, last_error="") for n in failed])
    return len(failed)
