"""The one explicit registry of collectors: built-ins are listed here exactly as a third-party
plug-in would be (`REGISTRY.register(MyCollector)`).

Names are kebab-case (`litellm-spend-logs`); a collector's settings live under
`[collectors.<name with underscores>]` and are validated by the collector's own `Config` model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from collectors.anthropic_usage import AnthropicUsageCollector
from collectors.base import Collector, Kind
from collectors.dcgm import DcgmCollector
from collectors.gateways.helicone import HeliconeImport
from collectors.gateways.litellm import LiteLLMSpendLogsImport
from collectors.gateways.mapped import MappedImport
from collectors.gateways.openrouter import OpenRouterImport
from collectors.gateways.portkey import PortkeyImport
from collectors.nvidia_smi import NvidiaSmiImport
from collectors.openai_usage import OpenAIUsageCollector
from collectors.vllm import VllmCollector

BUILTINS: tuple[type[Collector], ...] = (
    OpenAIUsageCollector,
    AnthropicUsageCollector,
    VllmCollector,
    DcgmCollector,
    LiteLLMSpendLogsImport,
    HeliconeImport,
    PortkeyImport,
    OpenRouterImport,
    MappedImport,
    NvidiaSmiImport,
)


def settings_key(name: str) -> str:
    """The `[collectors.<key>]` section of a collector name."""
    return name.replace("-", "_")


class Registry:
    """Collectors by name."""

    def __init__(self, collectors: Iterable[type[Collector]] = ()) -> None:
        self._by_name: dict[str, type[Collector]] = {}
        for collector in collectors:
            self.register(collector)

    def register(self, collector: type[Collector]) -> type[Collector]:
        """Add a collector class (usable as a decorator); names must be unique."""
        if collector.name in self._by_name:
            raise ValueError(f"a collector named {collector.name!r} is already registered")
        self._by_name[collector.name] = collector
        return collector

    def names(self, kind: Kind | None = None) -> list[str]:
        """Registered names (of one kind), in registration order."""
        return [n for n, c in self._by_name.items() if kind is None or c.capabilities.kind is kind]

    def get(self, name: str) -> type[Collector]:
        """The collector class registered under `name`."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no collector named {name!r}; known: {', '.join(self._by_name)}") from None

    def config_for(self, name: str, section: BaseModel | None, **overrides: Any) -> BaseModel:
        """The collector's config from the `[collectors]` settings section, with `overrides` applied."""
        cls = self.get(name)
        raw = getattr(section, settings_key(name), None) if section is not None else None
        if raw is None and section is not None and section.model_extra:
            raw = section.model_extra.get(settings_key(name))
        data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.Config.model_validate(data)

    def create(self, name: str, config: BaseModel) -> Collector:
        """An instance of the named collector."""
        return self.get(name)(config)  # type: ignore[call-arg]


REGISTRY = Registry(BUILTINS)
