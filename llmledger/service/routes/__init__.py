"""The service's routers: health, push ingest, read API, key administration."""
