"""The effective price table: genai-prices' catalogue plus user overrides, loaded into `prices`.

genai-prices describes a model's prices as conditional sets (start dates, time-of-day windows),
request-context variants (batch processing, service tiers) and context-length tiers. Here each
model is expanded into non-overlapping cells — validity dates × time of day × input-token tier ×
context — by asking genai-prices itself (`ModelInfo.get_prices`) what applies at a representative
instant of each cell, so the semantics are the library's, not a re-implementation. Exactly one
cell matches a call, which lets the warehouse price calls with a single join (`ingest/sql`).

Rates are stored per token (per use / per request for tool and request fees), exact Decimals.
"""

from __future__ import annotations

import hashlib
from fnmatch import fnmatchcase
from functools import cached_property, lru_cache
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import polars as pl
from genai_prices import data_snapshot
from genai_prices import types as gp

from ingest.catalog import DATED_SNAPSHOTS, OverrideName, catalogue_version, normalise_provider
from ingest.settings import ModelPriceOverride, PricingSettings
from warehouse.client import Warehouse

# genai-prices price key → (our rate column suffix, units per price)
RATE_KEYS: dict[str, tuple[str, int]] = {
    "input_mtok": ("input", 1_000_000),
    "cache_read_mtok": ("cache_read", 1_000_000),
    "cache_write_mtok": ("cache_write", 1_000_000),
    "cache_write_5m_mtok": ("cache_write_5m", 1_000_000),
    "cache_write_1h_mtok": ("cache_write_1h", 1_000_000),
    "output_mtok": ("output", 1_000_000),
    "output_reasoning_mtok": ("output_reasoning", 1_000_000),
    "web_searches_kcount": ("web_search", 1_000),
    "requests_kcount": ("request", 1_000),
}
RATE_NAMES = tuple(name for name, _ in RATE_KEYS.values())

STANDARD = ""
BATCH = "processing=batch"
SERVICE_TIERS = ("default", "flex", "priority", "fast")
CONTEXTS = (STANDARD, BATCH, *(f"service_tier={tier}" for tier in SERVICE_TIERS))

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER = datetime(2200, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000
NO_UPPER = 2**62
SCALE = Decimal("1e-18")


@dataclass
class PriceCell:
    """One row of the `prices` table."""

    provider: str
    model: str
    context: str
    valid_from: datetime
    valid_to: datetime
    tod_from_ms: int
    tod_to_ms: int
    input_above: int
    input_upto: int
    rates: dict[str, Decimal | None]
    list_rates: dict[str, Decimal | None]
    price_source: str


@dataclass
class PriceTable:
    """The expanded cells plus what went into them."""

    cells: list[PriceCell] = field(default_factory=list)
    overrides: int = 0

    @property
    def models(self) -> int:
        return len({(c.provider, c.model) for c in self.cells})

    @cached_property
    def frame(self) -> pl.DataFrame:
        """`to_frame()`, computed once."""
        return self.to_frame()

    @cached_property
    def digest(self) -> str:
        """`checksum()`, computed once."""
        return self.checksum()

    def to_frame(self) -> pl.DataFrame:
        """Cells as a frame with the `prices` table's columns (rates as Decimal(38, 18))."""
        money = pl.Decimal(38, 18)
        data: dict[str, pl.Series] = {
            "provider": pl.Series([c.provider for c in self.cells], dtype=pl.String),
            "model": pl.Series([c.model for c in self.cells], dtype=pl.String),
            "context": pl.Series([c.context for c in self.cells], dtype=pl.String),
            "valid_from": pl.Series([c.valid_from for c in self.cells], dtype=pl.Datetime("ms", "UTC")),
            "valid_to": pl.Series([c.valid_to for c in self.cells], dtype=pl.Datetime("ms", "UTC")),
            "tod_from_ms": pl.Series([c.tod_from_ms for c in self.cells], dtype=pl.UInt32),
            "tod_to_ms": pl.Series([c.tod_to_ms for c in self.cells], dtype=pl.UInt32),
            "input_above": pl.Series([c.input_above for c in self.cells], dtype=pl.Int64),
            "input_upto": pl.Series([c.input_upto for c in self.cells], dtype=pl.Int64),
        }
        for name in RATE_NAMES:
            data[f"rate_{name}"] = pl.Series([c.rates.get(name) for c in self.cells], dtype=money)
            data[f"list_{name}"] = pl.Series([c.list_rates.get(name) for c in self.cells], dtype=money)
        data["price_source"] = pl.Series([c.price_source for c in self.cells], dtype=pl.String)
        return pl.DataFrame(data)

    def checksum(self) -> str:
        """A digest of every cell, to tell whether a reload changed any price."""
        ordered = self.frame.sort(["provider", "model", "context", "valid_from", "tod_from_ms", "input_above"])
        return hashlib.sha256(ordered.write_csv().encode()).hexdigest()


# ---- catalogue expansion ------------------------------------------------------


def _per_unit(price: Decimal, per: int) -> Decimal:
    return (Decimal(price) / per).quantize(SCALE)


Prices = dict[str, object]  # a ModelPrice's value per RATE_KEYS key (None where it has none)


def _prices(model_price: gp.ModelPrice) -> Prices:
    """The rate values of a ModelPrice, read once: each attribute read goes through genai-prices'
    `__getattr__`, which is what building the table spent most of its time on."""
    return {key: getattr(model_price, key, None) for key in RATE_KEYS}


def _rate_at(prices: Prices, total_input_above: int) -> dict[str, Decimal | None]:
    """Per-unit rates of a resolved ModelPrice (`_prices`) for calls whose total input is >
    `total_input_above` and ≤ the next tier start (cliff tiers: the tier whose start the total
    input exceeds applies)."""
    rates: dict[str, Decimal | None] = {}
    for key, (name, per) in RATE_KEYS.items():
        price = prices[key]
        if price is None:
            rates[name] = None
            continue
        if isinstance(price, gp.TieredPrices):
            applicable = price.base
            for tier in price.tiers:
                if tier.start <= total_input_above:
                    applicable = tier.price
            rates[name] = _per_unit(applicable, per)
        else:
            rates[name] = _per_unit(price, per)
    return rates


def _discount_rates(rates: dict[str, Decimal | None], discount: Decimal) -> dict[str, Decimal | None]:
    """Every rate reduced by `discount` (a fraction), kept exact to 18 decimal places."""
    keep = Decimal(1) - discount
    return {k: None if v is None else (v * keep).quantize(SCALE) for k, v in rates.items()}


def _tier_starts(*prices: Prices) -> list[int]:
    starts: set[int] = set()
    for values in prices:
        for price in values.values():
            if isinstance(price, gp.TieredPrices):
                starts.update(t.start for t in price.tiers)
    return sorted(starts)


def _constraints(model: gp.ModelInfo) -> list[object]:
    found: list[object] = []
    if isinstance(model.prices, list):
        found.extend(c.constraint for c in model.prices if c.constraint is not None)
    found.extend(v.constraint for v in model.price_variants or () if v.constraint is not None)
    return found


def _date_segments(model: gp.ModelInfo) -> list[tuple[datetime, datetime]]:
    starts = sorted(
        {c.start_date for c in _constraints(model) if isinstance(c, gp.StartDateConstraint)}
    )
    bounds = [EPOCH] + [datetime.combine(d, time(0), tzinfo=UTC) for d in starts] + [FOREVER]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def _tod_ms(value: time) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    utc = datetime.combine(date(1970, 1, 1), aware).astimezone(UTC)
    return ((utc.hour * 60 + utc.minute) * 60 + utc.second) * 1000 + utc.microsecond // 1000


def _tod_segments(model: gp.ModelInfo) -> list[tuple[int, int]]:
    points = {0, DAY_MS}
    for c in _constraints(model):
        if isinstance(c, gp.TimeOfDateConstraint):
            points.update({_tod_ms(c.start_time), _tod_ms(c.end_time)})
    ordered = sorted(points)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if a < b]


def _has_batch_variant(model: gp.ModelInfo, at: datetime) -> bool:
    return any(
        variant.when == {"processing": "batch"} and (variant.constraint is None or variant.constraint.active(at))
        for variant in model.price_variants or ()
    )


def _context_dict(context: str) -> dict[str, str] | None:
    if not context:
        return None
    key, _, value = context.partition("=")
    return {key: value}


def expand_model(
    provider_id: str,
    model: gp.ModelInfo,
    *,
    owns_model: bool,
    batch_discount: Decimal,
    price_source: str = "genai-prices",
) -> Iterator[PriceCell]:
    """All cells of one catalogue model under one provider id.

    `owns_model` is False for a model reached through the provider's fallback list (Azure serving
    OpenAI models): genai-prices ignores request-context variants for those, and so do we.
    """
    for valid_from, valid_to in _date_segments(model):
        for tod_from, tod_to in _tod_segments(model):
            at = valid_from + timedelta(milliseconds=tod_from)
            standard = _prices(model.get_prices(at))
            for context in CONTEXTS:
                synth_batch = context == BATCH and not (owns_model and _has_batch_variant(model, at))
                if context == STANDARD or synth_batch or not owns_model:
                    resolved = standard
                else:
                    resolved = _prices(model.get_prices(at, _context_dict(context)))
                starts = _tier_starts(resolved, standard)
                lows = [-1, *starts]
                highs = [*starts, NO_UPPER]
                for low, high in zip(lows, highs, strict=True):
                    rates = _rate_at(resolved, low)
                    if synth_batch:
                        rates = _discount_rates(rates, batch_discount)
                    yield PriceCell(
                        provider=provider_id,
                        model=model.id,
                        context=context,
                        valid_from=valid_from,
                        valid_to=valid_to,
                        tod_from_ms=tod_from,
                        tod_to_ms=tod_to,
                        input_above=low,
                        input_upto=high,
                        rates=rates,
                        list_rates=_rate_at(standard, low),
                        price_source=price_source,
                    )


def _with_snapshots(cells: Iterable[PriceCell]) -> Iterator[PriceCell]:
    """The cells, and a copy under each dated snapshot id of a `-latest` entry (`DATED_SNAPSHOTS`)."""
    for cell in cells:
        yield cell
        for snapshot in DATED_SNAPSHOTS.get(cell.model, ()):
            yield replace(cell, model=snapshot, rates=dict(cell.rates), list_rates=dict(cell.list_rates))


def catalogue_cells(batch_discount: Decimal) -> Iterator[PriceCell]:
    """Every model of every provider in the bundled genai-prices data, fallback models included."""
    providers = data_snapshot.get_snapshot().providers
    by_id = {p.id: p for p in providers}
    for provider in providers:
        own = {m.id for m in provider.models}
        for model in provider.models:
            yield from _with_snapshots(expand_model(provider.id, model, owns_model=True, batch_discount=batch_discount))
        seen = set(own)
        for fallback_id in provider.fallback_model_providers or ():
            fallback = by_id.get(fallback_id)
            for model in fallback.models if fallback else ():
                if model.id in seen:
                    continue
                seen.add(model.id)
                yield from _with_snapshots(
                    expand_model(provider.id, model, owns_model=False, batch_discount=batch_discount))


# ---- overrides ------------------------------------------------------------------


def _override_rates(override: ModelPriceOverride) -> dict[str, Decimal | None]:
    rates: dict[str, Decimal | None] = {}
    for key, (name, per) in RATE_KEYS.items():
        value = getattr(override, key, None)
        rates[name] = None if value is None else _per_unit(Decimal(value), per)
    return rates


def override_cells(override: ModelPriceOverride, batch_discount: Decimal) -> list[PriceCell]:
    """Cells for one custom price: every context, from `valid_from` (or always) onwards."""
    provider = normalise_provider(override.provider) or override.provider
    start = _parse_day(override.valid_from) if override.valid_from else EPOCH
    rates = _override_rates(override)
    cells = []
    for context in CONTEXTS:
        applied = rates
        if context == BATCH:
            applied = _discount_rates(rates, batch_discount)
        cells.append(
            PriceCell(provider, override.model, context, start, FOREVER, 0, DAY_MS, -1, NO_UPPER,
                      applied, rates, "override")
        )
    return cells


def _parse_day(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _clip_before(cells: Iterable[PriceCell], start: datetime) -> list[PriceCell]:
    """Keep only the part of catalogue cells before an override takes effect."""
    kept = []
    for cell in cells:
        if cell.valid_from >= start:
            continue
        if cell.valid_to > start:
            cell.valid_to = start
        kept.append(cell)
    return kept


def _discounted(cell: PriceCell, discount: Decimal) -> PriceCell:
    cell.rates = _discount_rates(cell.rates, discount)
    cell.list_rates = _discount_rates(cell.list_rates, discount)
    percent = f"{discount * 100:f}".rstrip("0").rstrip(".")
    cell.price_source = f"{cell.price_source} -{percent}%"
    return cell


def _model_discount(settings: PricingSettings, provider: str, model: str) -> Decimal | None:
    """The discount of the most specific `[[pricing.discounts]]` entry matching a catalogue model
    (a named provider before any provider, an exact id before a glob, a longer glob before a
    shorter), else the provider's discount, else None."""
    best: tuple[tuple[bool, bool, int], Decimal] | None = None
    lowered = model.lower()
    for entry in settings.discounts:
        if entry.provider is not None and (normalise_provider(entry.provider) or entry.provider) != provider:
            continue
        pattern = entry.model.lower()
        exact = not any(c in pattern for c in "*?[")
        if not (lowered == pattern if exact else fnmatchcase(lowered, pattern)):
            continue
        rank = (entry.provider is not None, exact, len(pattern))
        if best is None or rank > best[0]:
            best = (rank, entry.discount)
    if best is not None:
        return best[1]
    discounts = {normalise_provider(p) or p: d for p, d in settings.provider_discounts.items()}
    return discounts.get(provider)


def build_price_table(settings: PricingSettings) -> PriceTable:
    """The catalogue expanded, negotiated discounts applied, custom prices layered on top.

    Deterministic for given settings and catalogue, so built once per process per settings.
    """
    return _build_price_table(settings.model_dump_json())


@lru_cache(maxsize=4)
def _build_price_table(settings_json: str) -> PriceTable:
    settings = PricingSettings.model_validate_json(settings_json)
    overrides = {
        (normalise_provider(o.provider) or o.provider, o.model): o for o in settings.models
    }
    grouped: dict[tuple[str, str], list[PriceCell]] = {}
    for cell in catalogue_cells(settings.batch_discount):
        grouped.setdefault((cell.provider, cell.model), []).append(cell)
    for key, override in overrides.items():
        start = _parse_day(override.valid_from) if override.valid_from else EPOCH
        grouped[key] = _clip_before(grouped.get(key, []), start) + override_cells(override, settings.batch_discount)
    table = PriceTable(overrides=len(overrides))
    for (provider, model), cells in grouped.items():
        discount = _model_discount(settings, provider, model)
        for cell in cells:
            if discount and cell.price_source != "override":
                cell = _discounted(cell, discount)
            table.cells.append(cell)
    return table


def override_names(settings: PricingSettings) -> list[OverrideName]:
    """The model names overrides price, for the name resolver."""
    return [
        OverrideName(normalise_provider(o.provider) or o.provider, o.model, o.match_prefix) for o in settings.models
    ]


# ---- loading ----------------------------------------------------------------------


@dataclass(frozen=True)
class PriceLoad:
    """What a load wrote."""

    rows: int
    models: int
    overrides: int
    checksum: str
    changed: bool


def load_prices(wh: Warehouse, settings: PricingSettings) -> PriceLoad:
    """Rebuild the `prices` table from the catalogue and settings; swap it in atomically."""
    table = build_price_table(settings)
    frame, checksum = table.frame, table.digest
    previous = wh.scalar("SELECT argMax(checksum, loaded_at) FROM price_loads")
    wh.ddl("DROP TABLE IF EXISTS prices_next")
    wh.ddl("CREATE TABLE prices_next AS prices")
    wh.insert_arrow("prices_next", frame, tag="prices:load")
    wh.ddl("EXCHANGE TABLES prices AND prices_next")
    wh.ddl("DROP TABLE IF EXISTS prices_next")
    wh.command(
        "INSERT INTO price_loads (loaded_at, catalogue_version, catalogue_timestamp, rows, models, overrides, checksum) "
        "VALUES (now64(3), {v:String}, {t:String}, {r:UInt64}, {m:UInt64}, {o:UInt64}, {c:String})",
        {
            "v": table_version(),
            "t": str(data_snapshot.get_snapshot().timestamp),
            "r": frame.height,
            "m": table.models,
            "o": table.overrides,
            "c": checksum,
        },
    )
    return PriceLoad(frame.height, table.models, table.overrides, checksum, changed=previous != checksum)


# Bump when the way catalogue entries become cells changes (revision 2: cells repeated under the
# dated snapshot ids of `-latest` entries), so a store loaded by an earlier release reloads its
# price table on its next start; stored calls change only with `llmledger reprice`.
CELLS_REVISION = 2


def table_version() -> str:
    """What a price load is built from: the genai-prices version and `CELLS_REVISION`."""
    return f"{catalogue_version()} cells-{CELLS_REVISION}"


def prices_loaded(wh: Warehouse) -> bool:
    """True once a price table of this release (`table_version`) was loaded in this database."""
    return bool(wh.scalar("SELECT count() FROM price_loads WHERE catalogue_version = {v:String}",
                          {"v": table_version()}, tag="prices:loaded"))
