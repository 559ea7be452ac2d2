"""Process wiring shared by the CLI and the service: open the configured warehouse, migrated and
with prices loaded, ready for ingest and queries."""

from __future__ import annotations

from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.migrate import migrate


def open_warehouse(settings: Settings, *, migrate_first: bool = True) -> Warehouse:
    """The warehouse the settings name, migrated (idempotent) and with the price table loaded."""
    from ingest.pricing import load_prices, prices_loaded

    wh = Warehouse.from_settings(settings)
    try:
        if migrate_first:
            migrate(wh)
            if not prices_loaded(wh):
                load_prices(wh, settings.pricing)
    except BaseException:
        wh.close()
        raise
    return wh
