"""Issue 16's failover benchmark: two `llmledger up` replicas on the ClickHouse HTTP stand-in and
the Slack stand-in; `kill -9` of the lease holder with Slack down, with a post in flight that Slack
accepted, and while Slack answers 429 — `--repeat` times each, alternately restarting the killed
replica at once (it takes its own lease back) or only after the other replica took over. Counts
runs where every page was in Slack exactly once, in order, in its thread, and the takeover times.

    .venv/bin/python -m bench.delivery_failover --repeat 10
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import uuid
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from bench.report import record
    from llmledger.settings import Settings
    from tests.chhttp import ClickHouseHTTP
    from tests.failover_support import CASES, TTL_S, replica_env, run_case, start_replica
    from tests.slack_server import slack_stand_in
    from warehouse.client import Warehouse
    from warehouse.migrate import migrate

    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    endpoint = ClickHouseHTTP(root / "store", user="bench", password="bench").start()
    settings = Settings(home=root / "setup", warehouse={"path": root / "store", "url": endpoint.url()})
    wh = Warehouse.from_settings(settings, database=f"f_{uuid.uuid4().hex[:8]}")
    migrate(wh)
    results = []
    with slack_stand_in() as slack:
        env = replica_env(endpoint.url(), wh.database, slack)
        homes = {}
        replicas = []
        for i in range(2):
            r = start_replica(root / f"home{i}", env)
            homes[id(r)] = root / f"home{i}"
            replicas.append(r)

        def restart(old):
            home = homes.pop(id(old))
            new = start_replica(home, env)
            homes[id(new)] = home
            return new

        try:
            for n in range(args.repeat):
                for case in CASES:
                    result = run_case(case, n, wh, slack, replicas, restart, restart_at_once=n % 2 == 0)
                    print(result, flush=True)
                    results.append(result)
        finally:
            for r in replicas:
                r.stop()
    endpoint.stop()

    def stats(values: list[float]) -> str:
        values = [v for v in values if not math.isnan(v)]
        if not values:
            return "—"
        return f"{statistics.median(values):.1f} s median, {max(values):.1f} s max (n={len(values)})"

    load_after = os.getloadavg()
    load = "`uptime` load (1, 5, 15 min) before the run: {:.2f}, {:.2f}, {:.2f}; after: {:.2f}, {:.2f}, {:.2f}".format(
        *load_before, *load_after)
    lines = [f"Lease TTL {TTL_S:.0f} s, delivery every 1 s, Slack timeout 1 s; {args.repeat} runs per case. {load}.",
             "",
             "| case | exactly once, in order | kill → first job (other replica) | kill → first job (restarted "
             "on its home) | restart ready → first job |", "| --- | --- | --- | --- | --- |"]
    for case in CASES:
        mine = [r for r in results if r.case == case]
        lines.append(f"| {case} | {sum(r.ok for r in mine)}/{len(mine)} | "
                     f"{stats([r.takeover_s for r in mine if r.by == 'other'])} | "
                     f"{stats([r.takeover_s for r in mine if r.by == 'restarted'])} | "
                     f"{stats([r.restart_s for r in mine])} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        record("Delivery failover (issue 16)", body)


if __name__ == "__main__":
    main()
