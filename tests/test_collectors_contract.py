"""The collector contract, checked for every registered collector against its recorded fixtures:
a frozen capabilities record, a config model with defaults, batches only of the declared outputs
in the shape of their tables, JSON cursors, a README entry, no `warehouse` import — and running
it twice through the runner changes nothing the second time."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from collectors.base import Capabilities, Collector, Kind, Output, Window
from collectors.config import (
    AnthropicConfig,
    DcgmConfig,
    HeliconeConfig,
    LiteLLMSpendLogsConfig,
    MappedConfig,
    NvidiaSmiConfig,
    OpenAIConfig,
    OpenRouterConfig,
    PortkeyConfig,
    ScrapeTarget,
    VllmConfig,
)
from collectors.registry import REGISTRY
from collectors.runner import run_collector
from llmledger.settings import Settings
from tests.servers import ANTHROPIC_KEY, FIXTURES, OPENAI_KEY, MetricsServer, ProviderServer, provider_server
from tests.test_collectors_providers import FAST, NOV, UNTIL
from warehouse.client import Warehouse

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
AT = datetime(2025, 11, 3, 10, tzinfo=UTC)


class Servers:
    """The local stand-ins every pull and scrape collector is pointed at."""

    def __init__(self, providers: ProviderServer, metrics: MetricsServer) -> None:
        self.providers, self.metrics = providers, metrics


# name → (config for its recorded fixtures, window)
FIXTURE_RUNS: dict[str, Callable[[Servers], tuple[BaseModel, Window]]] = {
    "openai": lambda s: (OpenAIConfig(base_url=f"{s.providers.url}/v1", page_limit=2, http=FAST), Window(NOV[1], UNTIL)),
    "anthropic": lambda s: (AnthropicConfig(base_url=s.providers.url, page_limit=2, http=FAST), Window(NOV[1], UNTIL)),
    "vllm": lambda s: (VllmConfig(targets=[ScrapeTarget(url=f"{s.metrics.url}/vllm", node="n1")]), Window()),
    "dcgm": lambda s: (DcgmConfig(targets=[ScrapeTarget(url=f"{s.metrics.url}/dcgm")]), Window()),
    "litellm-spend-logs": lambda s: (LiteLLMSpendLogsConfig(path=FIXTURES / "litellm/spend_logs.csv"), Window()),
    "helicone": lambda s: (HeliconeConfig(path=FIXTURES / "helicone/requests.json"), Window()),
    "portkey": lambda s: (PortkeyConfig(path=FIXTURES / "portkey/logs.jsonl"), Window()),
    "openrouter": lambda s: (OpenRouterConfig(path=FIXTURES / "openrouter/generations.jsonl"), Window()),
    "mapped": lambda s: (MappedConfig(path=FIXTURES / "mapped/acme_calls.csv", mapping=FIXTURES / "mapped/acme.toml"),
                         Window()),
    "nvidia-smi": lambda s: (NvidiaSmiConfig(path=FIXTURES / "nvidia_smi/query_with_header.csv", node="n1"), Window()),
}

_TOTALS = {
    Output.CALLS: "SELECT count(), sum(input_tokens), sum(output_tokens) FROM calls",
    Output.TOOL_RUNS: "SELECT count() FROM tool_runs",
    Output.PROVIDER_USAGE: "SELECT count(), sum(input_tokens) FROM provider_usage_live",
    Output.PROVIDER_COSTS: "SELECT count(), sum(cost_usd) FROM provider_costs_live",
    Output.GPU_SAMPLES: "SELECT count(), sum(util_pct) FROM gpu_samples",
    Output.INFERENCE_SAMPLES: "SELECT count(), sum(generation_tokens_total) FROM inference_samples",
    Output.INFERENCE_HISTOGRAMS: "SELECT count(), sum(count) FROM inference_histograms",
}


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ANTHROPIC_KEY)
    metrics = MetricsServer()
    metrics.bodies["/vllm"] = [(FIXTURES / "vllm/scrape_2.txt").read_text()]
    metrics.bodies["/dcgm"] = [(FIXTURES / "dcgm/scrape_1.txt").read_text()]
    with provider_server() as providers:
        yield Servers(providers, metrics)
    metrics.stop()


def build(cls: type[Collector], config: BaseModel) -> Collector:
    """An instance; scrape collectors take a `clock`, fixed here so a repeated scrape is identical."""
    if cls.capabilities.kind is Kind.SCRAPE:
        return cls(config, clock=lambda: AT)  # type: ignore[call-arg]
    return cls(config)  # type: ignore[call-arg]


def test_every_registered_collector_has_recorded_fixtures() -> None:
    assert set(REGISTRY.names()) == set(FIXTURE_RUNS)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_collector_contract(name: str, settings: Settings, wh: Warehouse, servers: Servers) -> None:
    cls = REGISTRY.get(name)
    assert cls.name == name and isinstance(cls.capabilities, Capabilities)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cls.capabilities.incremental = not cls.capabilities.incremental  # type: ignore[misc]
    assert issubclass(cls.Config, BaseModel) and isinstance(cls.Config(), cls.Config)
    assert re.search(rf"`{re.escape(name)}`", README), f"{name} is not documented in the README"
    source = Path(inspect.getfile(cls)).read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert not any(str(m).startswith("warehouse") for m in imported), "collectors never import warehouse"

    config, window = FIXTURE_RUNS[name](servers)
    batches = list(build(cls, config).collect(window, None))
    assert batches, "the recorded fixtures yield data"
    for batch in batches:
        assert batch.output in cls.capabilities.outputs
        if batch.output is Output.CALLS:
            assert batch.records is not None and batch.frame is None
        else:
            assert batch.frame is not None
            assert set(batch.frame.columns) >= {"ts"} or batch.output in (Output.PROVIDER_USAGE,
                                                                          Output.PROVIDER_COSTS)
            extra = set(batch.frame.columns) - set(wh.table_columns(batch.output.value)) - {"fetch_id", "fetched_at"}
            assert not extra, f"columns without a place in {batch.output.value}: {extra}"
        if batch.output in (Output.PROVIDER_USAGE, Output.PROVIDER_COSTS):
            assert batch.stream and batch.buckets is not None and batch.buckets.height
        if batch.cursor is not None:
            orjson.dumps(batch.cursor)

    outputs = cls.capabilities.outputs
    since, until = window.start, window.end
    first = run_collector(name, settings, wh, collector=build(cls, config), since=since, until=until)
    assert first.ok, first.error
    after_first = {o: wh.query_rows(_TOTALS[o]) for o in outputs}
    second = run_collector(name, settings, wh, collector=build(cls, config), since=since, until=until)
    assert second.ok, second.error
    assert {o: wh.query_rows(_TOTALS[o]) for o in outputs} == after_first, "a re-run must not add or change data"
    assert second.written == (first.written if cls.capabilities.kind is Kind.PULL else 0)
