"""Migration runner: applies `migrations/NNNN_*.sql` in order, once each, recorded with a checksum.

Forward-only. A migration already applied is skipped; one whose file changed since it was
applied (or vanished) stops the run with `SchemaMismatch`, because silently diverging schemas are
worse than a failed start. Statements are idempotent (`IF NOT EXISTS`), so a run interrupted
half-way is simply run again.

Table engines are written once, in the migration files, for a single node; the warehouse's
topology (`warehouse.topology`, chosen from the settings) renders each statement for the deployment:
as written on one node, `ON CLUSTER` with replicated shard tables behind Distributed ones on a cluster.
The cluster renderer learns every table from these files (`cluster_for_migrations`), so the imports run
one way: client → migrate → topology (the runner only takes a client, it never imports one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from warehouse.errors import SchemaMismatch
from warehouse.topology import Cluster

if TYPE_CHECKING:
    from warehouse.client import Warehouse

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text: an edited applied migration is detected by this."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file split into statements (on `;` at a line end), comments kept with their statement."""
        return split_statements(self.sql)


def discover(package: str = "migrations") -> list[Migration]:
    """All migration files of `package`, ordered by version; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise SchemaMismatch(f"two migrations share number {version:04d}: {found[version].name}, {entry.name}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def cluster_for_migrations(cluster: str, database: str) -> Cluster:
    """The cluster renderer for this release's migrations (and the migration ledger)."""
    statements = [LEDGER_DDL, *(s for m in discover() for s in m.statements())]
    return Cluster.for_statements(cluster, database, statements)


def split_statements(sql: str) -> list[str]:
    """Split SQL text into statements on `;` ending a line (outside quotes)."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for line in sql.splitlines():
        current.append(line)
        code = line
        for i, char in enumerate(line):
            if quote:
                if char == quote:
                    quote = None
            elif char in "'`\"":
                quote = char
            elif line.startswith("--", i):  # the rest is a comment: its apostrophes open nothing
                code = line[:i]
                break
        if quote is None and code.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if _has_code(statement):
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if _has_code(tail):
        statements.append(tail)
    return statements


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


Renderer = Callable[[str], list[str]]


def applied(wh: Warehouse) -> dict[int, tuple[str, str]]:
    """Version → (name, checksum) of the migrations recorded in the warehouse."""
    wh.ddl(LEDGER_DDL)
    rows = wh.query_rows(
        "SELECT version, argMax(name, applied_at), argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
    )
    return {int(v): (name, checksum) for v, name, checksum in rows}


def check(wh: Warehouse, migrations: list[Migration] | None = None) -> list[Migration]:
    """Verify applied migrations are unchanged; return those still pending."""
    migrations = discover() if migrations is None else migrations
    on_disk = {m.version: m for m in migrations}
    done = applied(wh)
    for version, (name, checksum) in sorted(done.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise SchemaMismatch(
                f"migration {name} is applied in database {wh.database!r} but missing on disk; "
                "this llmledger is older than the warehouse"
            )
        if migration.checksum != checksum:
            raise SchemaMismatch(
                f"migration {migration.name} was edited after it was applied to database {wh.database!r} "
                f"(recorded sha256 {checksum[:12]}…, file {migration.checksum[:12]}…). Applied migrations are "
                "immutable: restore the file and add a new numbered migration for the change."
            )
    return [m for m in migrations if m.version not in done]


def migrate(
    wh: Warehouse, migrations: list[Migration] | None = None, *, render: Renderer | None = None
) -> list[str]:
    """Apply pending migrations in order; returns the names applied (empty when up to date).

    Each statement goes through `render` (default: the warehouse's topology), so one set of
    migrations serves the embedded engine, a server and a cluster.
    """
    pending = check(wh, migrations)
    names: list[str] = []
    for migration in pending:
        for statement in migration.statements():
            if render is None:
                wh.ddl(statement, tag=f"migrate:{migration.name}")
            else:
                for rendered in render(statement):
                    wh.command(rendered, tag=f"migrate:{migration.name}")
        wh.command(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ({v:UInt32}, {n:String}, {c:String})",
            {"v": migration.version, "n": migration.name, "c": migration.checksum},
        )
        names.append(migration.name)
    return names
