"""The scheduler lease on a real engine, embedded and over HTTP: one owner per term however many
replicas race, renewal, expiry and takeover, release, and pruning that never reuses a term."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import both_transports
from warehouse import lease as lease_module
from warehouse.client import Warehouse
from warehouse.lease import (
    acquire_scheduler_lease,
    current_holder,
    default_owner,
    release_scheduler_lease,
    renew_scheduler_lease,
)


@both_transports
def test_racing_replicas_get_exactly_one_owner(wh: Warehouse) -> None:
    owners = [f"replica-{i}" for i in range(8)]
    start = threading.Barrier(len(owners))
    won: dict[str, object] = {}

    def contend(owner: str) -> None:
        start.wait()
        won[owner] = acquire_scheduler_lease(wh, owner, ttl_s=30)

    threads = [threading.Thread(target=contend, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holders = [o for o, lease in won.items() if lease is not None]
    assert len(holders) == 1
    assert current_holder(wh) == holders[0]
    assert wh.scalar("SELECT count() FROM scheduler_leases WHERE term = 1") == 1


@both_transports
def test_renewal_keeps_it_and_others_wait(wh: Warehouse) -> None:
    first = acquire_scheduler_lease(wh, "a", ttl_s=30)
    assert first is not None and first.held() and first.term == 1
    assert acquire_scheduler_lease(wh, "b", ttl_s=30) is None
    renewed = renew_scheduler_lease(wh, first)
    assert renewed is not None and renewed.term == 2 and renewed.valid_until > first.valid_until
    again = acquire_scheduler_lease(wh, "a", ttl_s=30)  # the holder acquiring again is a renewal
    assert again is not None and again.term == 3


@both_transports
def test_an_expired_lease_is_taken_over_and_the_old_holder_learns_it_lost(wh: Warehouse) -> None:
    old = acquire_scheduler_lease(wh, "a", ttl_s=0.4)
    assert old is not None
    assert old.valid_until - time.monotonic() < 0.4 * 0.8 + 0.01  # the safety margin comes off locally
    time.sleep(0.5)
    assert not old.held()
    new = acquire_scheduler_lease(wh, "b", ttl_s=30)
    assert new is not None and new.term == old.term + 1
    assert renew_scheduler_lease(wh, old) is None
    assert current_holder(wh) == "b"


@both_transports
def test_release_frees_it_at_once(wh: Warehouse) -> None:
    held = acquire_scheduler_lease(wh, "a", ttl_s=30)
    assert held is not None
    release_scheduler_lease(wh, held)
    assert current_holder(wh) is None
    assert acquire_scheduler_lease(wh, "b", ttl_s=30) is not None


def test_a_repeated_claim_is_a_no_op(wh: Warehouse) -> None:
    held = acquire_scheduler_lease(wh, "a", ttl_s=30)
    assert held is not None
    # a late retry of another replica's claim of the same term, carrying the same token
    assert lease_module._claim(wh, "scheduler", held.term, "b", 30, time.monotonic(), 1) is None
    assert wh.scalar("SELECT count() FROM scheduler_leases WHERE term = {t:UInt64}", {"t": held.term}) == 1
    assert current_holder(wh) == "a"


def test_pruning_keeps_the_newest_terms_so_none_is_reused(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "_PRUNE_EVERY", 3)
    lease = acquire_scheduler_lease(wh, "a", ttl_s=30)
    for _ in range(7):
        assert lease is not None
        lease = renew_scheduler_lease(wh, lease)
    assert lease is not None and lease.term == 8
    deadline = time.monotonic() + 10
    while True:  # the prune is a mutation: it runs in the background
        terms = [r[0] for r in wh.query_rows("SELECT term FROM scheduler_leases ORDER BY term")]
        if terms[0] > 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert terms[0] > 1 and terms[-1] == 8
    release_scheduler_lease(wh, lease)
    assert acquire_scheduler_lease(wh, "b", ttl_s=30) is not None  # term 10: a fresh token


def test_owner_ids_are_unique_per_process_start() -> None:
    assert default_owner() != default_owner()
