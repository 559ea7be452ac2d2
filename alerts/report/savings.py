"""Savings opportunities of a week (design.md §5), each with an estimated $ per month: uncached
repeated prefixes, non-interactive routes off the Batch API, cascades whose cheap step answers
most calls, reasoning budgets, and self-hosted GPUs that cost more than the API would have for
the same tokens. The measurements are the query library's
(`warehouse.queries.savings`); this module applies the report's thresholds and words them.
A week's dollars scale to a month by 365.25 / 12 / 7.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from alerts.report.model import Opportunity
from alerts.report.week import Week
from alerts.settings import ReportingSettings
from common import formatting as fmt
from warehouse.client import Warehouse
from warehouse.queries import savings, selfhost
from warehouse.queries.scope import Filters, Scope

WEEKS_PER_MONTH = Decimal("365.25") / Decimal(12) / Decimal(7)
MIN_CALLS = 20  # fewer calls in a week are not a pattern
MIN_REASONING_SHARE = 0.5  # reasoning "dominates" output from here


def per_month(week_usd: Decimal) -> Decimal:
    """A week's dollars as dollars per month."""
    return week_usd * WEEKS_PER_MONTH


def _money(value: object) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)  # type: ignore[arg-type]


def _uncached(frame: pl.DataFrame) -> list[Opportunity]:
    out = []
    for r in frame.to_dicts():
        out.append(Opportunity(
            kind="uncached_prefix",
            title=f"Cache the repeated prompt prefix of {r['route']} on {r['model']}",
            scope={"route": r["route"], "provider": r["provider"], "model": r["model"],
                   "prompt_prefix_hash": r["prompt_prefix_hash"]},
            evidence=(f"{fmt.count(r['uncached_calls'])} of {fmt.count(r['eligible_calls'])} calls with ≥ 1,024 input tokens "
                      f"repeat prefix {r['prompt_prefix_hash']} (~{fmt.count(r['prefix_tokens'])} tokens) with no cache "
                      "reads or "
                      "writes"),
            action=f"Turn on prompt caching for this prefix ({r['provider']}); estimate at the cache-read price, "
                   "before cache-write or storage charges",
            saving_usd_month=per_month(_money(r["saving_usd"])),
        ))
    return out


def _uncached_frame(wh: Warehouse, settings: ReportingSettings, scope: Scope, week: Week,
                    filters: Filters | None) -> pl.DataFrame:
    return savings.uncached_prefixes(wh, scope, week.start, week.end, filters,
                                     min_input_tokens=settings.report.min_cacheable_tokens, min_calls=MIN_CALLS,
                                     tag="job:report:savings")


def _batch(frame: pl.DataFrame, discount: Decimal) -> list[Opportunity]:
    out = []
    for r in frame.to_dicts():
        users = ", ".join(u for u in r["users"] if u)
        out.append(Opportunity(
            kind="not_on_batch_api",
            title=f"Send {r['route']} through the Batch API",
            scope={"route": r["route"], "model": ", ".join(r["models"])},
            evidence=(f"{fmt.count(r['calls'])} synchronous calls: {fmt.percent(r['unstreamed_share'], 0)} not streamed, "
                      f"{fmt.percent(r['off_hours_share'], 0)} outside business hours, "
                      f"{fmt.percent(r['service_user_share'], 0)} by service users ({users}); is_batch = false"),
            action=f"Submit these calls as a batch job: Batch API prices are {fmt.percent(discount, 0)} lower",
            saving_usd_month=per_month(_money(r["cost_usd"]) * discount),
        ))
    return out


def _cascades(frame: pl.DataFrame, max_rate: float) -> list[Opportunity]:
    out = []
    for r in frame.to_dicts():
        rate = r["escalation_rate"]
        if rate is None or r["first_step_calls"] < MIN_CALLS or rate > max_rate:
            continue
        routes = ", ".join(r["routes"])
        out.append(Opportunity(
            kind="cheap_step_answers_most",
            title=f"{r['routing_policy']}: the cheap step already answers {fmt.percent(1 - rate, 0)} of calls",
            scope={"routing_policy": r["routing_policy"], "route": routes},
            evidence=(f"{r['cheap_model']} answers {fmt.count(r['first_step_calls'] - r['escalations'])} of "
                      f"{fmt.count(r['first_step_calls'])} calls; {fmt.count(r['escalations'])} escalations "
                      f"({fmt.percent(rate, 0)}) to {r['frontier_model']} cost "
                      f"{fmt.money(_money(r['escalation_cost_usd']), places=2)} this week"),
            action=(f"Serve {routes} from {r['cheap_model']} alone, or raise the router threshold, once the "
                    f"escalated answers show {r['frontier_model']} is rarely needed"),
            saving_usd_month=per_month(_money(r["escalation_cost_usd"])),
        ))
    return out


def _reasoning(frame: pl.DataFrame) -> list[Opportunity]:
    out = []
    for r in frame.to_dicts():
        if r["reasoning_share"] < MIN_REASONING_SHARE or not r["over_budget_calls"]:
            continue
        out.append(Opportunity(
            kind="reasoning_budget",
            title=f"Cap reasoning on {r['route']} ({r['model']}) at {fmt.count(r['budget_tokens'])} tokens",
            scope={"route": r["route"], "model": r["model"]},
            evidence=(f"reasoning is {fmt.percent(r['reasoning_share'], 0)} of output tokens; "
                      f"{fmt.count(r['over_budget_calls'])} of {fmt.count(r['calls'])} calls reason beyond the p95 of "
                      f"{fmt.count(r['budget_tokens'])} tokens, up to {fmt.count(r['max_reasoning_tokens'])}"),
            action="Set a reasoning budget (max reasoning / thinking tokens, or a lower effort) at the p95",
            saving_usd_month=per_month(_money(r["saving_usd"])),
        ))
    return out


def _self_hosted(frame: pl.DataFrame) -> list[Opportunity]:
    """GPUs that cost more than the API would have charged for the same tokens (the dashboards'
    self-hosted finding, from the same query)."""
    out = []
    for r in frame.to_dicts():
        if r["excess_usd"] is None or r["excess_usd"] <= 0:
            continue
        out.append(Opportunity(
            kind="self_hosted_underused",
            title=f"Self-hosted {r['model']}: GPUs {fmt.number(r['util_pct'])}% utilised",
            scope={"model": r["model"], "deployment": "self_hosted"},
            evidence=(f"{fmt.money(r['usd_per_1m_output_as_run'])} per 1M output tokens as run vs "
                      f"{fmt.money(r['api_usd_per_1m_output'])} on {r['api_provider']} / {r['api_model']}: "
                      f"{fmt.count(r['gpus'])} GPUs on {fmt.count(r['nodes'])} nodes cost "
                      f"{fmt.money(r['infra_cost_usd'], places=2)} this week for {fmt.compact(r['output_tokens'])} "
                      f"output tokens the API would have charged {fmt.money(r['api_cost_usd'], places=2)} for"),
            action=("Fill the GPUs (route more traffic to them, or fewer nodes), or serve this model from the API "
                    "until the volume pays for the nodes"),
            saving_usd_month=per_month(_money(r["excess_usd"])),
        ))
    return out


def opportunities(wh: Warehouse, settings: ReportingSettings, scope: Scope, week: Week,
                  filters: Filters | None) -> tuple[Opportunity, ...]:
    """Every opportunity worth at least `report.min_saving_usd_month`, largest first."""
    cfg = settings.report
    found = [
        *_uncached(_uncached_frame(wh, settings, scope, week, filters)),
        *_batch(savings.batch_candidates(wh, scope, week.start, week.end, filters,
                                         business_hours=cfg.business_hours_utc, service_users=cfg.service_users,
                                         min_calls=MIN_CALLS, tag="job:report:savings"),
                settings.pricing.batch_discount),
        *_cascades(savings.cascade_escalations(wh, scope, week.start, week.end, filters, tag="job:report:savings"),
                   cfg.max_escalation_rate),
        *_reasoning(savings.reasoning_tails(wh, scope, week.start, week.end, filters, min_calls=MIN_CALLS,
                                            tag="job:report:savings")),
        # GPU nodes serve every team: the finding belongs in the company-wide report
        *(_self_hosted(selfhost.self_hosted_vs_api(wh, scope, week.start, week.end, tag="job:report:savings"))
          if not filters else []),
    ]
    kept = [o for o in found if o.saving_usd_month >= cfg.min_saving_usd_month]
    return tuple(sorted(kept, key=lambda o: (-o.saving_usd_month, o.kind, o.title)))
