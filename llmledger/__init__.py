"""llmledger: observability and cost attribution for LLM traffic.

The app shell (settings, CLI, process wiring, demo) lives here; the product's parts live in the
top-level packages `collectors`, `ingest`, `warehouse`, `alerts` and `dashboards`.
"""

__version__ = "0.1.0"
