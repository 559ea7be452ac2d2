"""Settings: one pydantic-settings model with a section per subsystem.

Sources, highest precedence first: keyword arguments, `LLMLEDGER_*` environment variables
(nested sections with `__`, e.g. `LLMLEDGER_WAREHOUSE__URL`), the TOML file named by
`LLMLEDGER_CONFIG` (default `./llmledger.toml` when present), then the defaults below.
Secrets (provider admin keys, Slack token, SMTP password) are read from the environment only.
Settings are built by `get_settings()` on first use, never at import time.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from collectors.config import CollectorsSettings

DEFAULT_HOME = Path(".llmledger")


class WarehouseSettings(BaseModel):
    """Where the ClickHouse warehouse lives."""

    url: str | None = Field(
        default=None,
        description="ClickHouse server URL (clickhouse://user@host:8123/db?secure=1&ca_cert=…; options in "
        "warehouse/target.py). Unset: the embedded chDB store under `path`.",
    )
    password: SecretStr | None = Field(
        default=None,
        description="Server password; from the environment only (LLMLEDGER_WAREHOUSE__PASSWORD). Wins over the URL's.",
    )
    path: Path | None = Field(default=None, description="Embedded store directory; default <home>/warehouse.")
    database: str = Field(default="llmledger", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    cluster: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Cluster name (remote_servers) for cluster mode: migrations render ON CLUSTER, replicated "
        "shard tables and Distributed tables. Server only.",
    )
    async_insert: bool = Field(
        default=True, description="Small frequent writes use async inserts that wait for the flush (server only)."
    )
    retries: int = Field(default=3, ge=1, le=10, description="Tries per statement on transient server errors.")
    query_timeout_s: float | None = Field(
        default=60.0, gt=0, description="Server-side max_execution_time of reads (server only); None: no limit."
    )

    @model_validator(mode="after")
    def _cluster_needs_a_server(self) -> WarehouseSettings:
        if self.cluster and not self.url:
            raise ValueError("warehouse.cluster needs warehouse.url: the embedded engine is a single node")
        return self


class IngestSettings(BaseModel):
    """The batch pipeline's bounds and validation limits."""

    batch_bytes: int = Field(default=32 << 20, ge=1024, description="Bytes per batch read from a JSON-lines file.")
    batch_rows: int = Field(default=100_000, ge=1, description="Rows per batch read from a CSV or Parquet file.")
    dead_letter_raw_max_bytes: int = Field(default=16_384, ge=256, description="Raw payload cap per dead letter.")
    max_future_skew_s: int = Field(default=3_600, ge=0, description="Reject calls this far in the future.")
    max_tokens_per_call: int = Field(default=50_000_000, ge=1, description="Token counts above this are impossible.")


class ServiceSettings(BaseModel):
    """The HTTP service (`llmledger up`): where it listens, what it accepts, how it spools."""

    host: str = Field(default="127.0.0.1", description="Interface to listen on. Without any API key the "
                      "service binds to localhost whatever this says.")
    port: int = Field(default=8787, ge=1, le=65535)
    max_body_bytes: int = Field(default=16 << 20, ge=1024, description="Largest request body (after "
                                "decompression); larger ones get 413 before they are read whole.")
    spool_max_bytes: int = Field(default=512 << 20, ge=1 << 20, description="Spool bound: beyond it, "
                                 "pushes get 429 with Retry-After until the flusher catches up.")
    flush_interval_s: float = Field(default=1.0, gt=0, description="Flush the spool to the warehouse at "
                                    "least this often.")
    flush_rows: int = Field(default=200_000, ge=1, description="Flush as soon as this many rows are pending.")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 429 when the spool is full.")
    key_cache_s: float = Field(default=2.0, ge=0, description="How long API keys are cached (revocation delay).")
    demo_days: int = Field(default=30, ge=1, description="Days of traffic `llmledger up --demo` simulates.")
    demo_calls_per_day: int = Field(default=30_000, ge=1)


class DashboardSettings(BaseModel):
    """The Streamlit dashboard that `llmledger up` starts beside the service, as a client of its API."""

    enabled: bool = Field(default=True, description="Start the dashboard with `llmledger up`.")
    port: int = Field(default=8501, ge=1, le=65535)
    api_key: SecretStr | None = Field(
        default=None,
        description="A read key the dashboard uses while it is served on localhost only (environment: "
        "LLMLEDGER_DASHBOARD__API_KEY). Served beyond localhost, every visitor signs in with their own key.",
    )


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


class PricingSettings(BaseModel):
    """User overrides on top of the genai-prices catalogue."""

    provider_discounts: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Negotiated discount per provider as a fraction (0.15 = 15% off every rate).",
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


class Settings(BaseSettings):
    """All of llmledger's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="LLMLEDGER_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(default=DEFAULT_HOME, description="State directory: embedded store, spool, locks.")
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    collectors: CollectorsSettings = Field(default_factory=CollectorsSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @property
    def warehouse_path(self) -> Path:
        """The embedded store's directory."""
        return self.warehouse.path or self.home / "warehouse"

    @property
    def spool_path(self) -> Path:
        """The push API's write-ahead spool directory."""
        return self.home / "spool"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = config_path()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def config_path() -> Path | None:
    """The TOML file to read: `$LLMLEDGER_CONFIG`, else `./llmledger.toml` if it exists."""
    explicit = os.environ.get("LLMLEDGER_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"LLMLEDGER_CONFIG points to {path}, which does not exist")
        return path
    default = Path("llmledger.toml")
    return default if default.is_file() else None


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> Settings:
    """The process-wide settings, built once on first use."""
    return Settings(**overrides)
