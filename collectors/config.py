"""Configuration models of the built-in collectors and the `[collectors]` settings section.

Pure pydantic, no I/O, so that `llmledger.settings` can import it cheaply. Secrets are never
settings: a collector names the environment variable that holds its key (`api_key_env`) and
reads it when it runs. Every collector section has `enabled` and `interval_s` (for the
scheduler); file importers get their `path` from the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest.settings import GpuPrice

BucketWidth = Literal["1m", "1h", "1d"]


class HttpConfig(BaseModel):
    """Timeouts and retries of one collector's HTTP client."""

    timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    max_attempts: int = Field(default=5, ge=1, le=20, description="Tries per request (429, 5xx, network errors).")
    backoff_initial_s: float = Field(default=1.0, ge=0, description="First back-off when no Retry-After is given.")
    backoff_max_s: float = Field(default=60.0, ge=0, description="Longest back-off, and the cap on Retry-After.")


class ProviderExportConfig(BaseModel):
    """Shared settings of the provider usage/cost export collectors."""

    enabled: bool = False
    interval_s: int = Field(default=3600, ge=60, description="How often the scheduler runs it.")
    project: str = Field(default="default", description="llmledger project the exported spend belongs to.")
    base_url: str
    api_key_env: str = Field(description="Environment variable holding the admin key (never a setting).")
    bucket_width: BucketWidth = "1d"
    usage: bool = Field(default=True, description="Fetch the usage (token) report.")
    costs: bool = Field(default=True, description="Fetch the cost report (daily buckets only).")
    group_by: list[str]
    cost_group_by: list[str]
    refetch_buckets: int = Field(
        default=3, ge=0, description="Buckets before the cursor re-read on every run (late revisions)."
    )
    backfill_days: int = Field(default=30, ge=1, description="How far back the first run reads.")
    page_limit: int | None = Field(default=None, ge=1, description="Buckets per page; default the API maximum.")
    http: HttpConfig = Field(default_factory=HttpConfig)

    _allowed_group_by: frozenset[str] = frozenset()
    _allowed_cost_group_by: frozenset[str] = frozenset()

    @field_validator("group_by", "cost_group_by")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def model_post_init(self, context: object, /) -> None:
        for name, allowed in (("group_by", self._allowed_group_by), ("cost_group_by", self._allowed_cost_group_by)):
            unknown = set(getattr(self, name)) - allowed
            if unknown:
                raise ValueError(f"{name}: {sorted(unknown)} not among {sorted(allowed)}")


class OpenAIConfig(ProviderExportConfig):
    """OpenAI organization Usage API (completions) and Costs API."""

    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_ADMIN_KEY"
    group_by: list[str] = Field(
        default_factory=lambda: ["project_id", "user_id", "api_key_id", "model", "batch", "service_tier"])
    cost_group_by: list[str] = Field(default_factory=lambda: ["project_id", "line_item", "api_key_id"])

    _allowed_group_by = frozenset({"project_id", "user_id", "api_key_id", "model", "batch", "service_tier"})
    _allowed_cost_group_by = frozenset({"project_id", "line_item", "api_key_id"})


ANTHROPIC_LEGACY_GROUP_BY = ["api_key_id", "workspace_id", "model", "service_tier", "context_window"]
ANTHROPIC_LEGACY_COST_GROUP_BY = ["workspace_id", "description"]


class AnthropicConfig(ProviderExportConfig):
    """Anthropic's Usage & Cost Analytics API (`api = "analytics"`, the default; beta) or the legacy
    Admin API usage report (messages) and cost report (`api = "legacy"`, a fallback, e.g. where the
    analytics API is not offered). The default `group_by` / `cost_group_by` follow the API chosen."""

    base_url: str = "https://api.anthropic.com"
    api_key_env: str = "ANTHROPIC_ADMIN_API_KEY"
    anthropic_version: str = "2023-06-01"
    api: Literal["analytics", "legacy"] = Field(
        default="analytics", description="analytics: /v1/organizations/analytics/{usage,cost}; legacy: "
        "/v1/organizations/usage_report/messages and /cost_report.")
    group_by: list[str] = Field(
        default_factory=lambda: ["api_key_id", "workspace_id", "model", "service_tier", "actor"]
    )
    cost_group_by: list[str] = Field(
        default_factory=lambda: ["api_key_id", "workspace_id", "model", "cost_type", "token_type"]
    )

    def model_post_init(self, context: object, /) -> None:
        legacy = self.api == "legacy"
        if legacy and "group_by" not in self.model_fields_set:
            self.group_by = list(ANTHROPIC_LEGACY_GROUP_BY)
        if legacy and "cost_group_by" not in self.model_fields_set:
            self.cost_group_by = list(ANTHROPIC_LEGACY_COST_GROUP_BY)
        allowed = {
            "group_by": {"api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo"}
            | (set() if legacy else {"actor"}),
            "cost_group_by": {"workspace_id", "description"} if legacy else
            {"api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo", "cost_type",
             "token_type"},
        }
        for name, names in allowed.items():
            unknown = set(getattr(self, name)) - names
            if unknown:
                raise ValueError(f"{name}: {sorted(unknown)} not among {sorted(names)} (api = {self.api!r})")
            if not legacy and len(getattr(self, name)) > 5:
                raise ValueError(f"{name}: the analytics API groups by at most 5 dimensions")


class ScrapeTarget(BaseModel):
    """One Prometheus endpoint; `node` names the machine (default: the exporter's hostname label,
    else the URL's host:port). Use the same node name for a machine's vLLM and DCGM targets."""

    url: str
    node: str | None = None


class ScrapeConfig(BaseModel):
    """Shared settings of the Prometheus scrape collectors."""

    enabled: bool = False
    interval_s: int = Field(default=15, ge=1, description="Scrape interval for the scheduler.")
    project: str = "default"
    targets: list[ScrapeTarget] = Field(default_factory=list)
    http: HttpConfig = Field(default_factory=lambda: HttpConfig(timeout_s=5.0, max_attempts=2, backoff_max_s=2.0))


class VllmConfig(ScrapeConfig):
    """vLLM OpenAI-compatible servers' `/metrics` (default port 8000)."""


class DcgmConfig(ScrapeConfig):
    """NVIDIA DCGM exporters' `/metrics` (default port 9400)."""


FileFormatName = Literal["auto", "jsonl", "json", "csv", "parquet"]


class FileImportConfig(BaseModel):
    """Shared settings of the file importers (the CLI passes `path`)."""

    enabled: bool = False
    path: Path | None = None
    format: FileFormatName = Field(default="auto", description="auto: from the file name.")
    source: str | None = Field(default=None, description="Source name recorded on each call.")
    batch_rows: int = Field(default=100_000, ge=1)
    batch_bytes: int = Field(default=32 << 20, ge=1024)


class LiteLLMSpendLogsConfig(FileImportConfig):
    """`LiteLLM_SpendLogs` exported as CSV or JSON."""

    prompt_includes_cache_writes: bool = Field(
        default=True,
        description="LiteLLM adds Anthropic cache writes to prompt_tokens (current releases). Set false for "
        "releases that added only cache reads; writes are then added to input_tokens on import.",
    )


class HeliconeConfig(FileImportConfig):
    """Helicone request export (`/v1/request/query` rows as JSON/JSONL, or the UI's CSV)."""


class PortkeyConfig(FileImportConfig):
    """Portkey log export (JSONL)."""


class OpenRouterConfig(FileImportConfig):
    """OpenRouter generation records (`GET /api/v1/generation` answers, one per line)."""


class MappedConfig(FileImportConfig):
    """Any JSONL / CSV / Parquet with a user-supplied TOML column mapping."""

    mapping: Path | None = None


NVIDIA_SMI_FIELDS = (
    "timestamp,index,uuid,name,pci.bus_id,driver_version,pstate,utilization.gpu,utilization.memory,"
    "memory.total,memory.used,memory.free,memory.reserved,temperature.gpu,temperature.memory,power.draw,"
    "power.limit,clocks.sm,clocks.mem,fan.speed"
).split(",")


class NvidiaSmiConfig(FileImportConfig):
    """`nvidia-smi --query-gpu=… --format=csv[,noheader][,nounits]` output."""

    node: str | None = Field(default=None, description="Machine the file came from (required).")
    project: str = "default"
    fields: list[str] = Field(default_factory=lambda: list(NVIDIA_SMI_FIELDS),
                              description="The --query-gpu list, needed for noheader files.")
    timezone: str = Field(default="UTC", description="nvidia-smi prints local time; name the machine's zone.")


class CollectorsSettings(BaseModel):
    """The `[collectors]` section: one subsection per built-in collector, plus GPU prices.

    Unknown subsections are kept (as dicts) for third-party collectors, whose own `Config` model
    validates them."""

    model_config = ConfigDict(extra="allow")

    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    anthropic: AnthropicConfig = Field(default_factory=AnthropicConfig)
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    dcgm: DcgmConfig = Field(default_factory=DcgmConfig)
    litellm_spend_logs: LiteLLMSpendLogsConfig = Field(default_factory=LiteLLMSpendLogsConfig)
    helicone: HeliconeConfig = Field(default_factory=HeliconeConfig)
    portkey: PortkeyConfig = Field(default_factory=PortkeyConfig)
    openrouter: OpenRouterConfig = Field(default_factory=OpenRouterConfig)
    mapped: MappedConfig = Field(default_factory=MappedConfig)
    nvidia_smi: NvidiaSmiConfig = Field(default_factory=NvidiaSmiConfig)
    gpu_prices: list[GpuPrice] = Field(default_factory=list)
    max_sample_gap_s: int = Field(
        default=120, ge=1, description="A GPU counts as running between two samples at most this far apart."
    )
