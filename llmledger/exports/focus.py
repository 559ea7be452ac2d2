"""FOCUS 1.2 (FinOps Open Cost and Usage Specification) export of cost.

Grain: one row per hour × project × provider × model × deployment × attribution set (team,
feature, route, environment) of LLM calls, and one per hour × node × GPU model of self-hosted GPU
time. BilledCost = EffectiveCost = ContractedCost = our priced cost (negotiated discounts and
overrides applied; no commitment discounts exist here); ListCost = the same calls at public
catalogue prices. Custom columns carry the `x_` prefix the spec reserves for them.

`SPEC` encodes the v1.2 column table (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, tag v1.2, commit
7296e3146fb931ee32b6496fa6e4200e7f4384f7, `specification/columns/*.md`: feature level, nulls, data
type); `check(frame)` holds an export to it. The FinOps Foundation's `focus-validator` covers 1.2
from 2.x (its rule model `model-1.2.0.1.json`), but requires Python ≥ 3.12, numpy < 2 and Polars 1.x,
none of which this project can take (Python 3.11, numpy 2, Polars 2); the versions that install here
(≤ 1.0.0) check FOCUS 1.0 only.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from ingest.pricing import build_price_table
from llmledger.settings import PricingSettings, Settings
from warehouse.client import Warehouse
from warehouse.queries import focus as queries
from warehouse.queries.scope import Filters, Scope


@dataclass(frozen=True)
class Column:
    """A FOCUS 1.2 column: feature level, whether nulls are allowed, data type."""

    name: str
    level: str  # Mandatory, Recommended, Conditional
    nullable: bool
    kind: str  # Decimal, String, Date/Time, JSON


SPEC: tuple[Column, ...] = tuple(Column(*row) for row in (
    ("AvailabilityZone", "Recommended", True, "String"), ("BilledCost", "Mandatory", False, "Decimal"),
    ("BillingAccountId", "Mandatory", False, "String"), ("BillingAccountName", "Mandatory", True, "String"),
    ("BillingAccountType", "Conditional", False, "String"), ("BillingCurrency", "Mandatory", False, "String"),
    ("BillingPeriodEnd", "Mandatory", False, "Date/Time"), ("BillingPeriodStart", "Mandatory", False, "Date/Time"),
    ("CapacityReservationId", "Conditional", True, "String"),
    ("CapacityReservationStatus", "Conditional", True, "String"),
    ("ChargeCategory", "Mandatory", False, "String"), ("ChargeClass", "Mandatory", True, "String"),
    ("ChargeDescription", "Mandatory", True, "String"), ("ChargeFrequency", "Recommended", False, "String"),
    ("ChargePeriodEnd", "Mandatory", False, "Date/Time"), ("ChargePeriodStart", "Mandatory", False, "Date/Time"),
    ("CommitmentDiscountCategory", "Conditional", True, "String"),
    ("CommitmentDiscountId", "Conditional", True, "String"), ("CommitmentDiscountName", "Conditional", True, "String"),
    ("CommitmentDiscountQuantity", "Conditional", True, "Decimal"),
    ("CommitmentDiscountStatus", "Conditional", True, "String"),
    ("CommitmentDiscountType", "Conditional", True, "String"), ("CommitmentDiscountUnit", "Conditional", True, "String"),
    ("ConsumedQuantity", "Conditional", True, "Decimal"), ("ConsumedUnit", "Conditional", True, "String"),
    ("ContractedCost", "Mandatory", False, "Decimal"), ("ContractedUnitPrice", "Conditional", True, "Decimal"),
    ("EffectiveCost", "Mandatory", False, "Decimal"), ("InvoiceId", "Recommended", True, "String"),
    ("InvoiceIssuerName", "Mandatory", False, "String"), ("ListCost", "Mandatory", False, "Decimal"),
    ("ListUnitPrice", "Conditional", True, "Decimal"), ("PricingCategory", "Conditional", True, "String"),
    ("PricingCurrency", "Conditional", True, "String"),
    ("PricingCurrencyContractedUnitPrice", "Conditional", True, "Decimal"),
    ("PricingCurrencyEffectiveCost", "Conditional", True, "Decimal"),
    ("PricingCurrencyListUnitPrice", "Conditional", True, "Decimal"),
    ("PricingQuantity", "Mandatory", True, "Decimal"), ("PricingUnit", "Mandatory", True, "String"),
    ("ProviderName", "Mandatory", False, "String"), ("PublisherName", "Mandatory", False, "String"),
    ("RegionId", "Conditional", True, "String"), ("RegionName", "Conditional", True, "String"),
    ("ResourceId", "Conditional", True, "String"), ("ResourceName", "Conditional", True, "String"),
    ("ResourceType", "Conditional", True, "String"), ("ServiceCategory", "Mandatory", False, "String"),
    ("ServiceName", "Mandatory", False, "String"), ("ServiceSubcategory", "Recommended", False, "String"),
    ("SkuId", "Conditional", True, "String"), ("SkuMeter", "Conditional", True, "String"),
    ("SkuPriceDetails", "Conditional", True, "JSON"), ("SkuPriceId", "Conditional", True, "String"),
    ("SubAccountId", "Conditional", True, "String"), ("SubAccountName", "Conditional", True, "String"),
    ("SubAccountType", "Conditional", True, "String"), ("Tags", "Conditional", True, "JSON"),
))
BY_NAME = {c.name: c for c in SPEC}
# the conditional and recommended columns that apply to LLM usage and GPU time (the rest do not:
# no commitment discounts, capacity reservations, regions, multi-currency pricing or account types)
EMITTED = tuple(c.name for c in SPEC if c.level == "Mandatory") + (
    "ChargeFrequency", "ServiceSubcategory", "ConsumedQuantity", "ConsumedUnit", "ContractedUnitPrice",
    "ListUnitPrice", "PricingCategory", "ResourceId", "ResourceName", "ResourceType", "SkuId", "SkuMeter",
    "SubAccountId", "SubAccountName", "Tags")
CUSTOM = ("x_Calls", "x_InputTokens", "x_CacheReadTokens", "x_CacheWriteTokens", "x_OutputTokens",
          "x_ReasoningTokens", "x_Deployment", "x_GpuHours")
ALLOWED = {
    "ChargeCategory": {"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    "ChargeFrequency": {"One-Time", "Recurring", "Usage-Based"},
    "PricingCategory": {"Standard", "Dynamic", "Committed", "Other"},
    "ServiceCategory": {"AI and Machine Learning", "Compute"},  # the two this export uses (of the spec's 19)
}
SUBCATEGORY = {"Generative AI": "AI and Machine Learning", "Virtual Machines": "Compute"}
SELF_HOSTED = "Self-hosted"
MONEY = pl.Decimal(38, 18)


def catalogue_cells(settings: Settings, models: list[tuple[str, str]]) -> pl.DataFrame:
    """The public catalogue's price cells (no overrides, no negotiated discounts) of `models`."""
    table = build_price_table(PricingSettings(batch_discount=settings.pricing.batch_discount))
    wanted = pl.DataFrame({"provider": [p for p, _ in models], "model": [m for _, m in models]},
                          schema={"provider": pl.String, "model": pl.String})
    return table.frame.join(wanted, on=["provider", "model"], how="semi")


def focus_frame(wh: Warehouse, settings: Settings, scope: Scope, since: datetime, until: datetime,
                filters: Filters | None = None) -> pl.DataFrame:
    """The FOCUS rows of [since, until) (LLM calls, then GPU time unless `filters` narrow the calls)."""
    models = queries.catalogue_models(wh, scope, since, until, filters)
    calls = queries.call_costs(wh, scope, since, until, catalogue_cells(settings, models), filters)
    frames = [_call_rows(calls)]
    if not filters:
        frames.append(_gpu_rows(queries.gpu_costs(wh, scope, since, until)))
    return pl.concat([f for f in frames if f.height], how="diagonal_relaxed") if any(f.height for f in frames) \
        else _call_rows(calls)


def _period(frame: pl.DataFrame) -> list[pl.Expr]:
    start = pl.col("charge_start").dt.replace_time_zone("UTC") if frame.schema["charge_start"].time_zone is None \
        else pl.col("charge_start")
    return [
        start.alias("ChargePeriodStart"), start.dt.offset_by("1h").alias("ChargePeriodEnd"),
        start.dt.truncate("1mo").alias("BillingPeriodStart"),
        start.dt.truncate("1mo").dt.offset_by("1mo").alias("BillingPeriodEnd"),
    ]


def _blank_as_null(name: str) -> pl.Expr:
    return pl.when(pl.col(name) == "").then(None).otherwise(pl.col(name))


def _common(service_category: str, subcategory: str) -> list[pl.Expr]:
    return [pl.lit("USD").alias("BillingCurrency"), pl.lit("Usage").alias("ChargeCategory"),
            pl.lit(None, pl.String).alias("ChargeClass"), pl.lit("Usage-Based").alias("ChargeFrequency"),
            pl.lit("Standard").alias("PricingCategory"), pl.lit(service_category).alias("ServiceCategory"),
            pl.lit(subcategory).alias("ServiceSubcategory")]


def _call_rows(calls: pl.DataFrame) -> pl.DataFrame:
    tokens = (pl.col("tokens_input") + pl.col("tokens_output")).cast(MONEY)
    cost = pl.col("effective_cost_usd").cast(MONEY)
    tags = pl.struct(*(_blank_as_null(k).alias(k) for k in (*queries.ATTRIBUTION, "deployment"))).struct.json_encode()
    return calls.select(
        *_period(calls), *_common("AI and Machine Learning", "Generative AI"),
        cost.alias("BilledCost"), cost.alias("EffectiveCost"), cost.alias("ContractedCost"),
        pl.col("list_cost_usd").cast(MONEY).alias("ListCost"),
        pl.col("provider").alias("BillingAccountId"), pl.lit(None, pl.String).alias("BillingAccountName"),
        pl.format("{} calls of {} ({})", "calls", "model", "deployment").alias("ChargeDescription"),
        pl.col("provider").alias("InvoiceIssuerName"), pl.col("provider").alias("ProviderName"),
        pl.col("provider").alias("PublisherName"), pl.format("{} API", "provider").alias("ServiceName"),
        tokens.alias("PricingQuantity"), pl.lit("Tokens").alias("PricingUnit"),
        tokens.alias("ConsumedQuantity"), pl.lit("Tokens").alias("ConsumedUnit"),
        pl.lit(None, MONEY).alias("ContractedUnitPrice"), pl.lit(None, MONEY).alias("ListUnitPrice"),
        pl.format("{}/{}", "provider", "model").alias("ResourceId"), pl.col("model").alias("ResourceName"),
        pl.lit("Model").alias("ResourceType"), pl.format("{}/{}", "provider", "model").alias("SkuId"),
        pl.lit("Tokens").alias("SkuMeter"), pl.col("project").alias("SubAccountId"),
        pl.col("project").alias("SubAccountName"), tags.alias("Tags"),
        pl.col("calls").cast(pl.Int64).alias("x_Calls"), pl.col("tokens_input").cast(pl.Int64).alias("x_InputTokens"),
        pl.col("tokens_cache_read").cast(pl.Int64).alias("x_CacheReadTokens"),
        pl.col("tokens_cache_write").cast(pl.Int64).alias("x_CacheWriteTokens"),
        pl.col("tokens_output").cast(pl.Int64).alias("x_OutputTokens"),
        pl.col("tokens_reasoning").cast(pl.Int64).alias("x_ReasoningTokens"),
        pl.col("deployment").alias("x_Deployment"), pl.lit(None, MONEY).alias("x_GpuHours"),
    )


def _gpu_rows(gpu: pl.DataFrame) -> pl.DataFrame:
    cost = pl.col("cost_usd").cast(MONEY).fill_null(pl.lit(Decimal(0), MONEY))
    hours = pl.col("gpu_hours").cast(MONEY)
    return gpu.select(
        *_period(gpu), *_common("Compute", "Virtual Machines"),
        cost.alias("BilledCost"), cost.alias("EffectiveCost"), cost.alias("ContractedCost"), cost.alias("ListCost"),
        pl.lit(SELF_HOSTED).alias("BillingAccountId"), pl.lit(None, pl.String).alias("BillingAccountName"),
        pl.format("GPU time of node {} ({})", "node", "gpu_model").alias("ChargeDescription"),
        pl.lit(SELF_HOSTED).alias("InvoiceIssuerName"), pl.lit(SELF_HOSTED).alias("ProviderName"),
        pl.lit(SELF_HOSTED).alias("PublisherName"), pl.lit("Self-hosted GPU nodes").alias("ServiceName"),
        hours.alias("PricingQuantity"), pl.lit("GPU-Hours").alias("PricingUnit"),
        hours.alias("ConsumedQuantity"), pl.lit("GPU-Hours").alias("ConsumedUnit"),
        pl.col("gpu_rate_usd").cast(MONEY).alias("ContractedUnitPrice"),
        pl.col("gpu_rate_usd").cast(MONEY).alias("ListUnitPrice"),
        pl.col("node").alias("ResourceId"), pl.col("node").alias("ResourceName"), pl.lit("GPU node").alias("ResourceType"),
        pl.format("gpu/{}", "gpu_model").alias("SkuId"), pl.lit("GPU-Hours").alias("SkuMeter"),
        pl.lit(None, pl.String).alias("SubAccountId"), pl.lit(None, pl.String).alias("SubAccountName"),
        pl.lit(None, pl.String).alias("Tags"), hours.alias("x_GpuHours"),
        pl.lit("self_hosted").alias("x_Deployment"),
    )


# ---- spec check and writing ----------------------------------------------------------------


def check(frame: pl.DataFrame) -> list[str]:
    """What in `frame` breaks FOCUS 1.2 (empty when nothing): mandatory columns missing, nulls
    where the spec forbids them, wrong types, values outside the allowed sets, non-`x_` extras."""
    problems = []
    for column in SPEC:
        if column.name not in frame.columns:
            if column.level == "Mandatory":
                problems.append(f"{column.name}: mandatory column missing")
            continue
        series = frame[column.name]
        if not column.nullable and series.null_count():
            problems.append(f"{column.name}: {series.null_count()} nulls")
        ok = {"Decimal": isinstance(series.dtype, pl.Decimal), "String": series.dtype == pl.String,
              "JSON": series.dtype == pl.String,
              "Date/Time": isinstance(series.dtype, pl.Datetime) and series.dtype.time_zone == "UTC"}[column.kind]
        if not ok:
            problems.append(f"{column.name}: {series.dtype} is not {column.kind}")
        if column.kind == "JSON":
            for text in series.drop_nulls().unique().to_list():
                if not isinstance(json.loads(text), dict):
                    problems.append(f"{column.name}: {text!r} is not a JSON object")
    for name, allowed in ALLOWED.items():
        if name in frame.columns and (bad := set(frame[name].drop_nulls().unique()) - allowed):
            problems.append(f"{name}: values {sorted(bad)} not allowed")
    if {"ServiceCategory", "ServiceSubcategory"} <= set(frame.columns):
        for category, sub in frame.select("ServiceCategory", "ServiceSubcategory").unique().iter_rows():
            if SUBCATEGORY.get(sub) != category:
                problems.append(f"ServiceSubcategory {sub!r} does not belong to {category!r}")
    if "BillingCurrency" in frame.columns and not all(
            re.fullmatch(r"[A-Z]{3}", v) for v in frame["BillingCurrency"].unique()):
        problems.append("BillingCurrency: not an ISO 4217 code")
    if {"ChargePeriodStart", "ChargePeriodEnd"} <= set(frame.columns) and frame.filter(
            pl.col("ChargePeriodEnd") <= pl.col("ChargePeriodStart")).height:
        problems.append("ChargePeriodEnd must be after ChargePeriodStart")
    problems += [f"{name}: custom columns need the x_ prefix" for name in frame.columns
                 if name not in BY_NAME and not name.startswith("x_")]
    return problems


def ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """Spec columns in the spec's order, then the custom ones."""
    return frame.select(*(n for n in EMITTED if n in frame.columns), *(n for n in CUSTOM if n in frame.columns))


def write(frame: pl.DataFrame, out: Path | io.BytesIO, fmt: str) -> None:
    """CSV (decimals exact, times ISO 8601 UTC) or Parquet (Decimal(38, 18), UTC timestamps)."""
    frame = ordered(frame)
    if fmt == "parquet":
        frame.write_parquet(out)
    elif fmt == "csv":
        frame.write_csv(out, datetime_format="%Y-%m-%dT%H:%M:%SZ")
    else:
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
