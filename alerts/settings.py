"""The alerting layer's settings sections: `[signals]` (rules, overrides, budgets), `[slack]`,
`[report]` (the weekly cost report) and `[smtp]`.

Alerts own these models; the application's `Settings` (`llmledger.settings`) composes them with the
other layers' sections. Code of this layer takes the sections it reads, or any settings object that
has them (`AlertingSettings`, `ReportingSettings`), never the application's settings module.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from ingest.settings import PricingSettings


class SignalRule(BaseModel):
    """Parameters shared by every signal rule. `window_min`: the sliding window a measure is taken
    over; `sustain_min`: how long the condition must hold at every evaluation point before it fires
    before it fires; `resolve_quiet_min`: how long the scope must then be clear (no breaching point)
    before its incident resolves — hysteresis, so a short lull neither resolves nor re-opens it;
    `min_volume`: the fewest events (calls, runs) a window needs to be judged at all."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    window_min: int = Field(5, ge=1)
    sustain_min: int = Field(5, ge=0)
    step_min: int = Field(1, ge=1, description="Evaluation cadence (minutes).")
    warning: float = 0.0
    critical: float = 0.0
    min_volume: int = Field(20, ge=0)
    resolve_quiet_min: int | None = Field(
        None, ge=0, description="Clear this long before resolving (default: the window, at least 15 min).")

    @property
    def resolve_quiet(self) -> int:
        """The quiet period in minutes (the setting, else max(window, 15))."""
        return self.resolve_quiet_min if self.resolve_quiet_min is not None else max(self.window_min, 15)


class CacheHitRule(SignalRule):
    """1 cache hit collapse: cache_read / (cache_read + cache_write) tokens per route/model (automatic
    caches: cached / input tokens of cache-eligible calls)."""

    warning: float = 0.50
    critical: float = 0.30
    min_volume: int = Field(10, description="Calls that touched the cache; the Wilson bound does the rest.")
    wide_window_min: int = Field(15, ge=1, description="A window with fewer than `min_volume` calls is widened to "
                                 "this (a quiet route is judged on more calls, later, rather than never).")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="One-sided confidence of the Wilson bound a ratio is judged by.")
    baseline_days: int = Field(7, ge=1, description="Days of the scope's own history its normal ratio is learned from.")
    healthy_ratio: float = Field(0.9, gt=0, le=1, description="A scope whose normal ratio is under this is judged on "
                                 "change: the thresholds scale by normal / healthy_ratio.")


class CacheNotAppliedRule(SignalRule):
    """1b cache not applied: share of cache-eligible calls with no cache read or write."""

    warning: float = 0.10
    critical: float = 0.50
    min_volume: int = 10
    wide_window_min: int = Field(15, ge=1, description="A window with fewer than `min_volume` eligible calls is "
                                 "widened to this.")
    max_window_min: int = Field(60, ge=1, description="... and, where that still holds fewer, widened five minutes at a time up to this "
                                "(explicit-cache providers only: an automatic cache expires after minutes without "
                                "calls, so calls that far apart miss it by design).")
    min_tokens: dict[str, int] = Field(
        default_factory=lambda: {
            "anthropic/claude-haiku": 2048, "anthropic/claude-3-haiku": 2048, "anthropic/claude-3-5-haiku": 2048,
            "anthropic/claude": 1024, "openai/": 1024,
        },
        description="`provider/model-prefix` → shortest cacheable input; the longest matching prefix wins. Gemini "
                    "is not judged by default (its implicit cache misses a large, varying share of calls): add "
                    "e.g. `google/gemini-2.5-pro: 4096` to judge a route that uses context caching.",
    )
    confidence: float = Field(0.999, gt=0.5, lt=1, description="One-sided confidence of the Wilson bound the share is "
                              "judged by (high: a 5-minute window judged every minute is hundreds of looks a day, and "
                              "misses come in clusters — a cold cache after a lull).")
    critical_confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence of the bound the CRITICAL level "
                                       "(> 50%, five times the warning's threshold) is judged by: random misses never "
                                       "reach half the calls, and at 99.9% a rollout is seen only near its end.")
    baseline_days: int = Field(7, ge=1, description="Days of the scope's own history its normal share is learned from.")
    automatic_providers: list[str] = Field(
        default_factory=lambda: ["openai"],
        description="Providers that cache automatically (no cache_control breakpoint): hit ratio = cached / input "
                    "tokens of cache-eligible calls, and their texts say so (both cache signals).",
    )


class PromptAccumulationRule(SignalRule):
    """2 prompt accumulation: input tokens per call (WARNING) and per hour too (CRITICAL) vs baseline."""

    window_min: int = 60
    sustain_min: int = 15
    step_min: int = 5
    warning: float = 2.0
    critical: float = 2.0
    min_volume: int = Field(20, description="Ok calls in the window; the per-call mean is judged by its lower "
                            "confidence bound (from the calls' own spread), so few calls need a larger move.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="One-sided confidence of the bound on input per call.")
    baseline_days: int = Field(7, ge=1)
    baseline_min_calls: int = Field(100, ge=1, description="Hours with fewer ok calls are left out of the baseline.")


class ToolLlmCostRule(SignalRule):
    """3 LLM calls inside tools: LLM cost per tool run vs the tool's own baseline."""

    window_min: int = 60
    sustain_min: int = 15
    warning: float = 10.0
    critical: float = 25.0
    min_volume: int = 20
    baseline_days: int = Field(7, ge=1)
    baseline_min_runs: int = 20
    new_cost_per_run_usd: float = Field(
        0.01, ge=0, description="A tool with no LLM cost in its baseline fires once it spends this per run."
    )


class ReasoningRule(SignalRule):
    """4 reasoning runaway: any call at or over `critical` reasoning tokens; outliers over
    `warning` × the route/model's p99 (and over `outlier_floor_tokens`)."""

    window_min: int = 60
    sustain_min: int = 0
    warning: float = 10.0
    critical: float = 100_000
    min_volume: int = 0
    outlier_floor_tokens: int = 10_000
    baseline_days: int = Field(7, ge=1)


class StaleRoutingRule(SignalRule):
    """5 stale routing: escalation rate (step-1 / step-0 calls) per routing policy."""

    window_min: int = 60
    sustain_min: int = 10
    step_min: int = 5
    warning: float = 0.50
    critical: float = 0.70
    min_volume: int | None = Field(  # type: ignore[assignment]
        None, ge=0, description="First-step calls a window needs; unset (default): derived from the test — the "
        "fewest at which a window escalating at the `critical` share is past the warning's Wilson bound "
        "(`confidence`) with probability `power` (34 at the defaults). An hour with fewer is widened (see "
        "`wide_window_min`).")
    power: float = Field(0.5, gt=0, lt=1, description="The derived volume guard's power: the chance a window at "
                         "the critical share shows the warning once it holds that many calls.")
    wide_window_min: int = Field(180, ge=1, description="An hour with fewer than the volume guard's first-step calls "
                                 "is widened five minutes at a time up to this until it holds them (a thin policy is "
                                 "judged later rather than never).")
    confidence: float = Field(0.99, gt=0.5, lt=1, description="One-sided confidence of the Wilson bound a ratio is "
                              "judged by (an hour judged every five minutes is many looks).")
    critical_confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence of the bound the CRITICAL level "
                                       "(≥ 70%) is judged by: far past the healthy 30–50%, it needs no more, and at "
                                       "99% an hour's window on a thin policy reaches it only once full of the new "
                                       "model's calls.")


class SandboxRule(SignalRule):
    """6 sandbox runaway: share of a tool's runs ending in timeout."""

    window_min: int = 15
    sustain_min: int = Field(15, ge=0, description="A whole window: a burst of timeouts shorter than the window "
                             "stays in it for up to 15 minutes, so only a condition lasting a window is sustained.")
    warning: float = 0.05
    critical: float = 0.20
    min_volume: int = 10
    min_timeouts: int = 3
    confidence: float = Field(0.99, gt=0.5, lt=1, description="One-sided confidence of the Wilson bound a ratio is "
                              "judged by (high: a 15-minute window judged every minute is many looks at the same "
                              "few runs).")
    critical_confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence of the bound the CRITICAL level "
                                       "(≥ 20%, many times a tool's normal timeout share) is judged by; at 99% a "
                                       "15-minute window of ~20-40 runs held it only now and then, so it was never "
                                       "sustained.")


class LatencyRule(SignalRule):
    """7 latency tail: end-to-end p99 (CRITICAL at `critical` ms) and TTFT p99 over the route's SLO
    (WARNING), ok calls only."""

    window_min: int = 60
    sustain_min: int = 10
    step_min: int = 5
    warning: float = 1.0  # × the TTFT SLO
    critical: float = 30_000
    min_volume: int = 50
    ttft_slo_chat_ms: int = 1_000
    ttft_slo_other_ms: int = 3_000
    chat_routes: list[str] = Field(default_factory=lambda: ["*chat*"], description="Globs naming chat routes.")
    p99_min_samples: int = Field(100, ge=1, description="A p99 is judged only over at least this many calls "
                                 "(fewer: it is just the slowest call).")
    wide_window_min: int = Field(180, ge=1, description="A window with fewer than `p99_min_samples` calls is "
                                 "widened to this (a quiet route's tail is judged later rather than never).")
    baseline_days: int = Field(7, ge=1, description="Days of the scope's own history its normal is learned from.")
    long_normal_change: float = Field(
        2.0, gt=1, description="p99 must also reach this × the scope's own normal p99 (a scope whose normal p99 is "
                               "already long alerts on change, not on level).")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="One-sided confidence of the exact binomial test on "
                              "the share of calls slower than the p99 threshold (it must clear 1%); a thin hour's two "
                              "looks (its own calls, the widened window) are each made at half the error rate.")
    exceedance_levels_ms: list[int] = Field(
        default_factory=lambda: [int(round(30_000 * 1.15 ** i, -3)) for i in range(25)],
        description="Latencies at which slow calls are counted, ~15% apart from 30 s to ~8 min (the largest at "
                    "or under a scope's threshold is used).")
    mean_moved: float = Field(
        2.0, gt=1, description="A mean this × the scope's normal mean no longer 'looks fine' (said in the alert).")
    ttft_slo_routes: dict[str, int] = Field(
        default_factory=dict, description="Route glob → TTFT p99 SLO (ms); the first matching glob wins.")
    ttft_default: str = Field(
        "baseline", pattern="^(baseline|global)$",
        description="Routes without an SLO: 'baseline' — TTFT p99 over `ttft_baseline_factor` × the route's own "
                    "normal (never under the chat/other SLO); 'global' — the chat/other SLOs.")
    ttft_baseline_factor: float = Field(2.0, gt=1)


class SpendSpikeRule(SignalRule):
    """+ spend spike: cost per user / route / feature over the window vs the scope's seasonal
    baseline and its own variability, and over a floor in $; plus a sustained-shift test over the
    last whole hours."""

    window_min: int = 60
    sustain_min: int = Field(30, ge=0, description="Half the window: a one-off burst (one long conversation, a "
                             "few minutes of retries) is small money and over before it pages.")
    step_min: int = 5
    warning: float = 3.0
    critical: float = 10.0
    min_volume: int = 0
    baseline_days: int = Field(7, ge=1, description="Days of the same clock hour the baseline's median spans (those "
                               "of the same kind: weekdays for a weekday, weekend days for a weekend day).")
    baseline_weeks: int = Field(3, ge=0, description="Weeks of the same hour of week the baseline's median also "
                                "pools (one median of all those values).")
    floor_usd: dict[str, float] = Field(
        default_factory=lambda: {"user_id": 10.0, "route": 10.0, "feature": 10.0},
        description="Spend a window must reach (per dimension) before it can fire. More than one ordinary long "
                    "conversation costs (30 turns of a 9k-token prompt on a frontier model: $5-9), else every "
                    "long conversation of a user who usually spends nothing is a spike.",
    )
    min_history_days: int = Field(
        3, ge=1, description="A user / route / feature younger than this is a new spend source: not judged yet.")
    full_history_days: int = Field(
        7, ge=1, description="Until this age a scope is judged for a critical spike only (no warning, no sustained "
                             "shift): its same-hour baseline does not yet span a week.")
    tail_quantile: float = Field(
        1.0, gt=0.5, le=1, description="The quantile of the scope's own hourly residuals log(cost / baseline) — "
                                       "its normal bursts and shifts — a window must clear (× `tail_margin`) to warn; "
                                       "1: the largest of the last `stats_days`.")
    stats_days: int = Field(14, ge=2, description="Days of a scope's own residuals its variability is learned from.")
    tail_margin: float = Field(1.5, ge=1, description="How far past its own largest excursion a scope must go to "
                               "warn (critical: twice it): that excursion is itself a rough estimate, and new hours "
                               "exceed it by chance.")
    sustained_hours: int = Field(6, ge=2, description="Whole hours the sustained-shift test sums.")
    min_excess_hours: float = Field(
        1.0, ge=0, description="Least extra money (over the baseline) a window must add to fire, in the scope's "
                               "usual hours of spend (its mean hourly spend over `baseline_days`); the sustained "
                               "test needs it for each of its hours. A cheap route's night-time doubling is a "
                               "fraction of one usual hour and never pages; a runaway is many.")
    sustained_z: float = Field(
        4.5, gt=0, description="Robust z-score the sustained test's hours must reach against the scope's own "
                               "six-hour residuals log(cost / baseline) over `stats_days` (their median and "
                               "interquartile range / 1.349). A normal scope passes 4.5 SDs once in ~300,000 "
                               "blocks; hourly spend has heavy tails (news-like bursts, day-long shifts), which "
                               "pass it far more often: on the alert benchmark 4.5 paged no more than the old "
                               "1.5x-the-largest-excursion test on any seed set, 4 one or two more on some.")
    sustained_min: float = Field(2.0, gt=1, description="Least multiple of their baseline those hours must reach "
                                                         "(besides the scope's own variability) to warn.")


class Budget(BaseModel):
    """A monthly budget for a team or a project (or a team within a project). `counts`: what it
    holds — API spend only, or API spend plus the self-hosted infra cost allocated to the team /
    project (GPU-hours × $/GPU-hour of the nodes, split by tokens served; closed hours only)."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = None
    project: str | None = None
    monthly_usd: Decimal = Field(gt=0)
    counts: Literal["api", "api+infra"] = "api"

    @model_validator(mode="after")
    def _names_a_scope(self) -> Budget:
        if not (self.team or self.project):
            raise ValueError("a budget names a team, a project, or both")
        return self


class BudgetRule(SignalRule):
    """+ budget: month-to-date spend against each configured budget; each level once per month."""

    window_min: int = 60
    sustain_min: int = 0
    step_min: int = 5
    min_volume: int = 0
    resolve_quiet_min: int | None = Field(
        0, ge=0, description="No quiet period: month-to-date spend never falls within a period, so a budget "
                             "incident resolves only when its period ends (at once).")
    levels: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])
    forecast_days: int = Field(7, ge=1, description="Days of recent spend the month-end forecast extrapolates.")
    forecast_warning: float | None = Field(
        1.0, gt=0, description="Warn once per period when the month-end forecast reaches this share of the budget "
                               "(beside the spent levels); None: no forecast warning.")


class SignalOverride(BaseModel):
    """Per-scope thresholds: for `signal`, scopes whose values match every glob in `match` use `set`."""

    model_config = ConfigDict(extra="forbid")

    signal: str
    match: dict[str, str] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)


class SignalsSettings(BaseModel):
    """The seven silent-failure signals, spend spikes and budgets (design.md §5)."""

    model_config = ConfigDict(extra="forbid")

    evaluation_lag_s: int = Field(60, ge=0, description="Evaluate this far behind now: late calls still arrive.")
    renotify_after_min: int = Field(60, ge=1, description="Re-notify a standing CRITICAL after this cool-down.")
    renotify_backoff_min: list[int] = Field(
        default_factory=lambda: [60, 240, 720, 1440],
        description="Gaps (minutes) between re-notifications of a standing CRITICAL; the last repeats (daily). "
                    "Stopped by ack. Empty: every `renotify_after_min`.")
    resolve_unobserved_after_min: int = Field(
        120, ge=1, description="Resolve an incident whose scope has not been judged (too little volume) this long."
    )
    cache_hit_collapse: CacheHitRule = Field(default_factory=CacheHitRule)
    cache_not_applied: CacheNotAppliedRule = Field(default_factory=CacheNotAppliedRule)
    prompt_accumulation: PromptAccumulationRule = Field(default_factory=PromptAccumulationRule)
    llm_calls_in_tools: ToolLlmCostRule = Field(default_factory=ToolLlmCostRule)
    reasoning_runaway: ReasoningRule = Field(default_factory=ReasoningRule)
    stale_routing: StaleRoutingRule = Field(default_factory=StaleRoutingRule)
    sandbox_runaway: SandboxRule = Field(default_factory=SandboxRule)
    latency_tail: LatencyRule = Field(default_factory=LatencyRule)
    spend_spike: SpendSpikeRule = Field(default_factory=SpendSpikeRule)
    budget: BudgetRule = Field(default_factory=BudgetRule)
    budgets: list[Budget] = Field(default_factory=list)
    overrides: list[SignalOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _overrides_name_known_fields(self) -> SignalsSettings:
        for override in self.overrides:
            rule = getattr(self, override.signal, None)
            if not isinstance(rule, SignalRule):
                raise ValueError(f"override names unknown signal {override.signal!r}")
            unknown = set(override.set) - set(type(rule).model_fields)
            if unknown:
                raise ValueError(f"override for {override.signal} sets unknown field(s) {sorted(unknown)}")
        return self

    def rule(self, signal: str, scope: dict[str, str] | None = None) -> SignalRule:
        """The parameters of `signal` for one scope: the defaults with every matching override applied."""
        base: SignalRule = getattr(self, signal)
        updates: dict[str, Any] = {}
        for override in self.overrides:
            if override.signal == signal and scope is not None and all(
                fnmatchcase(scope.get(key, ""), pattern) for key, pattern in override.match.items()
            ):
                updates.update(override.set)
        return base.model_validate({**base.model_dump(), **updates}) if updates else base


class SlackRoute(BaseModel):
    """Send alerts matching every given field to `channel` (first matching route wins)."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    team: str | None = None
    severity: str | None = None
    signal: str | None = None


class SlackSettings(BaseModel):
    """Slack delivery. The bot token and webhook URL are secrets: read only from the environment
    variables named here, never from the file."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field("#llm-alerts", description="Default channel (bot token mode).")
    routes: list[SlackRoute] = Field(default_factory=list)
    token_env: str = "SLACK_BOT_TOKEN"
    webhook_env: str = "SLACK_WEBHOOK_URL"
    base_url: str = Field("https://slack.com/api/", description="Web API base (a proxy or a test server).")
    timeout_s: float = Field(10.0, gt=0)
    rate_limit_retries: int = Field(0, ge=0, description="429s retried inside one send (Retry-After honoured); "
                                    "0: a 429 ends the delivery pass until Retry-After has passed.")
    max_backoff_s: int = Field(3_600, ge=1, description="Longest wait between delivery attempts of a notification.")
    dashboard_url: str | None = Field(None, description="Dashboard base URL for the chart link in each alert.")


_ADDRESS = r"^[^@\s<>,;]+@[^@\s<>,;]+$"


def _addresses(values: list[str]) -> list[str]:
    bad = [v for v in values if not re.match(_ADDRESS, v)]
    if bad:
        raise ValueError(f"not an e-mail address: {', '.join(map(repr, bad))}")
    return values


class ReportSettings(BaseModel):
    """The weekly cost report by e-mail: who gets it and what it calls an opportunity. Its slot in
    the scheduler runs at `scheduler.weekly_report_cron`; budgets are `signals.budgets` (team
    budgets without a project) and TTFT SLOs `signals.latency_tail`'s, as the alerts use them."""

    recipients: dict[str, list[str]] = Field(default_factory=dict, description="Team → addresses; each "
                                             "team gets its own report.")
    company: list[str] = Field(default_factory=list, description="Addresses of the company-wide report.")
    dashboard_url: str | None = Field(default=None, description="Base URL of the dashboards; each report "
                                      "links to `<url>/?start=…&end=…&team=…`.")
    projects: list[str] | None = Field(default=None, description="Report on these projects only (default all).")
    top_n: int = Field(default=5, ge=1, le=50, description="Rows per top list and movers list.")
    business_hours_utc: tuple[int, int] = Field(default=(8, 18), description="[from, to) hour, Monday to "
                                                "Friday; calls outside it are off-hours.")
    service_users: list[str] = Field(default_factory=lambda: ["svc-*", "service-*", "bot-*"],
                                     description="Globs naming service (non-human) users.")
    min_cacheable_tokens: int = Field(default=1_024, ge=1, description="Input tokens from which a repeated "
                                      "prefix counts as cacheable.")
    max_escalation_rate: float = Field(default=0.15, gt=0, lt=1, description="Cascades escalating at most "
                                       "this share of calls are reported as served by their cheap step.")
    min_saving_usd_month: Decimal = Field(default=Decimal("1"), ge=0, description="Smaller opportunities "
                                          "are left out.")
    browser_path: Path | None = Field(default=None, description="Chromium that renders the chart images "
                                      "(default: $BROWSER_PATH, else `chromium` on PATH).")

    @field_validator("company")
    @classmethod
    def _company_addresses(cls, value: list[str]) -> list[str]:
        return _addresses(value)

    @field_validator("recipients")
    @classmethod
    def _team_addresses(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for addresses in value.values():
            _addresses(addresses)
        return value

    @field_validator("business_hours_utc")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] < value[1] <= 24:
            raise ValueError("business_hours_utc must be [from, to) with 0 <= from < to <= 24")
        return value


class SmtpSettings(BaseModel):
    """The mail server the weekly report goes through. The password is a secret: it is read only
    from the environment variable named by `password_env`, never from the file."""

    host: str = Field(default="localhost")
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(default="starttls", description="STARTTLS on a "
                                                          "plain connection, implicit TLS (SMTPS), or none.")
    username: str | None = Field(default=None, description="Log in as this user (then the password is required).")
    password_env: str = Field(default="LLMLEDGER_SMTP_PASSWORD", description="Environment variable holding "
                              "the password.")
    sender: str = Field(default="llmledger@localhost", pattern=_ADDRESS, description="From address.")
    timeout_s: float = Field(default=30.0, gt=0)
    ca_file: Path | None = Field(default=None, description="CA bundle to verify the server (default: system).")
    attempts: int = Field(default=3, ge=1, le=10, description="Tries per message and run while the server is "
                          "unreachable or answers 4xx; a report still unsent is tried again on the next run.")
    backoff_s: float = Field(default=2.0, ge=0, description="First wait between tries (doubles, jittered).")

    def password(self) -> str | None:
        """The password from the environment; fails fast, naming the variable, when a username is
        configured and the variable is empty."""
        if self.username is None:
            return None
        value = os.environ.get(self.password_env, "")
        if not value:
            raise ValueError(f"smtp.username is set but {self.password_env} is empty: put the SMTP password there")
        return value


class AlertingSettings(Protocol):
    """What evaluation, delivery and incident commands read of the settings: `[signals]` and `[slack]`."""

    @property
    def signals(self) -> SignalsSettings: ...

    @property
    def slack(self) -> SlackSettings: ...


class ReportingSettings(Protocol):
    """What the weekly report reads of the settings: its own `[report]` and `[smtp]` sections, the
    budgets and TTFT SLOs of `[signals]`, and the batch discount of `[pricing]`."""

    @property
    def signals(self) -> SignalsSettings: ...

    @property
    def report(self) -> ReportSettings: ...

    @property
    def smtp(self) -> SmtpSettings: ...

    @property
    def pricing(self) -> PricingSettings: ...
