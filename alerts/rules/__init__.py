"""The signal families, in evaluation order: one module per family, each rule documented in its
docstring and in the README's signal table."""

from alerts.rules.base import Explanation, Family, Rule, RuleContext
from alerts.rules.budget import BudgetFamily
from alerts.rules.cache import CacheFamily
from alerts.rules.latency import LatencyFamily
from alerts.rules.prompt import PromptFamily
from alerts.rules.reasoning import ReasoningFamily
from alerts.rules.routing import RoutingFamily
from alerts.rules.spend import SpendFamily
from alerts.rules.tools import ToolFamily

FAMILIES: tuple[Family, ...] = (
    CacheFamily(), PromptFamily(), ToolFamily(), ReasoningFamily(), RoutingFamily(), LatencyFamily(),
    SpendFamily(), BudgetFamily(),
)
SIGNALS: tuple[str, ...] = tuple(rule.name for family in FAMILIES for rule in family.rules)

__all__ = ["FAMILIES", "SIGNALS", "Explanation", "Family", "Rule", "RuleContext"]
