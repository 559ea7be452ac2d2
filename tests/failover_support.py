"""Two `llmledger up` replicas on one warehouse (the ClickHouse HTTP stand-in) and the Slack
stand-in, for the kill -9 failover test and `bench/delivery_failover.py`: start replicas with short
lease TTLs, queue pages, kill the holder in one of three Slack conditions, and check that every
page is in Slack exactly once and in order per thread. Returns the takeover time too."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from alerts.store import write_notifications
from tests.service_support import Subprocess, start_subprocess
from tests.slack_server import SlackStandIn
from warehouse.client import Warehouse
from warehouse.queries import alerts as queries

TTL_S = 8.0  # the fence needs slack.timeout_s + 1 s left of the lease before each post
CASES = ("slack_down", "in_flight", "rate_limited")


def replica_env(ch_url: str, database: str, slack: SlackStandIn, ttl_s: float = TTL_S) -> dict[str, str]:
    """Environment of a replica: the shared warehouse, Slack, a short lease, delivery every second."""
    return {"LLMLEDGER_WAREHOUSE__URL": ch_url, "LLMLEDGER_WAREHOUSE__DATABASE": database,
            "LLMLEDGER_SCHEDULER__LEASE_TTL_S": str(ttl_s), "LLMLEDGER_SCHEDULER__DELIVERY_INTERVAL_S": "1",
            "LLMLEDGER_SCHEDULER__SIGNALS_INTERVAL_S": "3600", "LLMLEDGER_SCHEDULER__ROLLUPS_INTERVAL_S": "3600",
            "LLMLEDGER_SCHEDULER__COLLECTORS_INTERVAL_S": "3600", "LLMLEDGER_SLACK__BASE_URL": slack.base_url,
            "LLMLEDGER_SLACK__TIMEOUT_S": "1", "SLACK_BOT_TOKEN": "xoxb-test"}


def holds(replica: Subprocess) -> bool:
    try:
        return bool(httpx.get(f"{replica.url}/health", timeout=2).json()["scheduler"]["lease"]["held"])
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def wait(predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return False


def first_job_after(wh: Warehouse, instant: datetime) -> datetime | None:
    """When the first job run started after `instant` (the dead holder runs nothing)."""
    value = wh.scalar("SELECT minOrNull(started_at) FROM job_runs WHERE started_at > {t:DateTime64(3, 'UTC')} "
                      "AND job = 'alerts.deliver'", {"t": instant})
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


@dataclass
class CaseResult:
    case: str
    ok: bool
    takeover_s: float  # kill -9 → first delivery job on a live replica
    restart_s: float  # the killed replica's restart answering /health → first job (when it took the lease back)
    by: str  # who ran that first job: "restarted" (same home, lease taken back) or "other"
    detail: str


def run_case(case: str, n: int, wh: Warehouse, slack: SlackStandIn, replicas: list[Subprocess],
             restart, ttl_s: float = TTL_S, restart_at_once: bool = True) -> CaseResult:
    """Queue 3 pages (opened, escalated, resolved) of a fresh incident, kill -9 the holder in `case`,
    restart it on its home (`restart(old) -> Subprocess`) at once (it takes its lease back) or only
    after the other replica took over, and check Slack."""
    from tests.test_delivery_fencing import note

    assert wait(lambda: any(holds(r) for r in replicas), 4 * ttl_s + 10), "nobody holds the lease"
    holder = next(r for r in replicas if holds(r))
    incident = f"{case}-{n}"
    now = datetime.now(UTC)
    notes = [note(incident, kind, now + timedelta(milliseconds=i)) for i, kind in
             enumerate(("opened", "escalated", "resolved"))]
    before = len(slack.messages)
    lookups = slack.count("conversations.history") + slack.count("conversations.replies")
    if case == "slack_down":
        slack.down = True
    elif case == "rate_limited":
        slack.rate_limited, slack.retry_after = True, 1
    else:
        slack.slow_s = 2.5
    write_notifications(wh, notes)
    if case == "in_flight":
        assert wait(lambda: len(slack.messages) > before, 10), "no post reached Slack"
    else:
        assert wait(lambda: slack.requests > 0 and slack.calls and slack.calls[-1][0] > time.monotonic() - 1.5, 10)
    killed = datetime.now(UTC)
    holder.kill9()
    slack.slow_s = 0
    if case == "slack_down":
        time.sleep(0.5)
        slack.down = False
    else:
        slack.rate_limited = False
    index = replicas.index(holder)
    ready = None
    if restart_at_once:
        replicas[index] = restart(holder)
        ready = datetime.now(UTC)
    ids = [n.notification_id for n in notes]
    delivered = wait(lambda: queries.outbox(wh, states=["sent"], incident_ids=[incident]).height == 3,
                     4 * ttl_s + 20, 0.2)
    first = first_job_after(wh, killed)
    takeover = (first - killed).total_seconds() if first else float("nan")
    by = "restarted" if restart_at_once and holds(replicas[index]) else "other"
    restart_s = (first - ready).total_seconds() if ready and first and by == "restarted" else float("nan")
    if not restart_at_once:
        replicas[index] = restart(holder)
    seen = [i for i in slack.outbox_ids() if i in ids]
    mine = [m for m in slack.messages if ((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id") in ids]
    threaded = all(m.get("thread_ts") == mine[0]["ts"] for m in mine[1:]) and "thread_ts" not in mine[0]
    looked_up = slack.count("conversations.history") + slack.count("conversations.replies") - lookups
    # the in-flight post was accepted before the kill: only a lookup can have kept it from going twice
    ok = delivered and seen == ids and threaded and (case != "in_flight" or looked_up > 0)
    return CaseResult(case, ok, takeover, restart_s, by, f"delivered={delivered} seen={seen} threaded={threaded} lookups={looked_up}")


def start_replica(home: Path, env: dict[str, str]) -> Subprocess:
    return start_subprocess(home, env=env)
