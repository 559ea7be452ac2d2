"""The `[warehouse]` settings section: where the ClickHouse warehouse lives.

The warehouse owns its settings; the application's `Settings` (`llmledger.settings`) holds this
section under `warehouse`, read from the TOML file and `LLMLEDGER_WAREHOUSE__*` variables.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator


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
