"""Signals 1 and 1b: prompt-cache hit collapse and caching that silently stopped, per route/model.

Both come from one query of minute buckets. The probable cause is whatever attribute of the calls
(prompt version, prefix hash, SDK) changed just before the measure moved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from alerts.rules.base import (
    UNKNOWN,
    Explanation,
    Family,
    Rule,
    RuleContext,
    first_value,
    onset_of,
    scope_thresholds,
    sustain,
    window_sums,
)
from alerts.rules.stats import wilson_lower, wilson_upper
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "route", "model"]
BUCKET = timedelta(minutes=1)
LOOKBACK = timedelta(hours=1)


def describe_shift(ctx: RuleContext, filters: dict[str, list[str]], attributes: list[str], *, at: datetime,
                   changed_by: datetime, first_step_only: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Phrases like 'prompt_version changed v7 → v8 at 10:00 UTC' for each attribute whose dominant
    value after `changed_by` differs from the hour before it (or first appeared in that hour)."""
    lo = changed_by - LOOKBACK
    phrases: list[str] = []
    detail: dict[str, Any] = {}
    for attribute in attributes:
        shift = causes.attribute_shift(ctx.wh, ctx.scope, filters, attribute, lo=lo, split=changed_by, hi=at,
                                       first_step_only=first_step_only)
        after = shift.filter(pl.col("period") == "after")
        before = shift.filter(pl.col("period") == "before")
        if after.is_empty():
            continue
        new = after["value"][0]
        old = before["value"][0] if not before.is_empty() else None
        seen = shift.filter(pl.col("value") == new)["first_seen"].min()
        if new != old and new:
            when = f" at {seen:%H:%M} UTC" if isinstance(seen, datetime) and seen > lo else ""
            phrases.append(f"{attribute} changed {old or '(none)'} → {new}{when}")
            detail[attribute] = {"before": old, "after": new, "first_seen": str(seen)}
    return phrases, detail


class CacheHitCollapse(Rule):
    """1 cache hit collapse: cache_read / (cache_read + cache_write) tokens over a sliding window per
    route/model, among calls with cache tokens; WARNING < 0.50, CRITICAL < 0.30, held for the
    sustain period; judged only on windows with `min_volume` calls that touched the cache.
    Method: the Wilson upper bound (one-sided, `confidence`) of the ratio, with the calls that
    touched the cache as the sample size (tokens of one call are not independent), must be under
    the threshold — a few unlucky calls in a small window cannot page."""

    method = "Wilson upper bound (calls as n) < threshold"

    name = "cache_hit_collapse"
    title = "Cache hit collapse"
    scope_keys = ("project", "route", "model")
    unit = "ratio"
    next_step = ("Separate the fixed prefix from the dynamic suffix: roll back the prompt change that broke "
                 "the prefix, then check the hit ratio is back above 0.50 five minutes later; if not, look "
                 "for timestamps, request ids or user names inside the cached prefix.")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        changed_by = onset_of(row, timedelta(minutes=settings.window_min),
                              at - timedelta(minutes=settings.window_min + settings.sustain_min))
        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()},
                                         ["prompt_version", "prompt_prefix_hash", "sdk"], at=at, changed_by=changed_by)
        cause = ("; ".join(phrases) + " just before the drop") if phrases else (
            "no prompt version or prefix change around the onset: a dynamic value may have entered the prefix")
        return Explanation(cause, self.next_step, detail)


class CacheNotApplied(Rule):
    """1b cache not applied: share of calls long enough to cache (Anthropic Haiku ≥ 2048, Sonnet /
    Opus ≥ 1024, OpenAI ≥ 1024 input tokens) that neither read nor wrote the cache, per route/model
    over a sliding window; WARNING > 10%, CRITICAL > 50%. Invisible to signal 1 (its denominator is 0).
    Method: the Wilson lower bound (one-sided, `confidence`) of the share must exceed the threshold,
    so random misses in small windows (OpenAI's automatic cache misses a few percent of calls) do not
    page. Texts are provider-aware: automatic-cache providers (`automatic_providers`, OpenAI) have no
    cache_control breakpoint to restore."""

    method = "Wilson lower bound > threshold"
    automatic_next_step = ("OpenAI caches automatically (prompts of ≥ 1024 tokens whose beginning is identical): "
                           "put static content first and dynamic values (timestamps, ids, user data) last, keep "
                           "tools and images in a fixed order, and pass prompt_cache_key so calls sharing a prefix "
                           "reach the same cache; there is no cache_control breakpoint to set.")

    name = "cache_not_applied"
    title = "Cache not applied"
    scope_keys = ("project", "route", "model")
    unit = "share"
    next_step = ("Restore the cache_control breakpoint (or the SDK / prompt change that dropped it) and check "
                 "that the prefix is at least the model's minimum cacheable length.")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        changed_by = onset_of(row, timedelta(minutes=settings.window_min),
                              at - timedelta(minutes=settings.window_min + settings.sustain_min))
        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()},
                                         ["sdk", "prompt_version", "model_raw"], at=at, changed_by=changed_by)
        automatic = str(row.get("provider") or "") in settings.automatic_providers
        if phrases:
            cause = "; ".join(phrases) + ": caching stopped with it"
        elif automatic:
            cause = ("no SDK or prompt change around the onset: the prompt's first 1024 tokens probably vary "
                     "between calls (a dynamic value early in the prompt) or the input fell under 1024 tokens")
        else:
            cause = ("no SDK or prompt change around the onset: the cache_control breakpoint may be missing or the "
                     "prefix under the minimum cacheable length")
        return Explanation(cause, self.automatic_next_step if automatic else self.next_step,
                           {**detail, "provider": row.get("provider"), "lower_bound": row.get("lower_bound")})


class CacheFamily(Family):
    """Signals 1 and 1b from one scan of minute buckets."""

    name = "cache"
    rules = (CacheHitCollapse(), CacheNotApplied())

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        hit_rule, na_rule = self.rules
        hit, na = hit_rule.settings(ctx), na_rule.settings(ctx)
        step, longest, span = self.reach(ctx, instants, [hit, na])
        buckets = q.cache_buckets(ctx.wh, ctx.scope, span[0] - longest, span[-1], min_tokens=na.min_tokens)
        teams = first_value(buckets, KEYS, "team").join(first_value(buckets, KEYS, "provider"), on=KEYS, how="full",
                                                   coalesce=True)
        out: dict[str, pl.DataFrame] = {}

        if hit.enabled:
            sums = window_sums(buckets, KEYS, ["read_tokens", "write_tokens", "cached_calls"], bucket=BUCKET,
                               window=timedelta(minutes=hit.window_min), at=span)
            judged = scope_thresholds(ctx, hit_rule, sums, KEYS, ["warning", "critical", "min_volume", "enabled"])
            ratio = pl.col("read_tokens") / (pl.col("read_tokens") + pl.col("write_tokens"))
            judged = judged.with_columns(ratio.alias("value"), pl.col("cached_calls").alias("volume")).with_columns(
                wilson_upper(pl.col("value") * pl.col("volume"), pl.col("volume"), hit.confidence).alias("upper_bound"))
            judged = judged.with_columns(
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume")) | pl.col("value").is_nan())
                .then(UNKNOWN).when(pl.col("upper_bound") < pl.col("critical")).then(2)
                .when(pl.col("upper_bound") < pl.col("warning")).then(1).otherwise(0).alias("point_level"),
                pl.when(pl.col("value") < pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
                .alias("threshold"),
            )
            out[hit_rule.name] = sustain(judged, KEYS, instants=instants, step=step,
                                         sustain_for=timedelta(minutes=hit.sustain_min)).join(teams, on=KEYS,
                                                                                               how="left")
        if na.enabled:
            sums = window_sums(buckets, KEYS, ["eligible_calls", "uncached_calls"], bucket=BUCKET,
                               window=timedelta(minutes=na.window_min), at=span)
            judged = scope_thresholds(ctx, na_rule, sums, KEYS, ["warning", "critical", "min_volume", "enabled"])
            judged = judged.with_columns(
                (pl.col("uncached_calls") / pl.col("eligible_calls")).alias("value"),
                pl.col("eligible_calls").alias("volume"),
                wilson_lower(pl.col("uncached_calls"), pl.col("eligible_calls"), na.confidence).alias("lower_bound"),
            ).with_columns(
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume")) | pl.col("value").is_nan())
                .then(UNKNOWN).when(pl.col("lower_bound") > pl.col("critical")).then(2)
                .when(pl.col("lower_bound") > pl.col("warning")).then(1).otherwise(0).alias("point_level"),
                pl.when(pl.col("value") > pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
                .alias("threshold"),
            )
            out[na_rule.name] = sustain(judged, KEYS, instants=instants, step=step,
                                        sustain_for=timedelta(minutes=na.sustain_min)).join(teams, on=KEYS,
                                                                                            how="left")
        return out
