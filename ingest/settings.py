"""The ingest layer's settings sections: `[ingest]` (batch bounds, validation limits), `[otlp]`
(how spans are read) and `[pricing]` (overrides on top of the genai-prices catalogue), and the
GPU-hour prices the node-metrics writer loads (`[[collectors.gpu_prices]]`).

Ingest owns these models; the application's `Settings` (`llmledger.settings`) composes them with
the other layers' sections. Code of this layer takes the sections it reads, or any settings object
that has them (`PipelineSettings`), never the application's settings module.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator


class IngestSettings(BaseModel):
    """The batch pipeline's bounds and validation limits."""

    # a batch is one insert into `calls` and each rollup: fewer, larger parts leave the engine less to merge
    batch_bytes: int = Field(default=128 << 20, ge=1024, description="Bytes per batch read from a JSON-lines file.")
    batch_rows: int = Field(default=250_000, ge=1, description="Rows per batch read from a CSV or Parquet file.")
    dead_letter_raw_max_bytes: int = Field(default=16_384, ge=256, description="Raw payload cap per dead letter.")
    max_future_skew_s: int = Field(default=3_600, ge=0, description="Reject calls this far in the future.")
    max_tokens_per_call: int = Field(default=50_000_000, ge=1, description="Token counts above this are impossible.")


class OtlpSettings(BaseModel):
    """How OTLP spans are read (`/v1/traces`)."""

    input_conventions: dict[str, Literal["inclusive", "uncached"]] = Field(
        default_factory=dict, description="Instrumentation scope name -> whether its Anthropic "
        "`gen_ai.usage.input_tokens` includes cache reads and writes (`inclusive`, the spec) or not "
        "(`uncached`, Anthropic's own count). Overrides the built-in table of known instrumentations.")


class ModelPriceOverride(BaseModel):
    """A custom or negotiated price for one model, in USD per million tokens (per thousand for tool uses)."""

    provider: str
    model: str
    input_mtok: Decimal | None = None
    output_mtok: Decimal | None = None
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    cache_write_1h_mtok: Decimal | None = None
    output_reasoning_mtok: Decimal | None = None
    web_searches_kcount: Decimal | None = None
    valid_from: str | None = Field(default=None, description="ISO date from which the price applies (UTC).")
    match_prefix: bool = Field(default=False, description="Also apply to raw model names starting with `model`.")


class ModelDiscount(BaseModel):
    """A negotiated discount on the catalogue prices of a model or a family of models. Unlike a
    custom price it keeps every variant the catalogue knows: context-length tiers, batch and
    service-tier prices, dated price changes."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(default=None, description="Provider id (any provider when absent).")
    model: str = Field(min_length=1, description="Catalogue model id, or a glob over ids (`gpt-4o*`, `claude-*-4-5`).")
    discount: Decimal = Field(description="Fraction off every rate (0.2 = 20% off).")

    @field_validator("discount")
    @classmethod
    def _fraction(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(1):
            raise ValueError(f"discount must be a fraction in [0, 1), got {value}")
        return value


class PricingSettings(BaseModel):
    """User overrides on top of the genai-prices catalogue."""

    provider_discounts: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Negotiated discount per provider as a fraction (0.15 = 15% off every rate).",
    )
    discounts: list[ModelDiscount] = Field(
        default_factory=list,
        description="Negotiated discounts per model or model glob; the most specific entry wins over the "
                    "provider's discount.",
    )
    models: list[ModelPriceOverride] = Field(
        default_factory=list, description="Custom prices: self-hosted models, private deals, models the catalogue lacks."
    )
    batch_discount: Decimal = Field(
        default=Decimal("0.5"),
        description="Discount on Batch API calls for models without a batch price of their own.",
    )

    @field_validator("provider_discounts")
    @classmethod
    def _discount_is_a_fraction(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for provider, discount in value.items():
            if not Decimal(0) <= discount < Decimal(1):
                raise ValueError(f"discount for {provider!r} must be a fraction in [0, 1), got {discount}")
        return value


class GpuPrice(BaseModel):
    """What one GPU-hour costs on a node and/or GPU model (empty = any); most specific wins."""

    node: str = ""
    gpu_model: str = Field(default="", description="Matched as a case-insensitive substring, e.g. 'H100'.")
    usd_per_gpu_hour: Decimal = Field(ge=0)


class PipelineSettings(Protocol):
    """What the pipeline reads of the settings: the `[ingest]` and `[pricing]` sections."""

    @property
    def ingest(self) -> IngestSettings: ...

    @property
    def pricing(self) -> PricingSettings: ...
