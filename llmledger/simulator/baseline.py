"""What the baseline (incidents off) guarantees, as numbers signal authors and tests can use.

Each bound holds on every window of a default month (30k calls/day) when measured the way stated
(window, minimum volume, filter); `tests/test_simulator.py` checks them. Tighter windows or lower
volumes are noisier: pick a signal's minimum volume accordingly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llmledger.simulator.calls import CANCEL_RATE, ERROR_RATE, TIMEOUT_RATE
from llmledger.simulator.catalog import HOURLY_PROFILE, WEEKDAY_FACTOR


@dataclass(frozen=True)
class BaselineBounds:
    """Bounds of the baseline, with the measurement conventions they assume."""

    hit_ratio_min: float = 0.60  # cache_read / (read + writes) per route/model, 5-min window
    hit_ratio_min_calls: int = 20  # ... among windows with at least this many calls with cache tokens
    not_applied_share_max: float = 0.10  # eligible calls with no cache read or write, per route, 5-min window
    not_applied_min_calls: int = 20  # ... among windows with at least this many eligible calls
    escalation_min: float = 0.25  # cascade-v2 escalation (step-1 / step-0 calls) per hour; mean 0.38
    escalation_max: float = 0.50
    escalation_min_calls: int = 200  # ... hours with at least this many step-0 calls
    latency_p99_max_ms: int = 25_000  # per route/model/provider per hour, status ok
    latency_min_calls: int = 50  # ... hours with at least this many ok calls
    chat_ttft_p99_max_ms: int = 1_000  # streamed chat routes, per hour, status ok
    other_ttft_p99_max_ms: int = 3_000
    tool_timeout_share_max: float = 0.05  # per tool per 15 min, flagged only with >= 3 timeouts
    reasoning_tokens_max: int = 28_000  # every call (signal 4 fires at 100k)
    input_per_call_change_max: float = 1.6  # per route, hour over hour (either way),
    # ... both hours with >= input_per_call_min_calls ok calls
    input_per_call_min_calls: int = 100
    user_daily_spend_ratio_max: float = 3.0  # a user's daily spend / mean of their previous days (>= 3)
    user_daily_spend_floor_usd: float = 5.0  # ... only users spending at least this much that day
    tool_llm_cost_ratio_max: float = 10.0  # LLM cost per tool run per hour / the tool's mean (>= 20 runs)


BASELINE = BaselineBounds()


def baseline_summary() -> dict[str, Any]:
    """The bounds plus the traffic conventions, for the ground-truth file."""
    return {
        "bounds": asdict(BASELINE),
        "conventions": {
            "latency": "percentiles over status = 'ok'; timeouts carry latency_ms = the client timeout "
            "(60 s, 120 s for agents, 600 s for reasoning-qa); Batch API calls have no ttft/latency; "
            "only streamed calls have ttft_ms",
            "volume": "interactive routes follow the UTC hourly profile and weekday factors; batch routes "
            "(nightly-summaries, nightly-classify, crm-enrichment) run every night between 00:00 and "
            "04:00 UTC",
            "outcomes": f"errors {ERROR_RATE:.1%} (429/5xx, no tokens), timeouts {TIMEOUT_RATE:.1%} "
            "(no tokens), "
            f"cancelled {CANCEL_RATE:.1%} of streamed calls (partial output)",
            "caching": "Anthropic: explicit 5m breakpoints (code-assist: 1h prefix); OpenAI: automatic reads "
            "from 1024 tokens, no writes; Gemini: cached-content reads, no writes; self-hosted: none",
        },
        "hourly_profile": list(HOURLY_PROFILE),
        "weekday_factor": list(WEEKDAY_FACTOR),
    }
