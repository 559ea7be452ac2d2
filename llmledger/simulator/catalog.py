"""The simulated universe: models, tools, routes, teams and users, as frozen constants.

Every baseline parameter the traffic generator uses lives here, so signal authors can read what
"normal" is: per-route share of calls, prompt sizes, cache policy and hit rates, output and
reasoning distributions (log-normal medians and sigmas), cascade escalation rates, tool mixes.
Model names are the ones sent to providers and resolve as known in genai-prices 0.2.3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class RouteKind(StrEnum):
    """What a route does; decides session shape and timing."""

    CHAT = "chat"
    CODE = "code"
    AGENT = "agent"
    RAG = "rag"
    REASONING = "reasoning"
    CLASSIFY = "classify"
    BATCH = "batch"


class CachePolicy(StrEnum):
    """How a route uses prompt caching (the provider's semantics decide the token split)."""

    NONE = "none"  # never cached
    PROVIDER = "provider"  # Anthropic explicit 5m breakpoints / OpenAI automatic / Gemini implicit
    PREFIX_1H = "prefix_1h"  # Anthropic: the fixed prefix in a 1-hour cache, the conversation in 5m
    GEMINI_EXPLICIT = "gemini_explicit"  # Gemini cached content holding the fixed prefix


@dataclass(frozen=True)
class ModelSpec:
    """A model as sent to a provider, with its latency profile."""

    key: str  # model name as sent (= genai-prices id for API models)
    provider: str
    ttft_ms: float  # median time to first token, warm cache, no queue
    tpot_ms: float  # time per output token (reasoning tokens included)
    prefill_ms_per_ktok: float  # extra TTFT per 1,000 uncached input tokens
    min_cacheable_tokens: int = 1024  # shortest prefix the provider caches
    deployment: str = "api"


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("claude-sonnet-4-5", "anthropic", 380, 16, 25),
    ModelSpec("claude-haiku-4-5", "anthropic", 280, 9, 20, min_cacheable_tokens=2048),
    ModelSpec("claude-opus-4-1", "anthropic", 500, 25, 30),
    ModelSpec("gpt-4o", "openai", 380, 15, 30),
    ModelSpec("gpt-4o-mini", "openai", 300, 10, 15),
    ModelSpec("gpt-4.1-mini", "openai", 300, 10, 15),  # only in the stale-routing incident
    ModelSpec("o4-mini", "openai", 600, 4, 25),
    ModelSpec("gemini-2.5-flash", "google", 330, 8, 15),
    ModelSpec("gemini-2.5-pro", "google", 800, 18, 35, min_cacheable_tokens=2048),
    ModelSpec("llama-3.1-70b-instruct", "self_hosted", 240, 22, 60, deployment="self_hosted"),
)
MODEL_INDEX: dict[str, int] = {m.key: i for i, m in enumerate(MODELS)}
SELF_HOSTED_NODES: tuple[str, ...] = ("vllm-h100-01", "vllm-h100-02", "vllm-h100-03")


@dataclass(frozen=True)
class InnerCallSpec:
    """LLM calls a tool makes itself (tool-parented calls)."""

    model: str
    calls_per_run: int
    prefix_tokens: int  # the tool's fixed instructions (cacheable)
    new_median: float  # page / chunk tokens per call
    new_sigma: float
    output_median: float
    output_sigma: float


@dataclass(frozen=True)
class ToolSpec:
    """A tool or sandbox an agent runs; durations are log-normal in milliseconds."""

    name: str
    duration_median_ms: float
    duration_sigma: float
    timeout_ms: int  # a run that times out lasts exactly this long
    error_rate: float
    timeout_rate: float
    error_type: str
    inner: InnerCallSpec | None = None


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("web_search", 1200, 0.5, 15_000, 0.01, 0.002, "search_backend_error"),
    ToolSpec("code_sandbox", 4000, 0.8, 120_000, 0.03, 0.001, "nonzero_exit"),
    ToolSpec(
        "page_summarizer", 700, 0.5, 60_000, 0.01, 0.002, "fetch_failed",
        inner=InnerCallSpec("gpt-4o-mini", 1, 1200, 3000, 0.5, 180, 0.4),
    ),
    ToolSpec("sql_runner", 1500, 1.0, 30_000, 0.04, 0.002, "sql_error"),
)
TOOL_INDEX: dict[str, int] = {t.name: i for i, t in enumerate(TOOLS)}


@dataclass(frozen=True)
class CascadeSpec:
    """A routing policy: step 0 on a cheap model, escalations (step 1) to a frontier model."""

    policy: str
    cheap_model: str
    frontier_model: str
    escalation_rate: float  # share of step-0 calls that get a step-1 call
    score_threshold: float = 0.6  # router_score below this escalates


@dataclass(frozen=True)
class RouteSpec:
    """One route's traffic shape. Token sizes are log-normal (median, sigma), clipped where noted."""

    name: str
    kind: RouteKind
    feature: str
    team: str
    project: str
    share: float  # share of the day's calls
    models: tuple[tuple[str, float], ...] = ()  # (model, share of sessions); empty for cascades
    cascade: CascadeSpec | None = None
    stream: bool = False
    is_batch: bool = False
    cache: CachePolicy = CachePolicy.PROVIDER
    cache_hit_rate: float = 0.95  # per call: the cached prefix/history is still warm
    cache_new_tokens: bool = False  # the new turn is written to the cache (conversation breakpoint)
    prefix_tokens: int = 1000  # fixed system prompt + tool definitions
    new_median: float = 200  # new tokens per call: user message, retrieved docs or tool results
    new_sigma: float = 0.7
    new_max: int = 20_000
    output_median: float = 200  # visible output tokens
    output_sigma: float = 0.5
    max_output: int = 1024
    reasoning_share: float = 0.0  # share of calls that reason (thinking / reasoning model)
    reasoning_median: float = 0.0
    reasoning_sigma: float = 0.5
    reasoning_tail_share: float = 0.0  # share of reasoning calls drawn from the long tail
    reasoning_tail_median: float = 0.0
    reasoning_max: int = 28_000
    history_window: int = 0  # sliding window on the conversation history (tokens); 0 = stateless
    turns_mean: float = 1.0  # turns (agent steps) per session, geometric
    turns_max: int = 1
    think_median_s: float = 30.0  # pause between a response and the next turn
    tools: tuple[tuple[str, float], ...] = ()  # (tool, probability per agent step)
    batch_hours: tuple[int, int] | None = None  # nightly window [from, to) UTC for batch jobs
    service_user: str | None = None  # batch jobs run as this user
    prompt_version: str = "v1"
    web_search_rate: float = 0.0  # share of calls using the provider's server-side web search
    client_timeout_ms: int = 60_000
    tags: dict[str, str] = field(default_factory=dict)


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        "assistant-chat", RouteKind.CHAT, "workspace-assistant", "product", "acme-app", 0.16,
        models=(("claude-sonnet-4-5", 0.98), ("claude-opus-4-1", 0.02)), stream=True,
        cache_hit_rate=0.96, cache_new_tokens=True, prefix_tokens=3200, new_median=180, new_sigma=0.8,
        output_median=240, output_sigma=0.5, max_output=800, history_window=8000, turns_mean=5, turns_max=40,
        think_median_s=35, prompt_version="v7", web_search_rate=0.03,
        tags={"sdk": "anthropic-python/0.68.0", "app": "workspace-web"},
    ),
    RouteSpec(
        "support-chat", RouteKind.CHAT, "support-bot", "support", "acme-app", 0.15,
        cascade=CascadeSpec("cascade-v2", "gpt-4o-mini", "gpt-4o", 0.38), stream=True,
        cache_hit_rate=0.999, prefix_tokens=2500, new_median=90, new_sigma=0.7,
        output_median=180, output_sigma=0.5, max_output=800, history_window=3000, turns_mean=4, turns_max=30,
        think_median_s=30, prompt_version="v12",
        tags={"sdk": "openai-python/1.109.1", "router": "router-2025-09"},
    ),
    RouteSpec(
        "code-assist", RouteKind.CODE, "ide-copilot", "devtools", "acme-internal", 0.11,
        models=(("claude-sonnet-4-5", 1.0),), stream=True, cache=CachePolicy.PREFIX_1H,
        cache_hit_rate=0.96, cache_new_tokens=True, prefix_tokens=4800, new_median=600, new_sigma=0.7,
        new_max=6000, output_median=260, output_sigma=0.5, max_output=700, reasoning_share=0.35,
        reasoning_median=220, reasoning_sigma=0.5, reasoning_max=1024, history_window=10_000, turns_mean=3,
        turns_max=25, think_median_s=60, prompt_version="v3",
        tags={"sdk": "anthropic-python/0.68.0", "app": "ide"},
    ),
    RouteSpec(
        "code-agent", RouteKind.AGENT, "pr-fixer", "devtools", "acme-internal", 0.11,
        models=(("claude-sonnet-4-5", 1.0),), cache_hit_rate=0.96, cache_new_tokens=True, prefix_tokens=5200,
        new_median=700, new_sigma=0.8, new_max=8000, output_median=220, output_sigma=0.6, max_output=900,
        history_window=12_000, turns_mean=6, turns_max=25, think_median_s=1.5,
        tools=(("code_sandbox", 0.65), ("web_search", 0.1)), prompt_version="v5", client_timeout_ms=120_000,
        tags={"sdk": "anthropic-python/0.68.0", "agent": "pr-fixer"},
    ),
    RouteSpec(
        "research-agent", RouteKind.AGENT, "deep-research", "data", "acme-app", 0.07,
        models=(("gpt-4o", 1.0),), cache_hit_rate=0.999, prefix_tokens=2600, new_median=600, new_sigma=0.8,
        new_max=8000, output_median=200, output_sigma=0.6, max_output=900, history_window=8000, turns_mean=6,
        turns_max=25, think_median_s=1.0, tools=(("web_search", 0.35), ("page_summarizer", 0.35)),
        prompt_version="v2", client_timeout_ms=120_000,
        tags={"sdk": "openai-python/1.109.1", "agent": "researcher"},
    ),
    RouteSpec(
        "analytics-copilot", RouteKind.AGENT, "sql-copilot", "data", "acme-internal", 0.05,
        models=(("gemini-2.5-flash", 1.0),), cache_hit_rate=0.8, prefix_tokens=3000, new_median=400,
        new_sigma=0.8, new_max=6000, output_median=220, output_sigma=0.5, max_output=900, history_window=6000,
        turns_mean=5, turns_max=20, think_median_s=2.0, tools=(("sql_runner", 0.6),), prompt_version="v9",
        client_timeout_ms=120_000, tags={"sdk": "google-genai/1.38.0", "agent": "sql-copilot"},
    ),
    RouteSpec(
        "help-search", RouteKind.RAG, "help-center", "support", "acme-app", 0.06,
        models=(("gemini-2.5-flash", 1.0),), stream=True, cache=CachePolicy.GEMINI_EXPLICIT,
        cache_hit_rate=0.99,
        prefix_tokens=2200, new_median=2500, new_sigma=0.4, new_max=8000, output_median=220, output_sigma=0.5,
        max_output=800, history_window=1500, turns_mean=1.6, turns_max=8, think_median_s=40,
        prompt_version="v4",
        tags={"sdk": "google-genai/1.38.0", "app": "help-widget"},
    ),
    RouteSpec(
        "contract-review", RouteKind.RAG, "legal-review", "platform", "acme-internal", 0.02,
        models=(("gemini-2.5-pro", 1.0),), cache=CachePolicy.NONE, prefix_tokens=9000, new_median=4000,
        new_sigma=0.5, new_max=30_000, output_median=350, output_sigma=0.4, max_output=900, turns_mean=1.3,
        turns_max=6, think_median_s=90, prompt_version="v1",
        tags={"sdk": "google-genai/1.38.0", "app": "legal"},
    ),
    RouteSpec(
        "reasoning-qa", RouteKind.REASONING, "finance-qa", "data", "acme-app", 0.05,
        models=(("o4-mini", 1.0),), cache_hit_rate=0.999, prefix_tokens=1300, new_median=250, new_sigma=0.7,
        output_median=250, output_sigma=0.5, max_output=600, reasoning_share=1.0, reasoning_median=380,
        reasoning_sigma=0.6, reasoning_tail_share=0.01, reasoning_tail_median=1000, reasoning_max=5000,
        history_window=3000,
        turns_mean=1.5, turns_max=6, think_median_s=60, prompt_version="v6", client_timeout_ms=600_000,
        tags={"sdk": "openai-python/1.109.1", "app": "finance-portal"},
    ),
    RouteSpec(
        "ticket-triage", RouteKind.CLASSIFY, "ticket-routing", "support", "acme-app", 0.06,
        cascade=CascadeSpec("cascade-lite", "claude-haiku-4-5", "claude-sonnet-4-5", 0.10),
        cache_hit_rate=0.96, prefix_tokens=2400, new_median=350, new_sigma=0.6, new_max=4000,
        output_median=40, output_sigma=0.4, max_output=200, prompt_version="v11",
        tags={"sdk": "anthropic-python/0.68.0", "app": "helpdesk"},
    ),
    RouteSpec(
        "nightly-summaries", RouteKind.BATCH, "daily-digest", "product", "acme-app", 0.04,
        models=(("claude-haiku-4-5", 1.0),), is_batch=True, prefix_tokens=2300, new_median=1800,
        new_sigma=0.6,
        new_max=12_000, output_median=250, output_sigma=0.4, max_output=800, batch_hours=(1, 3),
        service_user="svc-digest", prompt_version="v3",
        tags={"sdk": "anthropic-python/0.68.0", "job": "digest"},
    ),
    RouteSpec(
        "nightly-classify", RouteKind.BATCH, "content-moderation", "data", "acme-app", 0.03,
        models=(("gpt-4o-mini", 1.0),), is_batch=True, prefix_tokens=450, new_median=200, new_sigma=0.6,
        new_max=500, output_median=8, output_sigma=0.3, max_output=32, batch_hours=(2, 4),
        service_user="svc-moderation", prompt_version="v2",
        tags={"sdk": "openai-python/1.109.1", "job": "moderation"},
    ),
    RouteSpec(
        "crm-enrichment", RouteKind.BATCH, "lead-enrichment", "product", "acme-app", 0.02,
        models=(("gpt-4o", 1.0),), prefix_tokens=700, new_median=180, new_sigma=0.5, new_max=300,
        output_median=150, output_sigma=0.4, max_output=400, batch_hours=(0, 2), service_user="svc-crm",
        prompt_version="v4", tags={"sdk": "openai-python/1.109.1", "job": "crm-sync"},
    ),
    RouteSpec(
        "internal-chat", RouteKind.CHAT, "employee-assistant", "platform", "acme-internal", 0.07,
        models=(("llama-3.1-70b-instruct", 1.0),), stream=True, cache=CachePolicy.NONE, prefix_tokens=1800,
        new_median=120, new_sigma=0.8, output_median=220, output_sigma=0.5, max_output=700,
        history_window=4000,
        turns_mean=4, turns_max=30, think_median_s=40, prompt_version="v2",
        tags={"sdk": "openai-python/1.109.1", "app": "slack-bot"},
    ),
)
ROUTE_INDEX: dict[str, int] = {r.name: i for i, r in enumerate(ROUTES)}
TEAMS: tuple[str, ...] = ("product", "support", "devtools", "data", "platform")
PROJECTS: tuple[str, ...] = ("acme-app", "acme-internal")
ENVIRONMENTS: tuple[tuple[str, float], ...] = (("prod", 0.95), ("staging", 0.04), ("dev", 0.01))

# Share of calls per UTC hour for interactive routes (EU + US business hours); consecutive hours
# differ by at most ~1.4x so hour-over-hour volume comparisons stay calm.
HOURLY_PROFILE: tuple[float, ...] = (
    0.45, 0.38, 0.32, 0.28, 0.27, 0.30, 0.38, 0.52, 0.72, 0.90, 1.00, 1.00,
    0.95, 1.00, 1.00, 1.00, 0.98, 0.92, 0.85, 0.78, 0.70, 0.62, 0.55, 0.50,
)
# Interactive volume by weekday (Monday first); batch routes run the same every night.
WEEKDAY_FACTOR: tuple[float, ...] = (1.15, 1.15, 1.15, 1.15, 1.15, 0.62, 0.60)

N_USERS = 800
USER_ACTIVITY_SIGMA = 1.2  # log-normal activity weights: the busiest user ~35x the median one
UNIVERSE_SEED = 20251101  # fixed, so user ids and their activity do not change with the traffic seed


def user_ids() -> list[str]:
    """Interactive users `u-0001` … `u-0800`."""
    return [f"u-{i + 1:04d}" for i in range(N_USERS)]


def user_weights() -> np.ndarray:
    """Each interactive user's share of sessions (sums to 1), fixed across seeds."""
    rng = np.random.default_rng(UNIVERSE_SEED)
    weights = rng.lognormal(0.0, USER_ACTIVITY_SIGMA, N_USERS)
    return weights / weights.sum()


def prefix_hash(route: str, version: str) -> str:
    """The stable hash of a route's cacheable prompt prefix at a prompt version."""
    import hashlib

    return hashlib.sha256(f"{route}:{version}".encode()).hexdigest()[:16]
