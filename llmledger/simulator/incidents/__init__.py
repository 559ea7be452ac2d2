"""The silent failures of design.md §5, injected into a day's tables at known times (see `schedule`)."""

from llmledger.simulator.incidents.base import Incident, Scheduled, Window
from llmledger.simulator.incidents.caching import CacheHitCollapse, CacheNotApplied
from llmledger.simulator.incidents.growth import PromptAccumulation, ReasoningRunaway, SpendSpike
from llmledger.simulator.incidents.latency import LatencyTail
from llmledger.simulator.incidents.routing import StaleRouting
from llmledger.simulator.incidents.schedule import (
    INCIDENTS,
    BudgetOverrun,
    apply_incidents,
    incident,
    schedule,
)
from llmledger.simulator.incidents.tooling import LlmCallsInTools, SandboxRunaway

__all__ = [
    "INCIDENTS",
    "BudgetOverrun",
    "CacheHitCollapse",
    "CacheNotApplied",
    "Incident",
    "LatencyTail",
    "LlmCallsInTools",
    "PromptAccumulation",
    "ReasoningRunaway",
    "SandboxRunaway",
    "Scheduled",
    "SpendSpike",
    "StaleRouting",
    "Window",
    "apply_incidents",
    "incident",
    "schedule",
]
