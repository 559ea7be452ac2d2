"""Cluster rendering: every migration and runtime DDL statement has a cluster form that the engine's
own parser accepts, and a table or view the renderer cannot place fails here, not on a cluster."""

from __future__ import annotations

import re

import pytest

from warehouse.client import Warehouse
from warehouse.migrate import LEDGER_DDL, cluster_for_migrations, discover, migrate
from warehouse.topology import (
    EVERYWHERE,
    PLACEMENTS,
    TRACE_KEY,
    Cluster,
    Sharded,
    SingleNode,
    Unrenderable,
)

# The DDL that ingest/pricing.py and ingest/reprice.py issue at run time, as they write it.
RUNTIME_DDL = [
    "DROP TABLE IF EXISTS prices_next",
    "CREATE TABLE prices_next AS prices",
    "EXCHANGE TABLES prices AND prices_next",
    "DROP TABLE IF EXISTS _reprice_calls",
    "CREATE TABLE _reprice_calls AS calls",
    "ALTER TABLE calls REPLACE PARTITION ID '202511' FROM _reprice_calls",
    "CREATE DATABASE IF NOT EXISTS `llmledger`",
    "TRUNCATE TABLE calls",
    "OPTIMIZE TABLE calls FINAL",
]


def _parses(wh: Warehouse, statement: str) -> str:
    """The engine's canonical form of `statement` (raises when its parser rejects it)."""
    return str(wh.scalar("SELECT formatQuery({q:String})", {"q": statement}))


def _all_statements() -> list[str]:
    return [LEDGER_DDL, *(s for m in discover() for s in m.statements())]


def test_every_migration_statement_renders_and_parses(fresh_wh: Warehouse) -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    created: set[str] = set()
    for statement in [*_all_statements(), *RUNTIME_DDL]:
        for rendered in topology.render(statement):
            canonical = _parses(fresh_wh, rendered)
            assert "ON CLUSTER llm" in canonical or canonical.startswith("INSERT"), canonical
            match = re.match(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", canonical)
            if match:
                created.add(match.group(1))
    # sharded tables: a replicated shard table and a Distributed table under the public name
    for name, placement in PLACEMENTS.items():
        if isinstance(placement, Sharded):
            assert {name, f"{name}_local"} <= created
        else:
            assert name in created and f"{name}_local" not in created


def test_every_table_of_the_migrations_has_a_placement() -> None:
    tables = {m.group(1) for s in _all_statements() if (m := re.search(r"CREATE TABLE (?:IF NOT EXISTS )?`?(\w+)", s))}
    assert tables <= set(PLACEMENTS), f"no cluster placement for {sorted(tables - set(PLACEMENTS))}"


def test_sharded_tables_replicate_with_keeper_paths_and_shard_by_trace(fresh_wh: Warehouse) -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    calls = "\n".join(topology.render(next(s for m in discover() for s in m.statements() if "TABLE IF NOT EXISTS calls" in s)))
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/calls_local', '{replica}', ingested_at)" in calls
    assert f"Distributed('llm', 'llmledger', 'calls_local', {TRACE_KEY})" in calls
    prices = "\n".join(topology.render(next(s for m in discover() for s in m.statements() if "TABLE IF NOT EXISTS prices" in s)))
    assert "ReplicatedMergeTree('/clickhouse/tables/all/{database}/prices', '{replica}')" in prices
    assert "Distributed" not in prices


def test_tables_copied_at_run_time_get_their_own_keeper_path() -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    first = topology.render("CREATE TABLE prices_next AS prices")[0]
    second = topology.render("CREATE TABLE prices_next AS prices")[0]
    path = re.compile(r"'(/clickhouse/tables/all/\{database\}/prices_next_[0-9a-f]{12})'")
    assert path.search(first) and path.search(second)
    assert path.search(first).group(1) != path.search(second).group(1)  # type: ignore[union-attr]
    assert "ORDER BY (provider, model, context, valid_from, tod_from_ms, input_above)" in first


def test_a_new_table_without_a_placement_fails_the_suite() -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    with pytest.raises(Unrenderable, match="add it to warehouse.topology.PLACEMENTS"):
        topology.render("CREATE TABLE IF NOT EXISTS alert_state (k String) ENGINE = MergeTree ORDER BY k")


def test_node_local_engines_are_refused() -> None:
    topology = Cluster("llm", "llmledger", placements={**PLACEMENTS, "buffer": EVERYWHERE})
    with pytest.raises(Unrenderable, match="keeps state on one node"):
        topology.render("CREATE TABLE buffer (k String) ENGINE = Memory")


def test_statements_it_does_not_understand_are_refused_not_passed_through() -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    with pytest.raises(Unrenderable):
        topology.render("SYSTEM STOP MERGES calls")
    assert topology.render("INSERT INTO prices SELECT * FROM prices_next") == ["INSERT INTO prices SELECT * FROM prices_next"]


# A rollup the signals branch might add: an aggregating target fed by a materialized view on calls.
ROLLUP = [
    """CREATE TABLE IF NOT EXISTS calls_hourly
    (
        project LowCardinality(String), hour DateTime('UTC'), route LowCardinality(String),
        calls AggregateFunction(count), cost_usd AggregateFunction(sum, Decimal(38, 18))
    )
    ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(hour)
    ORDER BY (project, hour, route)""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS calls_hourly_mv TO calls_hourly AS
    SELECT project, toStartOfHour(ts) AS hour, route, countState() AS calls, sumState(cost_usd) AS cost_usd
    FROM calls GROUP BY project, hour, route""",
]


def test_materialized_views_attach_to_the_shard_tables(fresh_wh: Warehouse) -> None:
    topology = Cluster.for_statements(
        "llm", "llmledger", [*_all_statements(), *ROLLUP],
        placements={**PLACEMENTS, "calls_hourly": Sharded("cityHash64(project, route)")},
    )
    table, distributed = topology.render(ROLLUP[0])
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/calls_hourly_local'" in table
    (view,) = topology.render(ROLLUP[1])
    assert "TO `calls_hourly_local`" in view and "FROM `calls_local`" in view
    for statement in (table, distributed, view):
        _parses(fresh_wh, statement)


def test_materialized_views_that_would_mix_shards_are_refused() -> None:
    everywhere_target = Cluster.for_statements(
        "llm", "llmledger", _all_statements(), placements={**PLACEMENTS, "calls_hourly": EVERYWHERE}
    )
    with pytest.raises(Unrenderable, match="Shard the target"):
        everywhere_target.render(ROLLUP[1])
    inner_engine = ROLLUP[1].replace("TO calls_hourly", "ENGINE = AggregatingMergeTree ORDER BY project")
    with pytest.raises(Unrenderable, match="TO <table>"):
        everywhere_target.render(inner_engine)


def test_column_changes_reach_the_distributed_table_other_alters_only_the_shards() -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    local, distributed = topology.render(
        "ALTER TABLE calls ADD COLUMN IF NOT EXISTS region LowCardinality(String) DEFAULT '', "
        "ADD INDEX IF NOT EXISTS idx_region region TYPE set(100) GRANULARITY 4"
    )
    assert local.startswith("ALTER TABLE `calls_local` ON CLUSTER `llm` ADD COLUMN") and "ADD INDEX" in local
    assert distributed.startswith("ALTER TABLE `calls` ON CLUSTER `llm` ADD COLUMN") and "INDEX" not in distributed
    (mutation,) = topology.render("ALTER TABLE calls DELETE WHERE project = 'gone'")
    assert mutation.startswith("ALTER TABLE `calls_local`")


def test_swaps_and_partition_replaces_wait_for_every_replica() -> None:
    topology = cluster_for_migrations("llm", "llmledger")
    topology.render("CREATE TABLE _reprice_calls AS calls")
    *syncs, replace = topology.render("ALTER TABLE calls REPLACE PARTITION ID '202511' FROM _reprice_calls")
    assert syncs == ["SYSTEM SYNC REPLICA ON CLUSTER `llm` `_reprice_calls_local`"]
    assert replace.endswith("FROM `_reprice_calls_local`")
    topology.render("CREATE TABLE prices_next AS prices")
    *syncs, exchange = topology.render("EXCHANGE TABLES prices AND prices_next")
    assert syncs == ["SYSTEM SYNC REPLICA ON CLUSTER `llm` `prices`", "SYSTEM SYNC REPLICA ON CLUSTER `llm` `prices_next`"]
    assert exchange == "EXCHANGE TABLES `prices` AND `prices_next` ON CLUSTER `llm`"


def test_cluster_writes_wait_for_the_shards() -> None:
    assert cluster_for_migrations("llm", "llmledger").write_settings()["distributed_foreground_insert"] == 1
    assert SingleNode().write_settings() == {}


def test_migrate_renders_every_statement_through_the_warehouse_topology(fresh_wh: Warehouse) -> None:
    seen: list[str] = []

    class Recording(SingleNode):
        def render(self, statement: str) -> list[str]:
            seen.append(statement)
            return [statement]

    fresh_wh.topology = Recording()
    migrate(fresh_wh)
    assert set(_all_statements()) <= set(seen)
