"""The llmledger service: one process that owns the warehouse and serves push ingest, the read
API and background jobs over HTTP (`llmledger up`). Everything else talks to it over HTTP.

`create_app(settings)` builds the FastAPI app; `server.serve(...)` runs it under uvicorn.
"""

from llmledger.service.app import create_app

__all__ = ["create_app"]
