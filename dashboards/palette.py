"""One colour per provider and per model, the same on every page and chart.

Providers have fixed brand-like colours; known models take shades of their provider's colour;
anything else (routes, teams, users, unknown models) gets a stable colour from a qualitative
palette chosen by a hash of its name, so a value keeps its colour across pages and runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PROVIDERS: dict[str, str] = {
    "anthropic": "#C8643B",
    "openai": "#0F9D76",
    "google": "#3B6FD8",
    "self_hosted": "#7B52C9",
    "azure": "#2E8BC0",
    "bedrock": "#E0A100",
    "mistral": "#E4572E",
    "other": "#9AA0A6",
    "self-hosted GPUs": "#7B52C9",  # the GPU time of self-hosted nodes, charted beside the API providers
}
MODELS: dict[str, str] = {
    "claude-sonnet-4-5": "#C8643B",
    "claude-haiku-4-5": "#E9A27F",
    "claude-opus-4-1": "#8A3A1E",
    "gpt-4o": "#0F9D76",
    "gpt-4o-mini": "#5CCBA4",
    "gpt-4.1-mini": "#9BE3C6",
    "o4-mini": "#0B5E47",
    "gemini-2.5-flash": "#7FA6EE",
    "gemini-2.5-pro": "#1F4AA8",
    "llama-3.1-70b-instruct": "#7B52C9",
}
# distinct hues for everything that is not a provider or model (from Plotly's Dark24, without the
# near-black and look-alike ones)
QUALITATIVE: tuple[str, ...] = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#EB663B", "#511CFB", "#00A08B",
    "#FC0080", "#B2828D", "#6C7C32", "#778AAE", "#A777F1", "#862A16", "#17BECF", "#FECB52",
)
SEVERITY: dict[str, str] = {"critical": "#D93025", "warning": "#F29900", "ok": "#188038", "resolved": "#188038"}
WARNING, CRITICAL, GOOD, NEUTRAL = SEVERITY["warning"], SEVERITY["critical"], SEVERITY["ok"], "#5F6368"


def color(name: str) -> str:
    """The colour of a provider, model or any other value."""
    if name in PROVIDERS:
        return PROVIDERS[name]
    if name in MODELS:
        return MODELS[name]
    digest = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
    return QUALITATIVE[digest % len(QUALITATIVE)]


def color_map(names: Iterable[str]) -> dict[str, str]:
    """name → colour for a chart's names: providers and models keep theirs; other names take their
    hashed colour unless another name of the same chart already has it, then the next free one
    (names handled in sorted order, so the same set of names always gets the same colours)."""
    unique = sorted({str(n) for n in names})
    out = {n: color(n) for n in unique if n in PROVIDERS or n in MODELS}
    taken = set(out.values())
    for name in unique:
        if name in out:
            continue
        start = QUALITATIVE.index(color(name))
        for step in range(len(QUALITATIVE)):
            candidate = QUALITATIVE[(start + step) % len(QUALITATIVE)]
            if candidate not in taken or step == len(QUALITATIVE) - 1:
                break
        out[name] = candidate
        taken.add(candidate)
    return out
