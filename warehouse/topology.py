"""Topologies: DDL written once for one node (migrations, price swaps, reprice scratch tables), rendered
for the deployment. `SingleNode` runs it as written; `Cluster` renders `ON CLUSTER`, Replicated*MergeTree
with Keeper paths, `<name>_local` shard tables behind a Distributed table under the public name, and
materialized views on the shard tables. Every table needs a placement in `PLACEMENTS`; a statement the
renderer does not understand is refused (`Unrenderable`), never passed through.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from warehouse.errors import WarehouseError


class Unrenderable(WarehouseError):
    """A statement has no rendering for this topology (the message says what to add or change)."""

    user_message = "this statement cannot be rendered for the configured cluster"


class Topology(Protocol):
    """How statements written for one node become this deployment's statements."""

    name: str

    def render(self, statement: str) -> list[str]:
        """The statements to run, in order, for one single-node statement."""
        ...

    def write_settings(self) -> dict[str, object]:
        """Settings every write must carry in this topology."""
        ...


class SingleNode:
    """One server or the embedded engine: statements run exactly as written."""

    name = "single-node"

    def render(self, statement: str) -> list[str]:
        return [statement]

    def write_settings(self) -> dict[str, object]:
        return {}


# ---- placements ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sharded:
    """Rows spread over shards by `key`; each shard's rows replicated within it. Read and written
    through a Distributed table under the public name; the shard tables are `<name>_local`."""

    key: str


@dataclass(frozen=True)
class Everywhere:
    """A small table replicated in full to every node (one Keeper path for the whole cluster), so
    joins against it (prices) and compare-and-set on it (leases) stay local and global."""


EVERYWHERE = Everywhere()

# A trace's calls and tool runs land on one shard (trace-level queries stay shard-local); a call
# without a trace is placed by its event_id. Duplicates of an event always share trace_id, so they
# share a shard too, and the ReplacingMergeTree backstop can collapse them.
TRACE_KEY = "cityHash64(project, if(trace_id = '', event_id, trace_id))"

PLACEMENTS: dict[str, Sharded | Everywhere] = {
    "schema_migrations": EVERYWHERE,
    "calls": Sharded(TRACE_KEY),
    "prices": EVERYWHERE,
    "price_loads": EVERYWHERE,
    "dead_letters": Sharded("cityHash64(batch_id)"),
    "ingest_batches": Sharded("cityHash64(batch_id)"),
    "tool_runs": Sharded(TRACE_KEY),
    "scheduler_leases": EVERYWHERE,
    "api_keys": EVERYWHERE,
    # provider exports: small (buckets × group-bys) and read as "latest fetch per bucket", which needs
    # every fetch of a bucket on the node answering
    "provider_usage": EVERYWHERE,
    "provider_costs": EVERYWHERE,
    "provider_bucket_fetches": EVERYWHERE,
    "collector_cursors": EVERYWHERE,
    "collector_runs": EVERYWHERE,
    "gpu_prices": EVERYWHERE,
    # node metrics grow with time; a node's series stay on one shard so counter rates need no exchange
    "gpu_samples": Sharded("cityHash64(node)"),
    "inference_samples": Sharded("cityHash64(node)"),
    "gpu_samples_5m": Sharded("cityHash64(node)"),  # its view runs on gpu_samples' shard
    "gpu_samples_hourly": Sharded("cityHash64(node)"),  # fed from gpu_samples_5m on the same shard
    "inference_histograms": Sharded("cityHash64(node)"),
    # hourly rollups: their views write on every shard (rows follow the calls' trace key); queries
    # re-aggregate by group key, so a group spread over shards still sums exactly. The key here only
    # places rows a rebuild inserts through the Distributed table.
    "calls_hourly": Sharded("cityHash64(project, route)"),
    "calls_user_hourly": Sharded("cityHash64(project, user_id)"),
    "calls_cache_hourly": Sharded("cityHash64(project, route)"),
    "tool_runs_hourly": Sharded("cityHash64(project, tool_name)"),
    "calls_prompt_hourly": Sharded("cityHash64(project, route)"),
    "calls_tokens_hourly": Sharded("cityHash64(project, route)"),
    "calls_routing_hourly": Sharded("cityHash64(project, routing_policy)"),
    "calls_node_hourly": Sharded("cityHash64(project, node)"),
    "calls_deployment_hourly": Sharded("cityHash64(project, model)"),
    "calls_unpriced_hourly": Sharded("cityHash64(project, model)"),
    "calls_latency_hourly": Sharded("cityHash64(project, route)"),
    "calls_5m": Sharded("cityHash64(project, route)"),  # the five-minute edge tier, fed like the hourly ones
    # the hourly tops of reasoning: the shards' states merge into one top at read time
    "calls_reasoning_top_hourly": Sharded("cityHash64(project)"),
    # daily tiers: their views read the shard's own hourly rows, so each shard merges its hours into days
    "calls_daily": Sharded("cityHash64(project, route)"),
    "calls_user_daily": Sharded("cityHash64(project, user_id)"),
    "calls_user_totals_hourly": Sharded("cityHash64(project, user_id)"),
    "calls_user_totals_daily": Sharded("cityHash64(project, user_id)"),
    "calls_tokens_daily": Sharded("cityHash64(project, route)"),
    "calls_route_scores_daily": Sharded("cityHash64(project, route)"),  # fed from raw calls, like the hourly ones
    # alert state and job bookkeeping: small, and every replica's scheduler must see the same rows
    "alert_incidents": EVERYWHERE,
    "alert_events": EVERYWHERE,
    "alert_outbox": EVERYWHERE,
    "alert_silences": EVERYWHERE,
    "signal_watermarks": EVERYWHERE,
    "job_runs": EVERYWHERE,
    # the weekly report's delivery ledger: a few rows a week, read before every send
    "report_sends": EVERYWHERE,
    # the router threshold advisor's offline replays: a few hundred rows per replayed file
    "routing_replays": EVERYWHERE,
    # finished latency hours: ~100 rows an hour whatever the traffic, merged from every shard's rollup
    # rows by the job on one node and read beside the (sharded) rollup they fingerprint
    "calls_latency_finished": EVERYWHERE,
}

MERGE_TREES = frozenset(
    {
        "MergeTree", "ReplacingMergeTree", "SummingMergeTree", "AggregatingMergeTree", "CollapsingMergeTree",
        "VersionedCollapsingMergeTree", "GraphiteMergeTree", "CoalescingMergeTree",
    }
)
# ALTER commands that change columns: they apply to the Distributed table as well as the shard tables.
_COLUMN_COMMANDS = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.IGNORECASE)

_IDENT = r"`?[A-Za-z_][A-Za-z0-9_]*`?"
_CREATE_TABLE = re.compile(rf"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\s*(.*)$", re.I | re.S)
_CREATE_MV = re.compile(
    rf"^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\s+(?:TO\s+({_IDENT})\s*)?(.*?)\bAS\s+(SELECT\b.*|WITH\b.*)$",
    re.I | re.S,
)
_CREATE_VIEW = re.compile(rf"^CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\s+(AS\s+.*)$", re.I | re.S)
_CREATE_DATABASE = re.compile(rf"^CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})\s*(.*)$", re.I | re.S)
_ALTER = re.compile(rf"^ALTER\s+TABLE\s+({_IDENT})\s+(.*)$", re.I | re.S)
_DROP = re.compile(rf"^DROP\s+(TABLE|VIEW|DICTIONARY)\s+(IF\s+EXISTS\s+)?({_IDENT})(\s+SYNC)?$", re.I | re.S)
_TRUNCATE = re.compile(rf"^TRUNCATE\s+(?:TABLE\s+)?(IF\s+EXISTS\s+)?({_IDENT})$", re.I | re.S)
_EXCHANGE = re.compile(rf"^EXCHANGE\s+TABLES\s+({_IDENT})\s+AND\s+({_IDENT})$", re.I | re.S)
_RENAME = re.compile(rf"^RENAME\s+TABLE\s+({_IDENT})\s+TO\s+({_IDENT})$", re.I | re.S)
_OPTIMIZE = re.compile(rf"^OPTIMIZE\s+TABLE\s+({_IDENT})(.*)$", re.I | re.S)
_DATA = re.compile(r"^(INSERT|SELECT|WITH)\b", re.I)
_ENGINE = re.compile(r"\bENGINE\s*=\s*([A-Za-z]+)\s*", re.I)
_SOURCE = re.compile(rf"\b(FROM|JOIN)\s+({_IDENT})", re.I)
_FROM_TABLE = re.compile(rf"\bFROM\s+({_IDENT})\s*$", re.I)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class TableDef:
    """What the renderer knows about a table: placement, single-node engine and the storage clauses."""

    name: str
    placement: Sharded | Everywhere
    engine: str
    engine_args: str  # inside the parentheses, '' when none
    tail: str  # PARTITION BY / ORDER BY / TTL / SETTINGS after the engine


@dataclass
class Cluster:
    """Renders single-node DDL for the ClickHouse cluster `cluster` (as named in `remote_servers`).

    Keeper paths: `/clickhouse/tables/{shard}/{database}/<local table>` for sharded tables and
    `/clickhouse/tables/all/{database}/<table>` for tables on every node (`{shard}`, `{replica}` are
    the server's macros; `{database}` is expanded at CREATE time). Tables created at run time from
    another (`CREATE TABLE x AS y`) get a unique path suffix, because swaps reuse their names.
    """

    cluster: str
    database: str
    placements: Mapping[str, Sharded | Everywhere] = field(default_factory=lambda: dict(PLACEMENTS))
    name: str = "cluster"
    tables: dict[str, TableDef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label, value in (("cluster", self.cluster), ("database", self.database)):
            if not _NAME.match(value):
                raise ValueError(f"{label} name {value!r} must be a plain identifier")

    @classmethod
    def for_statements(cls, cluster: str, database: str, statements: Iterable[str], **kwargs: object) -> Cluster:
        """A renderer that has read `statements` (all migrations, in order) to learn every table."""
        topology = cls(cluster, database, **kwargs)  # type: ignore[arg-type]
        for statement in statements:
            topology.learn(statement)
        return topology

    # ---- what the renderer knows --------------------------------------------------------

    def learn(self, statement: str) -> None:
        """Record the table a `CREATE TABLE … (columns) ENGINE …` defines (other statements: no-op)."""
        match = _CREATE_TABLE.match(_code(statement))
        if not match or match.group(3).lstrip().upper().startswith("AS "):
            return
        name = _bare(match.group(2))
        _, storage = _split_columns(match.group(3), name)
        engine, args, tail = _split_engine(storage, name)
        placement = self.placements.get(name)
        if placement is not None:
            self.tables[name] = TableDef(name, placement, engine, args, tail)

    def write_settings(self) -> dict[str, object]:
        """Writes through Distributed tables wait until every shard has its rows (so an acknowledged
        batch is on the shards, and the next batch's anti-join sees it); `in_order` sends a writer's
        inserts and its dedup reads to the same first healthy replica of each shard."""
        return {"distributed_foreground_insert": 1, "load_balancing": "in_order"}

    # ---- rendering ----------------------------------------------------------------------

    def render(self, statement: str) -> list[str]:
        """The cluster statements for one single-node statement (raises `Unrenderable`)."""
        sql = _code(statement)
        if _DATA.match(sql):
            return [statement]
        for pattern, method in (
            (_CREATE_MV, self._create_mv),
            (_CREATE_VIEW, self._create_view),
            (_CREATE_TABLE, self._create_table),
            (_CREATE_DATABASE, self._create_database),
            (_ALTER, self._alter),
            (_DROP, self._drop),
            (_TRUNCATE, self._truncate),
            (_EXCHANGE, self._exchange),
            (_RENAME, self._rename),
            (_OPTIMIZE, self._optimize),
        ):
            match = pattern.match(sql)
            if match:
                return method(match)
        raise Unrenderable(f"no cluster rendering for statement: {_first_line(sql)}")

    @property
    def _on(self) -> str:
        return f"ON CLUSTER `{self.cluster}`"

    def _placement(self, name: str) -> Sharded | Everywhere:
        placement = self.placements.get(name)
        if placement is None:
            known = self.tables.get(name)
            if known is not None:
                return known.placement
            raise Unrenderable(
                f"table {name!r} has no cluster placement: add it to warehouse.topology.PLACEMENTS "
                "(Sharded(key) for tables that grow with traffic, EVERYWHERE for small reference tables)"
            )
        return placement

    def _replicated(self, table: str, engine: str, args: str, placement: Sharded | Everywhere, *, unique: bool) -> str:
        if engine not in MERGE_TREES:
            raise Unrenderable(
                f"table {table!r} uses ENGINE = {engine}, which keeps state on one node; a cluster needs a "
                "MergeTree-family engine (it becomes Replicated*) or a Distributed table over one"
            )
        shard = "{shard}" if isinstance(placement, Sharded) else "all"
        suffix = f"_{uuid.uuid4().hex[:12]}" if unique else ""
        path = f"/clickhouse/tables/{shard}/{{database}}/{table}{suffix}"
        rest = f", {args}" if args.strip() else ""
        return f"Replicated{engine}('{path}', '{{replica}}'{rest})"

    def _distributed(self, name: str, key: str) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS `{name}` {self._on} AS `{name}_local` "
            f"ENGINE = Distributed('{self.cluster}', '{self.database}', '{name}_local', {key})"
        )

    def _create_table(self, match: re.Match[str]) -> list[str]:
        if_not_exists, name, rest = match.group(1) or "", _bare(match.group(2)), match.group(3)
        as_source = re.match(rf"^AS\s+({_IDENT})\s*(.*)$", rest, re.I | re.S)
        if as_source:
            return self._create_as(name, _bare(as_source.group(1)), as_source.group(2), if_not_exists)
        placement = self._placement(name)
        columns, storage = _split_columns(rest, name)
        engine, args, tail = _split_engine(storage, name)
        self.tables[name] = TableDef(name, placement, engine, args, tail)
        if isinstance(placement, Everywhere):
            replicated = self._replicated(name, engine, args, placement, unique=False)
            return [f"CREATE TABLE {if_not_exists}`{name}` {self._on}\n{columns}\nENGINE = {replicated}\n{tail}".rstrip()]
        local = f"{name}_local"
        replicated = self._replicated(local, engine, args, placement, unique=False)
        return [
            f"CREATE TABLE {if_not_exists}`{local}` {self._on}\n{columns}\nENGINE = {replicated}\n{tail}".rstrip(),
            self._distributed(name, placement.key),
        ]

    def _create_as(self, name: str, source: str, rest: str, if_not_exists: str) -> list[str]:
        """`CREATE TABLE x AS y`: x gets y's placement, storage and a fresh Keeper path."""
        if rest.strip():
            raise Unrenderable(f"CREATE TABLE {name} AS {source} with its own engine: write the full definition")
        known = self.tables.get(source)
        if known is None:
            raise Unrenderable(f"CREATE TABLE {name} AS {source}: {source!r} is not a table the renderer knows")
        self.tables[name] = TableDef(name, known.placement, known.engine, known.engine_args, known.tail)
        if isinstance(known.placement, Everywhere):
            replicated = self._replicated(name, known.engine, known.engine_args, known.placement, unique=True)
            return [f"CREATE TABLE {if_not_exists}`{name}` {self._on} AS `{source}`\nENGINE = {replicated}\n{known.tail}".rstrip()]
        replicated = self._replicated(f"{name}_local", known.engine, known.engine_args, known.placement, unique=True)
        return [
            f"CREATE TABLE {if_not_exists}`{name}_local` {self._on} AS `{source}_local`\n"
            f"ENGINE = {replicated}\n{known.tail}".rstrip(),
            self._distributed(name, known.placement.key),
        ]

    def _create_mv(self, match: re.Match[str]) -> list[str]:
        if_not_exists, view, target, middle, select = match.groups()
        view = _bare(view)
        if not target or middle.strip():
            raise Unrenderable(
                f"materialized view {view!r}: write it as CREATE MATERIALIZED VIEW … TO <table> AS SELECT …, "
                "with the target table created (and placed) by its own statement"
            )
        target = _bare(target)
        sources = {_bare(m.group(2)) for m in _SOURCE.finditer(select)}
        sharded = {s for s in sources if isinstance(self._known_placement(s), Sharded)}
        target_placement = self._placement(target)
        if len(sharded) > 1:
            raise Unrenderable(
                f"materialized view {view!r} reads several sharded tables {sorted(sharded)}: on a shard it "
                "would see only that shard's rows of the others; keep MVs to one sharded source"
            )
        if sharded and not isinstance(target_placement, Sharded):
            raise Unrenderable(
                f"materialized view {view!r} reads sharded {sorted(sharded)} but writes {target!r}, which is on "
                "every node: each shard's partial rows would meet in one replicated table. Shard the target."
            )
        if not sharded:
            if isinstance(target_placement, Sharded):
                raise Unrenderable(f"materialized view {view!r} reads only node-wide tables but writes sharded {target!r}")
            return [f"CREATE MATERIALIZED VIEW {if_not_exists or ''}`{view}` {self._on} TO `{target}` AS {select}"]
        local_select = _SOURCE.sub(
            lambda m: f"{m.group(1)} `{_bare(m.group(2))}_local`" if _bare(m.group(2)) in sharded else m.group(0), select
        )
        return [f"CREATE MATERIALIZED VIEW {if_not_exists or ''}`{view}` {self._on} TO `{target}_local` AS {local_select}"]

    def _known_placement(self, name: str) -> Sharded | Everywhere | None:
        if name in self.placements:
            return self.placements[name]
        known = self.tables.get(name)
        return known.placement if known else None

    def _create_view(self, match: re.Match[str]) -> list[str]:
        or_replace, if_not_exists, view, body = match.groups()
        return [f"CREATE {or_replace or ''}VIEW {if_not_exists or ''}`{_bare(view)}` {self._on} {body}"]

    def _create_database(self, match: re.Match[str]) -> list[str]:
        if_not_exists, name, rest = match.groups()
        return [f"CREATE DATABASE {if_not_exists or ''}`{_bare(name)}` {self._on} {rest}".rstrip()]

    def _alter(self, match: re.Match[str]) -> list[str]:
        name, commands = _bare(match.group(1)), match.group(2)
        placement = self._placement(name)
        parts = _split_top_level(commands)
        if isinstance(placement, Everywhere):
            return [f"ALTER TABLE `{name}` {self._on} {commands}"]
        local_parts = [self._localise_from(p) for p in parts]
        # REPLACE/ATTACH PARTITION … FROM runs on one replica per shard and takes the parts that
        # replica holds: make every replica of the source complete first.
        sources = [_bare(m.group(1)) for p in local_parts if (m := _FROM_TABLE.search(p))]
        statements = [self._sync_replica(source) for source in sources]
        statements.append(f"ALTER TABLE `{name}_local` {self._on} {', '.join(local_parts)}")
        column_parts = [p for p in parts if _COLUMN_COMMANDS.match(p.strip())]
        if column_parts:
            statements.append(f"ALTER TABLE `{name}` {self._on} {', '.join(column_parts)}")
        return statements

    def _localise_from(self, command: str) -> str:
        """`REPLACE|ATTACH PARTITION … FROM x`: x's shard table when x is sharded."""
        match = _FROM_TABLE.search(command)
        if match and isinstance(self._known_placement(_bare(match.group(1))), Sharded):
            return command[: match.start(1)] + f"`{_bare(match.group(1))}_local`"
        return command

    def _drop(self, match: re.Match[str]) -> list[str]:
        kind, if_exists, name = match.group(1).upper(), match.group(2) or "", _bare(match.group(3))
        if kind != "TABLE":
            return [f"DROP {kind} {if_exists}`{name}` {self._on} SYNC"]
        placement = self._known_placement(name)
        if isinstance(placement, Everywhere):
            return [f"DROP TABLE {if_exists}`{name}` {self._on} SYNC"]
        # Sharded, or unknown (e.g. a scratch table left by a crash): drop both halves.
        if_exists = if_exists or ("IF EXISTS " if placement is None else "")
        return [f"DROP TABLE {if_exists}`{name}` {self._on} SYNC", f"DROP TABLE {if_exists}`{name}_local` {self._on} SYNC"]

    def _truncate(self, match: re.Match[str]) -> list[str]:
        if_exists, name = match.group(1) or "", _bare(match.group(2))
        table = f"{name}_local" if isinstance(self._placement(name), Sharded) else name
        return [f"TRUNCATE TABLE {if_exists}`{table}` {self._on} SYNC"]

    def _exchange(self, match: re.Match[str]) -> list[str]:
        a, b = _bare(match.group(1)), _bare(match.group(2))
        pa, pb = self._placement(a), self._placement(b)
        if type(pa) is not type(pb):
            raise Unrenderable(f"EXCHANGE TABLES {a} AND {b}: one is sharded, the other on every node")
        # Every replica must hold all rows of both tables before they swap names, or a replica that
        # is still fetching would serve a half-filled table.
        if isinstance(pa, Sharded):
            # The Distributed tables point at the shard tables by name: swapping those swaps the data.
            a, b = f"{a}_local", f"{b}_local"
        return [self._sync_replica(a), self._sync_replica(b), f"EXCHANGE TABLES `{a}` AND `{b}` {self._on}"]

    def _sync_replica(self, table: str) -> str:
        return f"SYSTEM SYNC REPLICA {self._on} `{table}`"

    def _rename(self, match: re.Match[str]) -> list[str]:
        a, b = _bare(match.group(1)), _bare(match.group(2))
        if isinstance(self._placement(a), Sharded):
            raise Unrenderable(f"RENAME TABLE {a}: a sharded table is two tables; write a migration that recreates it")
        return [f"RENAME TABLE `{a}` TO `{b}` {self._on}"]

    def _optimize(self, match: re.Match[str]) -> list[str]:
        name, rest = _bare(match.group(1)), match.group(2)
        table = f"{name}_local" if isinstance(self._placement(name), Sharded) else name
        return [f"OPTIMIZE TABLE `{table}` {self._on}{rest}"]


# ---- small SQL helpers (statement shapes the migrations use; see the tests) ---------------------


def _code(statement: str) -> str:
    """The statement without leading comment lines and surrounding whitespace."""
    lines = statement.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].strip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip().rstrip(";").strip()


def _first_line(sql: str) -> str:
    return sql.splitlines()[0][:120] if sql else ""


def _bare(name: str) -> str:
    return name.strip("`")


def _matching_paren(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at `start` (quotes respected)."""
    depth, quote, i = 0, None, start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise Unrenderable("unbalanced parentheses")


def _split_columns(rest: str, name: str) -> tuple[str, str]:
    """`(columns…) storage…` → ('(columns…)', 'storage…')."""
    rest = rest.strip()
    if not rest.startswith("("):
        raise Unrenderable(f"CREATE TABLE {name}: expected a column list")
    end = _matching_paren(rest, 0)
    return rest[: end + 1], rest[end + 1 :].strip()


def _split_engine(storage: str, name: str) -> tuple[str, str, str]:
    """`ENGINE = X(args) tail…` → ('X', 'args', 'tail…')."""
    match = _ENGINE.search(storage)
    if not match:
        raise Unrenderable(f"CREATE TABLE {name}: no ENGINE clause")
    engine, after = match.group(1), storage[match.end() :]
    args = ""
    if after.startswith("("):
        end = _matching_paren(after, 0)
        args, after = after[1:end], after[end + 1 :]
    return engine, args.strip(), after.strip()


def _split_top_level(commands: str) -> list[str]:
    """Split ALTER commands on commas outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, None, []
    for ch in commands:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]
