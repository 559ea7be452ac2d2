"""Settings: one pydantic-settings model composing every layer's settings sections.

Each layer owns its sections (`warehouse.settings`, `ingest.settings`, `collectors.config`,
`alerts.settings`) and never imports this module; the shell adds its own (service, dashboard,
metrics, scheduler), composes them into `Settings` and passes them down. The section models are
re-exported here, so `from llmledger.settings import SignalsSettings` keeps working.

Sources, highest precedence first: keyword arguments, `LLMLEDGER_*` environment variables
(nested sections with `__`, e.g. `LLMLEDGER_WAREHOUSE__URL`), the TOML file named by
`LLMLEDGER_CONFIG` (default `./llmledger.toml` when present), then the defaults below.
Secrets (provider admin keys, Slack token, SMTP password) are read from the environment only.
Settings are built by `get_settings()` on first use, never at import time.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from alerts.settings import (
    Budget,
    BudgetRule,
    CacheHitRule,
    CacheNotAppliedRule,
    LatencyRule,
    PromptAccumulationRule,
    ReasoningRule,
    ReportSettings,
    SandboxRule,
    SignalOverride,
    SignalRule,
    SignalsSettings,
    SlackRoute,
    SlackSettings,
    SmtpSettings,
    SpendSpikeRule,
    StaleRoutingRule,
    ToolLlmCostRule,
)
from collectors.config import CollectorsSettings
from ingest.settings import IngestSettings, ModelDiscount, ModelPriceOverride, OtlpSettings, PricingSettings
from warehouse.settings import WarehouseSettings

__all__ = [
    "Budget", "BudgetRule", "CacheHitRule", "CacheNotAppliedRule", "CollectorsSettings", "DashboardSettings",
    "IngestSettings", "LatencyRule", "MetricsSettings", "ModelDiscount", "ModelPriceOverride", "OtlpSettings",
    "PricingSettings", "PromptAccumulationRule", "ReasoningRule", "ReportSettings", "SandboxRule",
    "SchedulerSettings", "ServiceSettings", "Settings", "SignalOverride", "SignalRule", "SignalsSettings",
    "SlackRoute", "SlackSettings", "SmtpSettings", "SpendSpikeRule", "StaleRoutingRule", "ToolLlmCostRule",
    "WarehouseSettings", "config_path", "get_settings",
]

DEFAULT_HOME = Path(".llmledger")


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
    bootstrap_key: SecretStr | None = Field(
        default=None,
        description="An admin key chosen at deployment (llk_<id>_<secret>, environment only: "
        "LLMLEDGER_SERVICE__BOOTSTRAP_KEY), stored on start unless it exists, so a fresh deployment has a "
        "first key and serves beyond localhost at once. A revoked one stays revoked.",
    )


class DashboardSettings(BaseModel):
    """The Streamlit dashboard that `llmledger up` starts beside the service, as a client of its API."""

    enabled: bool = Field(default=True, description="Start the dashboard with `llmledger up`.")
    port: int = Field(default=8501, ge=1, le=65535)
    api_key: SecretStr | None = Field(
        default=None,
        description="A read key the dashboard uses while it is served on localhost only (environment: "
        "LLMLEDGER_DASHBOARD__API_KEY; default: one `llmledger up` makes for each run). Served beyond "
        "localhost, every visitor signs in with their own key.",
    )


class MetricsSettings(BaseModel):
    """`GET /metrics` (Prometheus text format): who may scrape it and how many series it may emit."""

    public: bool = Field(default=False, description="Serve /metrics without an API key (for a scraper on a "
                         "trusted network); otherwise a key with the read scope is required, like the read API.")
    labels: list[str] = Field(default_factory=lambda: ["provider", "model", "route", "team", "project", "deployment"],
                              description="Labels of the LLM-traffic metrics (columns of `calls`).")
    max_series: int = Field(default=500, ge=1, le=100_000, description="Cardinality cap: label sets kept per "
                            "traffic metric (the busiest by calls); the rest are summed into one '(other)' set.")
    latency_buckets_s: list[float] = Field(
        default_factory=lambda: [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
        description="Upper bounds (seconds) of the latency and TTFT histogram buckets (+Inf is added).")
    cache_s: float = Field(default=10.0, ge=0, description="Traffic figures are re-read from the warehouse at "
                           "most this often (a scrape in between gets the last ones).")

    @field_validator("labels")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        allowed = {"provider", "model", "model_raw", "route", "team", "feature", "project", "deployment",
                   "environment", "service_tier", "routing_policy", "source", "node", "tool_name"}
        bad = sorted(set(values) - allowed)
        if bad:
            raise ValueError(f"metrics labels {bad} are not allowed; choose among {sorted(allowed)}")
        return list(dict.fromkeys(values))

    @field_validator("latency_buckets_s")
    @classmethod
    def _buckets(cls, values: list[float]) -> list[float]:
        if not values or any(v <= 0 for v in values) or sorted(set(values)) != values:
            raise ValueError("latency_buckets_s must be positive, strictly increasing seconds")
        return values


class SchedulerSettings(BaseModel):
    """The in-process job scheduler (APScheduler) that the service starts."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    signals_interval_s: int = Field(60, ge=1)
    delivery_interval_s: int = Field(15, ge=1)
    rollups_interval_s: int = Field(900, ge=1)
    collectors_interval_s: int = Field(300, ge=1)
    weekly_report_cron: str = Field("0 8 * * mon", description="crontab (UTC) of the weekly report slot.")
    misfire_grace_s: int = Field(30, ge=1)
    max_workers: int = Field(2, ge=1)
    lease_ttl_s: float = Field(
        30.0, gt=1, description="Scheduler lease term: with several service replicas only the holder runs jobs."
    )


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
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)
    signals: SignalsSettings = Field(default_factory=SignalsSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

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
