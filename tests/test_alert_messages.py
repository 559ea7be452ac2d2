"""What the on-call engineer reads: the Slack message of a grouped incident names every scope it
groups, the onset its cause was looked up at and the re-notification back-off; a reminder says
when the next one comes; an info note reads as one; `llmledger alerts show` prints the same."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.message import fallback_text, render
from alerts.model import WARNING_CRITICAL, EventKind
from alerts.outbox import payload_of
from alerts.rules.latency import LatencyTail
from alerts.state import Event, Observation, Policy, advance
from llmledger.settings import Settings
from tests.service_support import REPO

T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
MEMBERS = [{"project": "acme", "route": "assistant-chat", "model": "claude-sonnet-4-5", "provider": "anthropic",
            "value": 48_000.0},
           {"project": "acme", "route": "support-chat", "model": "claude-opus-4-1", "provider": "anthropic",
            "value": 41_000.0},
           {"project": "acme", "route": "batch", "model": "claude-haiku-4-5", "provider": "anthropic",
            "value": 36_000.0}]


def _grouped() -> Event:
    policy = Policy(timedelta(minutes=60), timedelta(hours=2))
    incident, event = advance(None, Observation(T0, 2, 2, 48_000.0, 30_000.0, ""), signal="latency_tail",
                              scope={k: v for k, v in MEMBERS[0].items() if k != "value"}, project="acme",
                              team="product", unit="ms", levels=WARNING_CRITICAL, policy=policy)
    incident = replace(incident, summary="Latency tail: p99 48.0 s; 3 scopes: …",
                       cause="slowest on anthropic: p99 48.0 s, 6% of calls over 30 s",
                       next_step=LatencyTail.next_step,
                       detail={"members": MEMBERS, "onset": (T0 - timedelta(minutes=22)).isoformat(),
                               "group": "project=acme,provider=anthropic"})
    return replace(event, incident=incident)


def test_a_grouped_page_lists_its_scopes_the_onset_and_the_back_off(settings: Settings) -> None:
    event = _grouped()
    payload = payload_of(event, LatencyTail(), settings)
    text, blocks = render(payload, reply=False)
    body = "\n".join(str(b) for b in blocks)
    assert "[3 scopes]" in text and text.startswith("[CRITICAL] Latency tail")
    assert "One cause, 3 scopes" in body
    for route in ("assistant-chat", "support-chat", "batch"):
        assert route in body
    assert "looked up around the onset, 13:38 UTC" in body
    assert "Re-notified after 1 h, 4 h, 12 h, then every 24 h until acknowledged" in body
    # the first reminder an hour later, then the thread says when the next one comes
    later = replace(event, kind=EventKind.RENOTIFIED, at=T0 + timedelta(hours=1), event_id="r1")
    _, reply = render(payload_of(later, LatencyTail(), settings), reply=True)
    reply_text = str(reply)
    assert "Still *CRITICAL* since 14:00 UTC" in reply_text and "Next reminder in 4 h unless acknowledged" in reply_text
    assert "3 scopes" in reply_text


SEED_HOME = """
import sys
from alerts.store import write_events, write_incidents
from llmledger.runtime import open_warehouse
from llmledger.settings import Settings
from tests.test_alert_messages import _grouped
from warehouse.migrate import migrate

event = _grouped()
with open_warehouse(Settings(home=sys.argv[1])) as wh:
    migrate(wh)
    write_incidents(wh, [event.incident])
    write_events(wh, [event])
"""


def test_alerts_show_prints_the_scopes_the_onset_and_the_schedule(tmp_path: Path) -> None:
    home = tmp_path / "home"
    event = _grouped()
    environment = {**os.environ, "LLMLEDGER_HOME": str(home), "PYTHONPATH": str(REPO)}
    environment.pop("LLMLEDGER_CONFIG", None)
    # the incident is written into the home's own embedded store by another process: this test
    # process already holds the session's store, and one process opens one embedded engine
    seeded = subprocess.run([sys.executable, "-c", SEED_HOME, str(home)], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "llmledger", "alerts", "show", event.incident.incident_id],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "One cause, 3 scopes" in out and "support-chat" in out and "batch" in out
    assert "looked up around the onset, 2025-11-04 13:38 UTC" in out
    assert "after 1 h, 4 h, 12 h, then every 24 h until acknowledged" in out
