"""Files into the warehouse: canonical records (`llmledger ingest`) and gateway or nvidia-smi exports
(`llmledger import …`). Through the service the file is streamed as the request body and kept
only while it is read."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmledger.operations import OPERATOR, OpContext, operation

FileName = Field(min_length=1, max_length=255, pattern=r"^[^/\\]+$",
                 description="The file's name: its format and compression (.gz) are read from it.")


class IngestParams(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = FileName
    source: str | None = Field(default=None, max_length=200, description="Recorded as `source` (default: the name).")
    format: Literal["jsonl", "csv", "parquet"] | None = Field(default=None, description="Default: from the name.")


@operation("ingest.file", "POST", "/v1/ingest/file", IngestParams, scope=OPERATOR, long=True, upload=True)
def ingest_file(ctx: OpContext, p: IngestParams) -> dict[str, Any]:
    """Ingest a file of canonical call records (JSON lines, CSV or Parquet; the body is the file)."""
    from ingest.pipeline import Pipeline
    from ingest.readers import FileFormat

    assert ctx.upload is not None
    advance = ctx.feed.task(f"ingest {p.name} (calls)")
    own = ctx.pipeline is None
    pipeline = Pipeline(ctx.wh, ctx.settings) if own else ctx.pipeline
    assert pipeline is not None
    try:
        summary = pipeline.ingest_file(ctx.upload, source=p.source or p.name,
                                       fmt=FileFormat(p.format) if p.format else None, progress=advance)
    finally:
        if own:
            pipeline.close()
    return {"name": p.name, **summary.as_dict()}


Importer = Literal["litellm-spend-logs", "helicone", "portkey", "openrouter", "mapped", "nvidia-smi"]


class ImportParams(BaseModel):
    model_config = {"extra": "forbid"}
    importer: Importer
    name: str = FileName
    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = "auto"
    source: str | None = Field(default=None, max_length=200)
    mapping: str | None = Field(default=None, max_length=65_536, description="`mapped`: the TOML column mapping.")
    node: str | None = Field(default=None, max_length=200, description="`nvidia-smi`: the machine.")
    fields: list[str] | None = Field(default=None, max_length=200, description="`nvidia-smi`: the --query-gpu list.")
    timezone: str = Field(default="UTC", max_length=64, description="`nvidia-smi`: the machine's time zone.")
    prompt_includes_cache_writes: bool = True


@operation("import.file", "POST", "/v1/import", ImportParams, scope=OPERATOR, long=True, upload=True)
def import_file(ctx: OpContext, p: ImportParams) -> dict[str, Any]:
    """Import a gateway's log export or nvidia-smi output (the body is the file)."""
    from collectors.runner import run_collector

    assert ctx.upload is not None
    config: dict[str, Any] = {"source": p.source} if p.importer != "nvidia-smi" else {}
    if p.importer != "nvidia-smi":
        config["format"] = p.format
    if p.importer == "litellm-spend-logs":
        config["prompt_includes_cache_writes"] = p.prompt_includes_cache_writes
    if p.importer == "nvidia-smi":
        config.update(node=p.node, timezone=p.timezone, **({"fields": p.fields} if p.fields else {}))
    advance = ctx.feed.task(f"import {p.name} ({p.importer})")
    with tempfile.TemporaryDirectory(prefix="llmledger-mapping-") as scratch:
        if p.importer == "mapped":
            if not p.mapping:
                raise ValueError("the mapped importer needs a mapping (--mapping map.toml)")
            mapping = Path(scratch) / "mapping.toml"
            mapping.write_text(p.mapping, encoding="utf-8")
            config["mapping"] = mapping
        report = run_collector(p.importer, ctx.settings, ctx.wh, path=ctx.upload, pipeline=ctx.pipeline,
                               progress=advance, **config)
    return report.as_dict()
