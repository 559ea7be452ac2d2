"""Done-when of issue 16: two `llmledger up` replicas on the HTTP stand-in, `kill -9` of the lease
holder (a) with Slack down, (b) while a post Slack accepted is in flight, (c) while Slack answers
429: every page is in Slack exactly once, in order, in its thread. One repetition of each here;
`bench/delivery_failover.py` runs each ten times and reports counts and takeover times."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chhttp import ClickHouseHTTP
from tests.failover_support import CASES, TTL_S, replica_env, run_case, start_replica
from tests.slack_server import slack_stand_in
from warehouse.client import Warehouse


@pytest.mark.parametrize("transport", ["http"], indirect=True)
def test_kill_9_of_the_holder_never_pages_twice(wh: Warehouse, chhttp: ClickHouseHTTP, tmp_path: Path) -> None:
    with slack_stand_in() as slack:
        env = replica_env(chhttp.url(), wh.database, slack)
        replicas = [start_replica(tmp_path / f"home{i}", env) for i in range(2)]
        homes = {id(r): tmp_path / f"home{i}" for i, r in enumerate(replicas)}

        try:
            results = []
            for case in CASES:
                def restart_same(old):  # on the killed replica's own home
                    home = homes.pop(id(old))
                    new = start_replica(home, env)
                    homes[id(new)] = home
                    return new

                results.append(run_case(case, 0, wh, slack, replicas, restart_same))
            bad = [r for r in results if not r.ok]
            assert not bad, bad
            assert all(r.takeover_s < TTL_S + 3 for r in results), results  # ≤ TTL plus a delivery interval
        finally:
            for r in replicas:
                r.stop()
