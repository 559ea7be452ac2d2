"""Which input-token convention an OTel instrumentation uses for Anthropic calls.

The GenAI conventions say `gen_ai.usage.input_tokens` includes cache reads and writes, and every
instrumentation checked here does so for Anthropic (it adds `cache_read_input_tokens` and
`cache_creation_input_tokens` to Anthropic's uncached-only `input_tokens`). Code that copies
Anthropic's `usage.input_tokens` into the span as is sends the uncached count instead. Which one a
span carries is decided from what identifies its producer, never from the sizes of the counts:

1. the span's or resource's `llmledger.input_tokens` attribute (`inclusive` or `uncached`);
2. the `[otlp] input_conventions` setting, keyed by instrumentation scope name;
3. the table of known instrumentations below (checked against their source);
4. otherwise the spec: inclusive.

An uncached-only count is made inclusive only for Anthropic spans (OpenAI's own counts are
inclusive); the attribute in (1) applies whatever the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Convention = Literal["inclusive", "uncached"]
CONVENTIONS: frozenset[str] = frozenset({"inclusive", "uncached"})

# scope name -> convention of its Anthropic input count (verified against the released source):
# OpenLLMetry `opentelemetry-instrumentation-anthropic` 0.62.4 (`input_tokens = prompt_tokens +
# cache_read_tokens + cache_creation_tokens`), OpenInference `openinference-instrumentation-anthropic`
# 3.1.0 (`_get_token_counts`: prompt = input + cache_creation + cache_read).
KNOWN: Mapping[str, Convention] = {
    "opentelemetry.instrumentation.anthropic": "inclusive",
    "openinference.instrumentation.anthropic": "inclusive",
    "opentelemetry.instrumentation.openai_v2": "inclusive",
    "opentelemetry.instrumentation.openai": "inclusive",
    "openinference.instrumentation.openai": "inclusive",
}


def input_convention(scope: str, attrs: Mapping[str, object], resource: Mapping[str, object],
                     configured: Mapping[str, str]) -> tuple[Convention, bool]:
    """(convention, declared explicitly by attribute) for one span."""
    declared = attrs.get("llmledger.input_tokens") or resource.get("llmledger.input_tokens")
    if declared in CONVENTIONS:
        return declared, True  # type: ignore[return-value]
    chosen = configured.get(scope) or KNOWN.get(scope) or "inclusive"
    return chosen, False  # type: ignore[return-value]
