"""Re-pricing stored calls after the price table or the overrides change.

Peers never re-price old calls when a price or a negotiated discount changes; here
`llmledger reprice --since …` recomputes a time range with the same pricing SQL as ingest.
Each affected month partition is rebuilt beside the live table (rows inside the range priced
again, rows outside copied unchanged) and swapped in with `REPLACE PARTITION`, so readers
never see a half-repriced month, nothing needs FINAL, and running it twice changes nothing.
Model names are resolved again first (with the provider stored on the call, which ingest may
have read from a gateway-style `provider/model` name), so a model that gained a price (a new
catalogue entry or an override) stops being `unpriced`; a name that no longer resolves keeps the
one ingest stored.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ingest.catalog import Catalog
from ingest.pricing import PriceLoad, load_prices, override_names
from ingest.settings import PricingSettings
from warehouse.client import Warehouse, load_sql

PartitionHook = Callable[[Warehouse, str], None]


@dataclass(frozen=True)
class RepriceReport:
    """Totals of the repriced range before and after."""

    since: datetime
    until: datetime
    calls: int
    partitions: list[str]
    cost_before_usd: Decimal
    cost_after_usd: Decimal
    unpriced_before: int
    unpriced_after: int
    renamed_models: dict[str, str]

    @property
    def delta_usd(self) -> Decimal:
        return self.cost_after_usd - self.cost_before_usd


def _totals(wh: Warehouse, since: datetime, until: datetime) -> tuple[int, Decimal, int]:
    row = wh.query_rows(
        "SELECT count(), sum(cost_usd), countIf(unpriced) FROM calls "
        "WHERE ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}",
        {"since": since, "until": until},
        tag="reprice:totals",
    )[0]
    return int(row[0]), Decimal(row[1] or 0), int(row[2])


def _renames(wh: Warehouse, catalog: Catalog, since: datetime, until: datetime) -> dict[tuple[str, str], tuple[str, str]]:
    pairs = wh.query_rows(
        "SELECT DISTINCT provider, model_raw, model FROM calls "
        "WHERE ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}",
        {"since": since, "until": until},
        tag="reprice:models",
    )
    renames = {}
    for provider, model_raw, model in pairs:
        resolved = catalog.resolve(provider, model_raw)
        # A name the catalogue no longer knows keeps the one ingest stored: re-pricing never
        # turns a priced call into an unpriced one by renaming it.
        if resolved.known and (resolved.provider, resolved.model) != (provider, model):
            renames[(provider, model_raw)] = (resolved.provider, resolved.model)
    return renames


def reprice(
    wh: Warehouse,
    catalog: Catalog,
    *,
    since: datetime,
    until: datetime,
    on_partition: PartitionHook | None = None,
    lock: AbstractContextManager[object] | None = None,
) -> RepriceReport:
    """Recompute the costs of calls with `since <= ts < until` from the current `prices` table.

    `on_partition(wh, partition_id)` runs after each month is swapped in, for derived tables that
    must be rebuilt (materialized-view rollups do not see partition replacement). `lock` is held
    for the whole reprice: pass the process's writer lock so that no batch lands in a month while
    it is rebuilt and swapped (its rows would be replaced away) and the before and after totals
    describe the same calls. Writers in *other* processes (service
    replicas on a server) are not stopped by it: pause their ingest, or run the reprice inside the
    service (`POST /v1/admin/reprice`), which takes the writer lock itself.
    """
    with lock or nullcontext():
        count, before, unpriced_before = _totals(wh, since, until)
        renames = _renames(wh, catalog, since, until)
        partitions = [
            row[0]
            for row in wh.query_rows(
                "SELECT DISTINCT _partition_id FROM calls "
                "WHERE ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')} ORDER BY 1",
                {"since": since, "until": until},
                tag="reprice:partitions",
            )
        ]
        columns = wh.table_columns("calls")
        column_list = ", ".join(f"`{name}`" for name in columns)
        keys = [f"{p}\x00{m}" for p, m in renames]
        params = {
            "since": since,
            "until": until,
            "keys": keys,
            "providers": [p for p, _ in renames.values()],
            "models": [m for _, m in renames.values()],
        }
        key = "concat(provider, '\\0', model_raw)"
        source = (
            "(SELECT * REPLACE ("
            f"transform({key}, {{keys:Array(String)}}, {{providers:Array(String)}}, provider) AS provider, "
            f"transform({key}, {{keys:Array(String)}}, {{models:Array(String)}}, model) AS model) "
            "FROM calls WHERE _partition_id = {partition:String} "
            "AND ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')})"
        )
        priced = load_sql("ingest.sql", "price_calls.sql").replace("__SOURCE__", source)
        scratch = "_reprice_calls"
        for partition in partitions:
            _rebuild_month(wh, partition, scratch, column_list, priced, params, since, until)
            if on_partition is not None:
                on_partition(wh, partition)
        _, after, unpriced_after = _totals(wh, since, until)
    return RepriceReport(
        since=since,
        until=until,
        calls=count,
        partitions=partitions,
        cost_before_usd=before,
        cost_after_usd=after,
        unpriced_before=unpriced_before,
        unpriced_after=unpriced_after,
        renamed_models={f"{p}/{m}": f"{np}/{nm}" for (p, m), (np, nm) in renames.items()},
    )


def _rebuild_month(
    wh: Warehouse, partition: str, scratch: str, column_list: str, priced: str, params: dict[str, object],
    since: datetime, until: datetime,
) -> None:
    """Build one month beside the live table (range repriced, the rest copied) and swap it in."""
    wh.ddl(f"DROP TABLE IF EXISTS {scratch}")
    wh.ddl(f"CREATE TABLE {scratch} AS calls")
    try:
        wh.written_rows(
            f"INSERT INTO {scratch} ({column_list}) SELECT {column_list} FROM ({priced}) "
            "SETTINGS optimize_on_insert = 0",
            {**params, "partition": partition},
            tag="reprice:priced",
        )
        wh.written_rows(
            f"INSERT INTO {scratch} ({column_list}) SELECT {column_list} FROM calls "
            "WHERE _partition_id = {partition:String} "
            "AND NOT (ts >= {since:DateTime64(3, 'UTC')} AND ts < {until:DateTime64(3, 'UTC')}) "
            "SETTINGS optimize_on_insert = 0",
            {"partition": partition, "since": since, "until": until},
            tag="reprice:copy",
        )
        wh.ddl(f"ALTER TABLE calls REPLACE PARTITION ID '{int(partition)}' FROM {scratch}")
    finally:
        wh.ddl(f"DROP TABLE IF EXISTS {scratch}")


def reprice_with_settings(
    wh: Warehouse,
    pricing: PricingSettings,
    *,
    since: datetime,
    until: datetime,
    lock: AbstractContextManager[object] | None = None,
    on_month: Callable[[str], None] | None = None,
) -> tuple[PriceLoad, RepriceReport]:
    """What `llmledger reprice` does: reload the price table from the catalogue and `pricing`, then
    reprice the range with the names resolved again and the hourly rollups rebuilt per month
    (`on_month(partition)` is told of each month done, for progress)."""
    from warehouse.rollups import rebuild_rollups

    def month_done(target: Warehouse, partition: str) -> None:
        rebuild_rollups(target, partition)
        if on_month is not None:
            on_month(partition)

    load = load_prices(wh, pricing)
    report = reprice(wh, Catalog(override_names(pricing)), since=since, until=until,
                     on_partition=month_done, lock=lock)
    return load, report
