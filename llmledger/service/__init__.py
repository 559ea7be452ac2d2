"""The llmledger service: one process that owns the warehouse and serves push ingest, the read
API and background jobs over HTTP (`llmledger up`). Everything else talks to it over HTTP.

`create_app(settings)` builds the FastAPI app; `server.serve(...)` runs it under uvicorn. Both
are imported on first use, so the CLI's `llmledger.service.cli` loads without the web stack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from llmledger.service.app import create_app

        return create_app
    raise AttributeError(name)
