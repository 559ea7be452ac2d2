"""What the running service counts about itself, in process, for `GET /metrics`: events accepted
and rejected per push endpoint and reason, and warehouse query latency per query tag.

Counters live in one `CollectorRegistry` per service (not prometheus_client's global one, so two
services in one test process never share counts) and reset when the process restarts, as
Prometheus counters do. Counting costs one lock-protected add per push request (per reason when
records are rejected), not per event.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from warehouse.client import Warehouse

# Warehouse query tags are route names and job names (bounded); anything else folds into one.
_TAG = re.compile(r"^[a-z][a-z0-9_:.-]{0,80}$")
# push sources that name their endpoint; /v1/events takes any `?source=`, so it counts as one endpoint
_ENDPOINTS = {"litellm": "litellm", "otlp": "otlp"}


def endpoint_of(source: str) -> str:
    """The bounded endpoint label of a push source."""
    return _ENDPOINTS.get(source, "events")
QUERY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMeters:
    """The service's own counters and histograms (see module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "llmledger_ingest_events", "Pushed records by endpoint and outcome (accepted, rejected); "
            "rejected ones by dead-letter reason, whole refused requests as malformed / spool_full.",
            ["endpoint", "outcome", "reason"], registry=self.registry)
        self.queries = Histogram(
            "llmledger_warehouse_query_duration_seconds", "Warehouse SELECTs by query tag (log_comment), "
            "wall time seen by the service.", ["tag"], buckets=QUERY_BUCKETS_S, registry=self.registry)
        # traffic aggregates per (scope, labels, cap, buckets): (monotonic time read, frame)
        self.traffic_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    # ---- ingest --------------------------------------------------------------------------

    def pushed(self, endpoint: str, accepted: int, reasons: list[str]) -> None:
        """A push request's outcome: `accepted` records durable, one reason per rejected record."""
        endpoint = endpoint_of(endpoint)
        if accepted:
            self.events.labels(endpoint, "accepted", "").inc(accepted)
        counts: dict[str, int] = {}
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
        for reason, n in counts.items():
            self.events.labels(endpoint, "rejected", reason).inc(n)

    def refused(self, endpoint: str, reason: str) -> None:
        """A whole request refused before any record was accepted (malformed body, full spool)."""
        endpoint = endpoint_of(endpoint)
        self.events.labels(endpoint, "rejected", reason).inc()

    # ---- warehouse -----------------------------------------------------------------------

    def observe(self, *warehouses: Warehouse) -> None:
        """Time every SELECT these warehouses run from now on."""
        for wh in warehouses:
            wh.on_query = self._query_seen

    def _query_seen(self, tag: str | None, seconds: float) -> None:
        label = tag if tag and _TAG.match(tag) else "(other)"
        self.queries.labels(label).observe(seconds)

