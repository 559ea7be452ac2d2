"""The signals and the alert outbox on demand: the signals as configured (thresholds in their units,
windows and the real evaluation cadence), one evaluation pass, one delivery pass, re-queueing
failed notifications."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from llmledger.instants import Instant
from llmledger.operations import OPERATOR, READ, OpContext, operation


class NoParams(BaseModel):
    model_config = {"extra": "forbid"}


# what a window of each signal counts, for its minimum volume
VOLUME_UNIT = {"cache_hit_collapse": "calls with cache tokens", "cache_not_applied": "eligible calls",
               "prompt_accumulation": "ok calls", "llm_calls_in_tools": "runs", "stale_routing": "step-0 calls",
               "sandbox_runaway": "runs", "latency_tail": "ok calls"}


def _thresholds(name: str, rule: Any, unit: str) -> tuple[str, str]:
    """(warning, critical) as a person reads them, in the signal's unit."""
    from alerts.rules.base import format_value

    w, c = rule.warning, rule.critical
    if name == "cache_hit_collapse":
        return f"hit ratio < {format_value(w, unit)}", f"< {format_value(c, unit)}"
    if name == "prompt_accumulation":
        return f"input/call ≥ {format_value(w, unit)} baseline", f"and input/hour ≥ {format_value(c, unit)}"
    if name == "reasoning_runaway":
        return (f"> {format_value(w, 'x')} the p99 (≥ {rule.outlier_floor_tokens:,} tokens)",
                f"any call ≥ {format_value(c, unit)}")
    if name == "latency_tail":
        slo = f"chat {rule.ttft_slo_chat_ms / 1000:g} s, other {rule.ttft_slo_other_ms / 1000:g} s"
        normal = f" or {rule.ttft_baseline_factor:g}x its normal" if rule.ttft_default == "baseline" else ""
        return f"TTFT p99 > {w:g}x SLO ({slo}){normal}", f"p99 ≥ {format_value(c, unit)}"
    if name == "spend_spike":
        return f"≥ {format_value(w, unit)} same hours", f"≥ {format_value(c, unit)}"
    if name == "budget":
        levels = sorted(rule.levels)
        warn = [f"{level:.0%}" for level in levels if level < 1] or ["—"]
        crit = [f"{level:.0%}" for level in levels if level >= 1] or ["—"]
        return f"{', '.join(warn)} of budget", f"{', '.join(crit)} of budget"
    if name == "sandbox_runaway":
        return f"timeouts ≥ {format_value(w, unit)} (≥ {rule.min_timeouts})", f"≥ {format_value(c, unit)}"
    if name == "llm_calls_in_tools":
        return f"LLM $/run ≥ {format_value(w, unit)} baseline", f"≥ {format_value(c, unit)}"
    return f"> {format_value(w, unit)}", f"≥ {format_value(c, unit)}" if name == "stale_routing" else \
        f"> {format_value(c, unit)}"


@operation("signals.list", "GET", "/v1/signals", NoParams, scope=READ, store=False)
def list_signals(ctx: OpContext, p: NoParams) -> list[dict[str, Any]]:
    """The signals as configured: thresholds in their units, window, sustain, minimum volume, how
    often each is evaluated, the statistic judged and whether it is on."""
    from alerts.rules import FAMILIES

    signals = ctx.settings.signals
    scheduler = ctx.settings.scheduler
    cadence_min = math.ceil(scheduler.signals_interval_s / 60) if scheduler.enabled else None
    out = []
    for family in FAMILIES:
        step = int(family.step(signals).total_seconds() // 60)
        for rule in family.rules:
            s = getattr(signals, rule.name)
            warning, critical = _thresholds(rule.name, s, rule.unit)
            unit = VOLUME_UNIT.get(rule.name)
            out.append({
                "signal": rule.name, "title": rule.title, "warning": warning, "critical": critical,
                "window_min": s.window_min, "sustain_min": s.sustain_min,
                "min_volume": f"{volume:,} {unit}" if unit and (volume := rule.volume_guard(s)) else "—",
                "every_min": max(step, cadence_min or step), "scheduled": scheduler.enabled,
                "method": rule.method, "enabled": s.enabled,
            })
    return out


class EvaluateParams(BaseModel):
    model_config = {"extra": "forbid"}
    at: Instant | None = Field(default=None, description="Evaluate up to here (default: now minus the lag).")
    since: Instant | None = Field(default=None, description="Back-fill every instant from here.")


@operation("signals.evaluate", "POST", "/v1/signals/evaluate", EvaluateParams, scope=OPERATOR, long=True)
def evaluate(ctx: OpContext, p: EvaluateParams) -> dict[str, Any]:
    """Evaluate every signal once (what the scheduler does each minute); the transitions it made."""
    from alerts.evaluate import evaluate_signals

    advance = ctx.feed.task("evaluate the signals", 1)
    report = evaluate_signals(ctx.wh, ctx.settings, at=p.at, since=p.since)
    advance(1)
    return {"events": [{"at": e.at, "kind": e.kind.value, "signal": e.incident.signal,
                        "scope_key": e.incident.scope_key, "state": e.incident.state.value,
                        "summary": e.incident.summary} for e in report.events],
            "notifications": report.notifications, "seconds": {k: round(v, 3) for k, v in report.seconds.items()}}


@operation("alerts.deliver", "POST", "/v1/alerts/deliver", NoParams, scope=OPERATOR)
def deliver(ctx: OpContext, p: NoParams) -> dict[str, Any]:
    """Deliver due notifications now (Slack when configured, else the log)."""
    from alerts.outbox import deliver_pending

    report = deliver_pending(ctx.wh, ctx.settings, now=datetime.now(UTC))
    return {"sent": report.sent, "logged": report.logged, "retried": report.retried, "failed": report.failed,
            "waiting": report.waiting, "stopped": report.stopped, "errors": report.errors[:5]}


@operation("alerts.retry", "POST", "/v1/alerts/retry", NoParams, scope=OPERATOR)
def retry(ctx: OpContext, p: NoParams) -> dict[str, int]:
    """Re-queue notifications that failed permanently (after fixing the token or channel)."""
    from alerts.outbox import requeue_failed

    return {"requeued": requeue_failed(ctx.wh)}
