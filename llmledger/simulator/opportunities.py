"""Savings opportunities planted in the baseline traffic (every day, never an alert).

Each is a property of a route in `catalog.py`; this module states it as ground truth so the
opportunity reports can be tested. Controls that must NOT be reported are listed in `details`.
"""

from __future__ import annotations

from llmledger.simulator.catalog import ROUTE_INDEX, ROUTES
from llmledger.simulator.truth import OpportunityTruth

_CONTRACT = ROUTES[ROUTE_INDEX["contract-review"]]
_CRM = ROUTES[ROUTE_INDEX["crm-enrichment"]]
_TRIAGE = ROUTES[ROUTE_INDEX["ticket-triage"]]
_CRM_HOURS = _CRM.batch_hours or (0, 24)
assert _TRIAGE.cascade is not None

OPPORTUNITIES: tuple[OpportunityTruth, ...] = (
    OpportunityTruth(
        name="contract_review_prefix_uncached",
        kind="uncached_prefix",
        scope={"route": _CONTRACT.name, "model": "gemini-2.5-pro", "provider": "google"},
        evidence=f"every call repeats the same {_CONTRACT.prefix_tokens}-token prefix (one "
        "prompt_prefix_hash) "
        "with cache_read_tokens = 0 and no cache writes",
        expected_saving="Gemini context caching bills the prefix at $0.125 instead of $1.25 per MTok: "
        "~90% of "
        "the prefix's input cost, ~60% of the route's input cost",
        details={
            "prefix_tokens": _CONTRACT.prefix_tokens,
            "signal_1b_scope": "outside: design.md §5 1b lists eligibility thresholds for Anthropic and "
            "OpenAI "
            "models only, so this route is an opportunity, never a cache-not-applied alert",
        },
    ),
    OpportunityTruth(
        name="crm_enrichment_not_batched",
        kind="not_on_batch_api",
        scope={"route": _CRM.name, "model": "gpt-4o"},
        evidence=f"non-interactive nightly job ({_CRM_HOURS[0]:02d}:00-{_CRM_HOURS[1]:02d}:00 UTC, "
        f"user {_CRM.service_user}, stream false) sent synchronously: is_batch = false",
        expected_saving="50% of the route's cost on the Batch API",
        details={"controls_already_batched": ["nightly-summaries", "nightly-classify"]},
    ),
    OpportunityTruth(
        name="cascade_lite_cheap_step_enough",
        kind="cheap_step_answers_most",
        scope={"routing_policy": _TRIAGE.cascade.policy, "route": _TRIAGE.name},
        evidence=f"{_TRIAGE.cascade.cheap_model} answers ~{1 - _TRIAGE.cascade.escalation_rate:.0%} of "
        "calls; "
        f"escalation to {_TRIAGE.cascade.frontier_model} ~{_TRIAGE.cascade.escalation_rate:.0%}",
        expected_saving="serve the route from the cheap model alone (or raise the router threshold); the "
        "frontier step is ~10% of calls but ~3x the cheap model's per-token price",
        details={"escalation_rate": _TRIAGE.cascade.escalation_rate,
                 "control": "cascade-v2 (support-chat) escalates ~38%: healthy, not an opportunity"},
    ),
)
