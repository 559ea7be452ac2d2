"""The scheduler lease: exactly one service replica runs the jobs that send alerts and reports.

A compare-and-set built from ClickHouse insert deduplication on the `scheduler_leases` table (no
lock service needed; works embedded, on one server and on a cluster). The service calls
`acquire_scheduler_lease` on start and every few seconds, `renew_scheduler_lease` well before
`Lease.valid_until`, acts only while `Lease.held()`, and `release_scheduler_lease` on shutdown.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from warehouse.client import Warehouse

SCHEDULER = "scheduler"
_PRUNE_EVERY = 100  # terms; the newest _PRUNE_EVERY are always kept
_READ_BACK_TRIES = 5

# Terms this process saw claimed by someone whose row never became visible: (database, name, term) →
# monotonic time the failed claim returned. After one TTL such a term is certainly over (see below).
_stalled: dict[tuple[str, str, int], float] = {}
_stalled_lock = threading.Lock()


@dataclass(frozen=True)
class Lease:
    """A held term of a named lease.

    `expires_at` is on the warehouse's clock (what other replicas compare against);
    `valid_until` is on this process's monotonic clock, earlier by the safety margin: act only
    while `held()`.
    """

    name: str
    owner: str
    term: int
    ttl_s: float
    margin_s: float
    expires_at: datetime
    valid_until: float

    def held(self) -> bool:
        """True while this process may act as the lease holder."""
        return time.monotonic() < self.valid_until

    def remaining_s(self) -> float:
        """Seconds left before this process must stop acting (negative once lost)."""
        return self.valid_until - time.monotonic()


class LeaseLost(Exception):
    """This process no longer holds the lease (or not for long enough): stop before acting."""


class LeaseFence:
    """The fencing check a holder makes before each externally visible act (a Slack post, a mail).

    `check(need_s)` passes only while the lease the scheduler keeps (read through `current`, so a
    renewal on another thread is seen) is held locally for at least `need_s` more seconds — the act's
    own time budget, so it finishes before anyone else can take over — and the warehouse's newest
    term still names this owner. It returns the term, which the caller stores with its claim (the
    fencing token). Raises `LeaseLost` otherwise.
    """

    def __init__(self, wh: Warehouse, current: Callable[[], Lease | None], *, owner: str) -> None:
        self.wh = wh
        self.current = current
        self.owner = owner

    def check(self, need_s: float = 0.0) -> int:
        lease = self.current()
        if lease is None or lease.owner != self.owner:
            raise LeaseLost("the scheduler lease is not held")
        if lease.remaining_s() < need_s:
            raise LeaseLost(f"the scheduler lease has {lease.remaining_s():.1f} s left, {need_s:.1f} s needed")
        newest = _current(self.wh, lease.name)
        if newest is None or newest[1] != self.owner or newest[0] < lease.term:
            raise LeaseLost(f"term {lease.term} was superseded (newest: {newest})")
        return lease.term


def default_owner() -> str:
    """An owner id unique to this process: host, pid and a random suffix (a restart is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_scheduler_lease(
    wh: Warehouse, owner: str, *, name: str = SCHEDULER, ttl_s: float = 30.0, margin_s: float | None = None,
    reclaim: Callable[[str], bool] | None = None,
) -> Lease | None:
    """Take the lease if it is free (or already ours); None while another owner holds it.
    `reclaim(holder)` True says an unexpired term belongs to a dead predecessor of this process (the
    same home, whose lock this process now holds): it is taken over at once instead of after its TTL.

    Protocol. The lease is a sequence of terms; the row with the highest term is the current one.
    To claim term T+1 a replica inserts its row with `insert_deduplication_token = '<name>/<T+1>'`
    and then reads term T+1 back. The engine commits only the first insert of a token and silently
    drops later ones (non-replicated: the table's deduplication log, checked and written under the
    table's lock; replicated: a Keeper node created atomically with the part), so however many
    replicas race for T+1, exactly one row exists for it and every reader sees the same owner.
    A term is claimed only when the current term's `expires_at` (set by the engine as its
    `now64() + ttl` at insert) has passed on the engine's clock, or by the current owner itself.

    Safety: the holder of term T stops acting at `valid_until` = (its monotonic time before sending
    the claim) + ttl − margin, which is before `expires_at(T)` in real time, because the engine
    stamped `expires_at` after the request was sent. Another replica claims T+1 only after
    `expires_at(T)`; so two replicas never act at once as long as clock rates agree and the margin
    covers skew between ClickHouse nodes on a cluster. Term numbers are never reused (old terms are
    pruned, the newest kept), so a claim's token is never already spent. If the read-back finds no
    row for T+1 (replication lag on a cluster, or a claim being committed), the claim counts as
    lost; only after a further ttl — when any owner of T+1 has stopped by the argument above —
    does this process try T+2. Retrying a claim is safe: it carries the same token.
    """
    margin = ttl_s / 5 if margin_s is None else margin_s
    if not 0 <= margin < ttl_s:
        raise ValueError("margin_s must be in [0, ttl_s)")
    started = time.monotonic()
    current = _current(wh, name)
    if current is not None:
        term, holder, live = current
        if live and holder != owner and not (holder and reclaim is not None and reclaim(holder)):
            return None
        next_term = term + 1
    else:
        next_term = 1
    key = (wh.database, name, next_term)
    with _stalled_lock:
        for old in [k for k in _stalled if k[:2] == key[:2] and k[2] < next_term]:
            del _stalled[old]
        stalled_at = _stalled.get(key)
    if stalled_at is not None and time.monotonic() - stalled_at > ttl_s:
        next_term += 1  # term T+1 never became visible and is over either way: move past it
    return _claim(wh, name, next_term, owner, ttl_s, started, margin)


def renew_scheduler_lease(wh: Warehouse, lease: Lease, *, ttl_s: float | None = None) -> Lease | None:
    """Extend a held lease by claiming its next term; None when it was lost (stop acting at once)."""
    ttl = lease.ttl_s if ttl_s is None else ttl_s
    margin = min(lease.margin_s, ttl * 0.9)
    started = time.monotonic()
    return _claim(wh, lease.name, lease.term + 1, lease.owner, ttl, started, margin)


def release_scheduler_lease(wh: Warehouse, lease: Lease) -> None:
    """Give the lease up so another replica can take it at once (claims the next term, already expired)."""
    started = time.monotonic()
    _claim(wh, lease.name, lease.term + 1, "", 0.0, started, 0.0)


def current_holder(wh: Warehouse, name: str = SCHEDULER) -> str | None:
    """The owner of the unexpired current term, or None (for status pages and tests)."""
    current = _current(wh, name)
    if current is None:
        return None
    _, holder, live = current
    return holder if holder and live else None


def _current(wh: Warehouse, name: str) -> tuple[int, str, bool] | None:
    """(term, owner, unexpired) of the newest term; expiry judged on the engine's clock, in SQL."""
    rows = wh.query_rows(
        "SELECT term, owner, expires_at > now64(3) FROM scheduler_leases WHERE name = {name:String} "
        "ORDER BY term DESC, claimed_at ASC LIMIT 1",
        {"name": name},
        tag="lease:read",
    )
    if not rows:
        return None
    term, holder, live = rows[0]
    return int(term), str(holder), bool(live)


def _claim(
    wh: Warehouse, name: str, term: int, owner: str, ttl_s: float, started: float, margin_s: float
) -> Lease | None:
    wh.command(
        "INSERT INTO scheduler_leases (name, term, owner, expires_at) "
        "SELECT {name:String}, {term:UInt64}, {owner:String}, now64(3) + toIntervalMillisecond({ttl:UInt64})",
        {"name": name, "term": term, "owner": owner, "ttl": int(ttl_s * 1000)},
        settings={
            "insert_deduplicate": 1,
            "insert_deduplication_token": f"{name}/{term}",
            "async_insert": 0,
        },
        tag="lease:claim",
        idempotent=True,  # the token makes a repeated claim a no-op
    )
    winner = _read_term(wh, name, term)
    if winner is None:
        with _stalled_lock:
            _stalled.setdefault((wh.database, name, term), time.monotonic())
        return None
    holder, expires_at = winner
    if holder != owner or not owner:
        return None
    if term % _PRUNE_EVERY == 0:
        # A mutation on the one-shard lease table: replicated to every replica by the engine itself,
        # so no ON CLUSTER (and no topology rendering) is needed.
        wh.command(
            "ALTER TABLE scheduler_leases DELETE WHERE name = {name:String} AND term + {keep:UInt64} < {term:UInt64}",
            {"name": name, "keep": _PRUNE_EVERY, "term": term},
            tag="lease:prune",
        )
    return Lease(name, owner, term, ttl_s, margin_s, expires_at, started + ttl_s - margin_s)


def _read_term(wh: Warehouse, name: str, term: int) -> tuple[str, datetime] | None:
    for attempt in range(_READ_BACK_TRIES):
        rows = wh.query_rows(
            "SELECT owner, expires_at FROM scheduler_leases WHERE name = {name:String} AND term = {term:UInt64} "
            "ORDER BY claimed_at LIMIT 1",
            {"name": name, "term": term},
            tag="lease:read-back",
        )
        if rows:
            return str(rows[0][0]), rows[0][1]
        if wh.embedded_mode:
            return None  # one process, one engine: nothing can still be arriving
        time.sleep(0.05 * (attempt + 1))
    return None
