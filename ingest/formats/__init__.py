"""Adapters from outside wire formats to canonical call records (`ingest.schema.CallIn`).

`events` reads canonical records (JSON array or NDJSON), `litellm` maps LiteLLM's
StandardLoggingPayload, `otlp` maps OpenTelemetry GenAI spans. Each returns data for the one
ingest pipeline; none writes anything.
"""
