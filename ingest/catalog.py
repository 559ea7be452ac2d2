"""Provider and model name resolution against the genai-prices catalogue and user overrides.

Sources spell the same model many ways (`claude-3-5-sonnet-20241022`, `anthropic/claude-3.5-sonnet`,
`gpt-4o-2024-08-06`) and providers likewise (`vertex_ai`, `gcp.gemini`, `bedrock`). Resolution maps a
(provider, model) pair as reported to the catalogue's canonical ids, so that attribution groups
them and the price join finds them. It runs once per distinct pair in a batch, never per row.
Unknown models are kept under their cleaned raw name and end up `unpriced`.
"""

from __future__ import annotations

from collections.abc import Iterable
import re
from dataclasses import dataclass
from functools import lru_cache

import polars as pl
from genai_prices import data_snapshot
from genai_prices.data_snapshot import find_provider_by_id

SELF_HOSTED = "self_hosted"
UNKNOWN_PROVIDER = "unknown"

# Names gateways, SDKs and OpenTelemetry use for providers, mapped to catalogue ids.
PROVIDER_ALIASES: dict[str, str] = {
    "azure_openai": "azure",
    "azure_ai": "azure",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "vertex": "google",
    "gemini": "google",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "google_ai_studio": "google",
    "bedrock": "aws",
    "aws_bedrock": "aws",
    "aws.bedrock": "aws",
    "xai": "x-ai",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "moonshot": "moonshotai",
    "vllm": SELF_HOSTED,
    "self-hosted": SELF_HOSTED,
    "selfhosted": SELF_HOSTED,
    "self_hosted": SELF_HOSTED,
    "hosted_vllm": SELF_HOSTED,
    "sglang": SELF_HOSTED,
    "tgi": SELF_HOSTED,
    "ollama": SELF_HOSTED,
    "local": SELF_HOSTED,
}


# Catalogue entries named `-latest` whose match also takes dated snapshot ids: a dated id keeps
# its own name (an alias's meaning moves when the provider ships a new snapshot), priced with the
# entry's prices, which the price table repeats under each snapshot id listed here (Anthropic's
# models overview lists one snapshot for each of these families).
DATED_SNAPSHOTS: dict[str, tuple[str, ...]] = {
    "claude-3-5-haiku-latest": ("claude-3-5-haiku-20241022",),
    "claude-3-7-sonnet-latest": ("claude-3-7-sonnet-20250219",),
    "claude-3-opus-latest": ("claude-3-opus-20240229",),
}
_DATED = re.compile(r"(?:^|[-@])(20\d{6})(?:$|[-:])")


@dataclass(frozen=True)
class Resolution:
    """Canonical names for one reported (provider, model) pair."""

    provider: str
    model: str
    known: bool


@dataclass(frozen=True)
class OverrideName:
    """A model name a user override prices (exactly, or as a prefix of raw names)."""

    provider: str
    model: str
    prefix: bool = False


def normalise_provider(raw: str | None) -> str | None:
    """Lower-case, trim and map aliases; None/empty stays None (to be inferred from the model)."""
    if raw is None:
        return None
    cleaned = raw.strip().lower()
    if not cleaned:
        return None
    return PROVIDER_ALIASES.get(cleaned, cleaned)


def clean_model(raw: str) -> str:
    """The stored name of a model the catalogue does not know: trimmed, lower-case."""
    return raw.strip().lower()


class Catalog:
    """Resolves reported names; cached per distinct pair for the life of the object."""

    def __init__(self, overrides: Iterable[OverrideName] = ()) -> None:
        self._overrides = list(overrides)
        self._snapshot = data_snapshot.get_snapshot()
        self._cache: dict[tuple[str | None, str], Resolution] = {}

    def resolve(self, provider_raw: str | None, model_raw: str) -> Resolution:
        """Map one reported pair to canonical ids (see module docstring)."""
        key = (provider_raw, model_raw)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve(normalise_provider(provider_raw), model_raw)
        return hit

    def _resolve(self, provider: str | None, model_raw: str) -> Resolution:
        model_ref = strip_provider_prefix(provider, model_raw.strip())
        override = self._override_for(provider, model_ref)
        if override is not None:
            return Resolution(override.provider, override.model, True)
        if provider == SELF_HOSTED:
            # Open-weight names also exist in cloud catalogues at cloud prices; a self-hosted
            # model is priced by overrides and GPU time only.
            return Resolution(SELF_HOSTED, clean_model(model_ref), False)
        if provider is not None and find_provider_by_id(self._snapshot.providers, provider) is None:
            return Resolution(provider, clean_model(model_ref), False)
        provider_id = provider
        if provider_id is None and "/" in model_ref:
            provider_id = "litellm"  # genai-prices reads `provider/model` refs under this id
        try:
            found_provider, model = self._snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            return Resolution(provider or _guess_provider(model_ref), clean_model(model_ref), False)
        return Resolution(found_provider.id, _snapshot_name(model.id, model_ref), True)

    def _override_for(self, provider: str | None, model_ref: str) -> OverrideName | None:
        lowered = model_ref.lower()
        for override in self._overrides:
            if provider is not None and override.provider != provider:
                continue
            if lowered == override.model.lower() or (override.prefix and lowered.startswith(override.model.lower())):
                return override
        return None

    def resolve_frame(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Resolve the distinct (`provider`, `model`) pairs of a frame.

        Returns `provider`, `model` (the reported values, for joining back) and `provider_id`,
        `model_id`, `known`.
        """
        distinct = pairs.select("provider", "model").unique()
        resolved = [self.resolve(p, m) for p, m in distinct.iter_rows()]
        return distinct.with_columns(
            pl.Series("provider_id", [r.provider for r in resolved], dtype=pl.String),
            pl.Series("model_id", [r.model for r in resolved], dtype=pl.String),
            pl.Series("known", [r.known for r in resolved], dtype=pl.Boolean),
        )


def strip_provider_prefix(provider: str | None, model_ref: str) -> str:
    """`openai/gpt-4o` reported with provider `openai` is `gpt-4o`: gateways (LiteLLM, OpenRouter
    style) prefix the provider, and a stored call keeps both, so ingest and a later re-price must
    read the pair the same way. A prefix naming another provider (`openai/…` via `openrouter`)
    is part of the model id and stays."""
    head, sep, rest = model_ref.partition("/")
    if sep and rest and provider is not None and normalise_provider(head) == provider:
        return rest
    return model_ref


def _snapshot_name(model_id: str, model_ref: str) -> str:
    """The catalogue id, except that a dated snapshot id never becomes a `-latest` alias."""
    snapshots = DATED_SNAPSHOTS.get(model_id)
    if not snapshots or not _DATED.search(model_ref):
        return model_id
    dated = clean_model(model_ref.rsplit("/", 1)[-1]).replace("@", "-")
    return dated if dated in snapshots else model_id


def _guess_provider(model_ref: str) -> str:
    snapshot = data_snapshot.get_snapshot()
    try:
        return snapshot.find_provider(model_ref.lower(), None, None).id
    except LookupError:
        return UNKNOWN_PROVIDER


@lru_cache(maxsize=1)
def catalogue_version() -> str:
    """The genai-prices package version whose bundled data is in use."""
    from genai_prices import __version__

    return __version__
