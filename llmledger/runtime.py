"""Process wiring shared by the CLI and the service: open the configured warehouse, migrated and
with prices loaded, ready for ingest and queries.

Checking that a warehouse is ready costs one query when nothing changed (every migration on disk
applied with the same checksum, a price table loaded), so a command on an existing store does not
pay for the migration runner or the price catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from warehouse.client import Warehouse

if TYPE_CHECKING:
    from llmledger.settings import Settings

READY_SQL = (
    "SELECT groupArray((version, checksum)), (SELECT count() FROM price_loads) FROM "
    "(SELECT version, argMax(checksum, applied_at) AS checksum FROM schema_migrations GROUP BY version)"
)


def open_warehouse(settings: Settings, *, migrate_first: bool = True) -> Warehouse:
    """The warehouse the settings name, migrated (idempotent) and with the price table loaded."""
    wh = Warehouse.from_settings(settings)
    try:
        if migrate_first:
            make_ready(wh, settings)
    except BaseException:
        wh.close()
        raise
    return wh


def make_ready(wh: Warehouse, settings: Settings) -> None:
    """Apply pending migrations and load prices if none are loaded; one query when already done."""
    if is_ready(wh):
        return
    from ingest.pricing import load_prices, prices_loaded
    from warehouse.migrate import migrate

    migrate(wh)
    if not prices_loaded(wh):
        load_prices(wh, settings.pricing)


def is_ready(wh: Warehouse) -> bool:
    """True when every migration on disk is applied unchanged and nothing newer is, and prices are loaded."""
    from warehouse.errors import WarehouseError
    from warehouse.migrate import discover

    try:
        row = wh.query_rows(READY_SQL, tag="runtime:ready")[0]
    except WarehouseError:  # a new store: the ledger tables do not exist yet
        return False
    applied = {int(version): checksum for version, checksum in row[0]}
    on_disk = {m.version: m.checksum for m in discover()}
    return applied == on_disk and int(row[1]) > 0
