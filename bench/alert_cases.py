"""The contract between the alert-precision harness (`bench.alerts_precision`) and the traffic
generators it judges the rules on.

A generator is a module with a function

    scenarios(days: int, warmup_days: int) -> list[Scenario]

that returns whole projects of calls (and tool runs) over `days` days from its own `START`, with
incidents injected only after `warmup_days`. Generators are written independently of the rules and
of each other: `bench.alerts_traffic` is the one rule changes may be checked against ("tune");
`bench.alerts_heldout` was written by someone who never read the rules, and no threshold may be
chosen by looking at its results ("held-out"). The harness ingests every scenario through the real
pipeline, evaluates the signals minute by minute after the warm-up and scores them against the
incidents each scenario declares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import polars as pl


@dataclass(frozen=True)
class Incident:
    """An injected incident and what should detect it.

    `signal` is the signal name as in `llmledger signals list` (cache_hit_collapse, cache_not_applied,
    prompt_accumulation, llm_calls_in_tools, reasoning_runaway, stale_routing, sandbox_runaway,
    latency_tail, spend_spike, budget). `scope` holds the attribution values the firing incident's
    scope must contain (e.g. {"route": "assistant-chat"}, {"provider": "anthropic"},
    {"tool_name": "web_search"}, {"team": "search"}). Time to detect counts from `crosses_at`, when
    the injected condition reaches the documented threshold. `also` lists other signals the same
    incident legitimately fires (its money moving, say), which then count as explained.
    `cause_hint` (optional): text the probable cause of the first page should contain (the change
    that started it), so a cause looked up at the wrong time shows.
    `extra` (optional): not one of the issue's ten incident kinds (a day-long level
    shift): the harness reports its recall apart from theirs. `observable` False: by the
    generator's own measure the injected condition never became observable before `end`; the
    harness lists it as such and counts it neither as detected nor as missed. `observability`
    (optional): how `crosses_at` was made observable, in a few words, for the report.
    """

    kind: str
    signal: str
    scope: dict[str, str]
    start: datetime
    end: datetime
    severity: str  # "warning" | "critical": the severity it must reach
    crosses_at: datetime
    also: tuple[str, ...] = ()
    cause_hint: str = ""
    extra: bool = False
    observable: bool = True
    observability: str = ""


@dataclass
class Scenario:
    """One project's traffic over the range.

    `calls` has the canonical record's columns (see `ingest.schema.CallIn`; at least event_id, ts,
    project, provider, model, input/output tokens; cache_read_tokens, cache_write_5m_tokens,
    reasoning_tokens, latency_ms, ttft_ms, status, route, feature, team, user_id, tool_name,
    routing_policy, cascade_step, escalated, prompt_version, prompt_prefix_hash … as the traffic
    needs). `tool_runs` has the `tool_runs` table's columns (event_id, ts, project, tool_name,
    status, duration_ms …), empty when the project runs no tools. `budgets` are monthly budgets the
    harness configures (`signals.budgets` entries). A scenario with no incidents is a quiet
    project: every incident it opens is noise. `seed_set` (optional) names the set of projects
    the harness reports together (e.g. "tune", "held-out"); empty: one set per generator.
    """

    project: str
    calls: pl.DataFrame
    tool_runs: pl.DataFrame = field(default_factory=pl.DataFrame)
    incidents: list[Incident] = field(default_factory=list)
    budgets: list[dict[str, str | Decimal]] = field(default_factory=list)
    seed_set: str = ""

    @property
    def quiet(self) -> bool:
        return not self.incidents
