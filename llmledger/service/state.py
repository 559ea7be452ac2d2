"""What the running service holds: settings, the open warehouse, the ingest pipeline and spool,
API keys and the OTLP span links. Built by the app's lifespan, never at import."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from ingest.flusher import PushSpool
from ingest.formats.otlp import SpanLinks
from ingest.pipeline import Pipeline
from llmledger.service.components import Component
from llmledger.service.keys import KeyStore, LocalKeys
from llmledger.service.meters import ServiceMeters
from llmledger.settings import Settings
from warehouse.client import Warehouse

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for localhost / 127.0.0.0/8 / ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServiceState:
    """The service's open resources (one warehouse writer per process)."""

    settings: Settings
    wh: Warehouse  # the writer's connection (pipeline, spool flush, keys)
    read_wh: Warehouse  # reads of the API (same store, own client)
    pipeline: Pipeline
    push: PushSpool
    keys: KeyStore
    links: SpanLinks = field(default_factory=SpanLinks)
    exposed: bool = False  # bound beyond localhost: a key is always required
    components: list[Component] = field(default_factory=list)
    coalescer: Any = None  # llmledger.service.push.Coalescer, set by the app (it needs this state)
    meters: ServiceMeters = field(default_factory=ServiceMeters)  # in-process counts for /metrics
    local_keys: LocalKeys | None = None  # per-run keys of the CLI and dashboard on this machine (`llmledger up`)

    def auth_mode(self) -> dict[str, Any]:
        """How requests are authenticated right now (for /health and the log)."""
        if self.keys.any_active():
            return {"required": True, "detail": "API key required (Authorization: Bearer llk_…)"}
        if self.exposed:
            return {"required": True, "detail": "no active API key: every request is refused (service is not on localhost)"}
        return {"required": False, "detail": "no API key configured: open, listening on localhost only"}
