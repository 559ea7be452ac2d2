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
    TIME,
    first_value,
    onset_of,
    scope_thresholds,
    sustain,
    time_series,
    widened_sums,
)
from alerts.rules.stats import wilson_lower, wilson_upper
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "route", "model"]
BUCKET = timedelta(minutes=1)
LOOKBACK = timedelta(hours=3)  # how far before the onset a change is looked for
NEW_SHARE = 0.25  # a value new in the lookback is a change once it makes up this share of the calls since
BY_CHANCE = 0.01  # ... and a value of its share would miss the calls before its first one less often than this


def describe_shift(ctx: RuleContext, filters: dict[str, list[str]], attributes: list[str], *, at: datetime,
                   changed_by: datetime, first_step_only: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Phrases like 'prompt_version changed v7 → v8 at 10:00 UTC' for each attribute that changed
    around `changed_by`: either its dominant value after `changed_by` differs from the one before,
    or a value that first appeared within the `LOOKBACK` before `changed_by` (a rollout that began
    before the condition was first judged — a thin route, a lull, a long window) makes up at least
    `NEW_SHARE` of the calls since, after so many calls of other values that a value of its share
    would have missed them by chance less than `BY_CHANCE` of the time ((1 − share)^calls) — then the
    change is dated from its first call and the old value is the one it displaced (values that
    merely alternate appear within a few calls and are no change)."""
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
        seen_at = shift.group_by("value").agg(pl.col("first_seen").min())
        new = after["value"][0]
        old = before["value"][0] if not before.is_empty() else None
        recent = after.join(seen_at, on="value", suffix="_all").filter(
            (pl.col("first_seen_all") > lo) & (pl.col("value") != "") & (pl.col("value") != (old or ""))
            & (pl.col("calls") >= NEW_SHARE * after["calls"].sum()))
        if new == old and not recent.is_empty():  # a rollout already dominant before `changed_by`?
            candidate = recent.sort("calls", descending=True).row(0, named=True)
            # only if the calls before its first one (all of other values) are too many for a value of
            # its share to be missing by chance
            prior = causes.attribute_shift(ctx.wh, ctx.scope, filters, attribute, lo=lo,
                                           split=candidate["first_seen_all"], hi=at, first_step_only=first_step_only)
            displaced = prior.filter(pl.col("period") == "before")
            share = candidate["calls"] / after["calls"].sum()
            if not displaced.is_empty() and (1 - share) ** displaced["calls"].sum() <= BY_CHANCE:
                new, old = candidate["value"], displaced["value"][0]
        seen = seen_at.filter(pl.col("value") == new)["first_seen"].min()
        if new != old and new:
            when = f" at {seen:%H:%M} UTC" if isinstance(seen, datetime) and seen > lo else ""
            phrases.append(f"{attribute} changed {old or '(none)'} → {new}{when}")
            detail[attribute] = {"before": old, "after": new, "first_seen": str(seen)}
    return phrases, detail


EXPLICIT_GEMINI = ("google", "gemini", "vertex_ai")  # context caching: a cachedContent the request names


def cache_kind(provider: str, automatic: list[str]) -> str:
    """How a provider caches: 'automatic' (OpenAI: the longest identical prefix, nothing to mark),
    'gemini' (explicit context caches the request references) or 'anthropic' (cache_control
    breakpoints)."""
    if provider in automatic:
        return "automatic"
    return "gemini" if provider in EXPLICIT_GEMINI else "anthropic"


class CacheHitCollapse(Rule):
    """1 cache hit collapse, per route/model over a sliding window, held for the sustain period,
    with the product's one hit ratio (`warehouse.queries.cache_ratio`, as the caching page and
    reports show it): providers reporting cache writes (Anthropic, Bedrock) cache_read /
    (cache_read + cache_write) tokens; automatic caching and providers reporting no writes (OpenAI,
    Gemini — whose read/(read+write) is 1 by construction) cached / input tokens of cache-eligible
    calls. WARNING < 0.50, CRITICAL < 0.30; a scope whose own
    normal (previous `baseline_days`, rollups) is under `healthy_ratio` is judged on change: the
    thresholds scale with its normal; a scope with no cached history (new, or never cached) is not
    judged — it did not stop caching. Method: the Wilson upper bound (one-sided, `confidence`) of
    the ratio, with the calls that have a base as the sample size (tokens of one call are not independent), must be
    under the threshold, over ≥ `min_volume` calls (a thinner window is widened to
    `wide_window_min`) — a few unlucky calls in a small window cannot page."""

    method = ("Wilson upper bound (calls as n) < threshold on the product's hit ratio (read/(read+write); automatic "
              "caches: cached/input of eligible calls); vs own normal")
    group_keys = ("project", "provider")
    worse = "lower"

    name = "cache_hit_collapse"
    title = "Cache hit collapse"
    scope_keys = ("project", "route", "model")
    unit = "ratio"
    next_step = ("Separate the fixed prefix from the dynamic suffix: roll back the prompt change that broke "
                 "the prefix, then check the hit ratio is back above 0.50 five minutes later; if not, look "
                 "for timestamps, request ids or user names inside the cached prefix.")
    next_steps = {
        "anthropic": next_step,
        "gemini": ("The cached content no longer matches what requests send: roll back the prompt change, re-create "
                   "the context cache from the fixed part only (system instruction, documents) and keep dynamic "
                   "values in the request after it; check the cache's TTL outlives the gaps between calls."),
        "automatic": ("OpenAI reuses the longest identical prompt prefix (from 1024 tokens): roll back the change that "
                      "put a dynamic value (timestamp, id, user data) early in the prompt, keep static content first "
                      "and tools in a fixed order, and pass prompt_cache_key so calls sharing a prefix reach the "
                      "same cache."),
    }

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        window = int(row.get("window_min") or settings.window_min)  # a thin scope's widened window
        changed_by = onset_of(row, timedelta(minutes=window), at - timedelta(minutes=window + settings.sustain_min))
        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()},
                                         ["prompt_version", "prompt_prefix_hash", "sdk"], at=at, changed_by=changed_by)
        kind = cache_kind(str(row.get("provider") or ""), ctx.signals.cache_not_applied.automatic_providers)
        cause = ("; ".join(phrases) + " just before the drop") if phrases else (
            "no prompt version or prefix change around the onset: a dynamic value may have entered the prefix")
        return Explanation(cause, self.next_steps[kind], {**detail, "provider": row.get("provider"),
                                                          "normal_ratio": row.get("normal")})


class CacheNotApplied(Rule):
    """1b cache not applied: share of calls long enough to cache (Anthropic Haiku ≥ 2048, Sonnet /
    Opus ≥ 1024, OpenAI ≥ 1024 input tokens; Gemini when configured) that neither read nor wrote
    the cache, per route/model
    over a sliding window; WARNING > 10%, CRITICAL > 50% — each at least twice the scope's own normal
    share (the previous `baseline_days`, rollups), so a route that never caches some calls is
    judged on change; a scope without ≥ 100 cache-eligible calls of history is not judged yet. A
    window with fewer than `min_volume` eligible calls is widened to `wide_window_min`, and on
    explicit-cache providers further, five minutes at a time up to `max_window_min`, until it holds
    them (a thin route is judged later rather than never); an automatic cache expires between calls
    that far apart, so an automatic provider's window stops at `wide_window_min`.
    Invisible to signal 1 (its denominator is 0). Method: the Wilson lower bound
    (one-sided, `confidence`) of the share must exceed the threshold, so random misses in small
    windows (OpenAI's automatic cache misses a few percent of calls) do not page; the critical's
    bound is at `critical_confidence` (half the calls is far past any random miss rate, and the
    warning's 99.9% would see a rollout only near its end). Texts are
    provider-aware: Anthropic restores its cache_control breakpoint, Gemini its context cache,
    automatic-cache providers (`automatic_providers`, OpenAI) have nothing to mark."""

    method = ("Wilson lower bound > threshold (99.9% for the warning, 95% for the critical; vs own normal share) over "
              "≥ 10 eligible calls (a thin window widened until it holds them: 15 min, explicit caches up to 1 h)")
    group_keys = ("project", "provider")
    automatic_next_step = ("OpenAI caches automatically (prompts of ≥ 1024 tokens whose beginning is identical): "
                           "put static content first and dynamic values (timestamps, ids, user data) last, keep "
                           "tools and images in a fixed order, and pass prompt_cache_key so calls sharing a prefix "
                           "reach the same cache; there is no cache_control breakpoint to set.")
    gemini_next_step = ("Requests stopped naming the context cache (cached_content) or it expired: re-create it with a "
                        "TTL longer than the gaps between calls and pass its name on every request (the SDK or "
                        "prompt change that dropped it is the place to look).")

    name = "cache_not_applied"
    title = "Cache not applied"
    scope_keys = ("project", "route", "model")
    unit = "share"
    next_step = ("Restore the cache_control breakpoint (or the SDK / prompt change that dropped it) and check "
                 "that the prefix is at least the model's minimum cacheable length.")

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        window = int(row.get("window_min") or settings.window_min)  # a thin scope's widened window
        changed_by = onset_of(row, timedelta(minutes=window), at - timedelta(minutes=window + settings.sustain_min))
        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()},
                                         ["sdk", "prompt_version", "model_raw"], at=at, changed_by=changed_by)
        kind = cache_kind(str(row.get("provider") or ""), settings.automatic_providers)
        if phrases:
            cause = "; ".join(phrases) + ": caching stopped with it"
        elif kind == "automatic":
            cause = ("no SDK or prompt change around the onset: the prompt's first 1024 tokens probably vary "
                     "between calls (a dynamic value early in the prompt) or the input fell under 1024 tokens")
        elif kind == "gemini":
            cause = ("no SDK or prompt change around the onset: the context cache may have expired (its TTL) or "
                     "requests no longer name it")
        else:
            cause = ("no SDK or prompt change around the onset: the cache_control breakpoint may be missing or the "
                     "prefix under the minimum cacheable length")
        step = {"automatic": self.automatic_next_step, "gemini": self.gemini_next_step}.get(kind, self.next_step)
        return Explanation(cause, step, {**detail, "provider": row.get("provider"), "lower_bound": row.get("lower_bound"),
                                         "normal_share": row.get("normal")})


def adaptive_windows(settings: Any) -> list[timedelta]:
    """The windows a cache rule may judge a scope over, narrowest first: its `window_min`, its
    `wide_window_min`, then 5-minute steps up to `max_window_min` where the rule has one."""
    wide = max(settings.wide_window_min, settings.window_min)
    widest = max(getattr(settings, "max_window_min", wide), wide)
    return [timedelta(minutes=m) for m in sorted({settings.window_min, *range(wide, widest + 1, 5), widest})]


def adaptive_sums(buckets: pl.DataFrame, columns: list[str], settings: Any, span: list[datetime], *,
                  volume: str, teams: pl.DataFrame, automatic: list[str] = ()) -> pl.DataFrame:
    """Window sums of `columns` over the rule's window, or — where that window holds fewer than
    `min_volume` calls (`volume`) — over the narrowest of its wider windows (`adaptive_windows`)
    that does: a quiet route is judged on enough calls, later, rather than never. An automatic cache
    (`automatic` providers) expires after minutes without calls, so calls that far apart miss it by
    design: such a scope is widened to `wide_window_min` at most. `window_min` says which window
    each row used."""
    wide = max(settings.wide_window_min, settings.window_min)
    return widened_sums(buckets, KEYS, columns, volume=volume, need=pl.lit(settings.min_volume), bucket=BUCKET,
                        windows=adaptive_windows(settings), at=span,
                        widest=pl.when(pl.col("provider").is_in(list(automatic))).then(pl.lit(wide))
                        .otherwise(pl.lit(10**9)),
                        per_scope=teams.select([*KEYS, "provider"]))


def _min_tokens(provider: str, model: str, rules: dict[str, int]) -> int:
    """The shortest cacheable input of a model: the longest matching `provider/model` prefix."""
    name = f"{provider}/{model}"
    best = max((p for p in rules if name.startswith(p)), key=len, default=None)
    return rules[best] if best is not None else 1024


class CacheFamily(Family):
    """Signals 1 and 1b from one scan of minute buckets and the rollups' normal per scope."""

    name = "cache"
    rules = (CacheHitCollapse(), CacheNotApplied())

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        hit_rule, na_rule = self.rules
        hit, na = hit_rule.settings(ctx), na_rule.settings(ctx)
        step, longest, span = self.reach(ctx, instants, [hit, na])
        longest = max(longest, *adaptive_windows(hit), *adaptive_windows(na))
        buckets = q.cache_buckets(ctx.wh, ctx.scope, span[0] - longest, span[-1], min_tokens=na.min_tokens)
        teams = first_value(buckets, KEYS, "team").join(first_value(buckets, KEYS, "provider"), on=KEYS, how="full",
                                                   coalesce=True)
        normal = self._normal(ctx, buckets, span, max(hit.baseline_days, na.baseline_days), na)
        out: dict[str, pl.DataFrame] = {}

        if hit.enabled:
            sums = adaptive_sums(buckets, ["hit_tokens", "base_tokens", "ratio_calls"], hit, span,
                                 volume="ratio_calls", teams=teams)
            judged = scope_thresholds(ctx, hit_rule, sums, KEYS, ["warning", "critical", "min_volume", "enabled",
                                                                 "healthy_ratio"])
            judged = judged.join(teams.select([*KEYS, "provider"]), on=KEYS, how="left").with_columns(
                pl.col("at").dt.truncate("1d").alias("day")).join(normal, on=[*KEYS, "day"], how="left")
            # the product's one hit ratio (`warehouse.queries.cache_ratio`): read / (read + write) where the
            # provider reports writes, cached / input of eligible calls for automatic caching
            ratio = pl.col("hit_tokens") / pl.col("base_tokens")
            # a scope whose normal is under `healthy_ratio` is judged on change (thresholds scale with it)
            scale = pl.min_horizontal(pl.lit(1.0), pl.col("normal_ratio") / pl.col("healthy_ratio")).fill_null(1.0)
            judged = judged.with_columns(
                ratio.alias("value"),
                pl.col("ratio_calls").alias("volume"),
                pl.col("normal_ratio").alias("normal"),
                (pl.col("warning") * scale).alias("warning"), (pl.col("critical") * scale).alias("critical"),
            ).with_columns(
                wilson_upper(pl.col("value") * pl.col("volume"), pl.col("volume"), hit.confidence).alias("upper_bound"))
            judged = judged.with_columns(
                # a scope with no cached history (new, or never cached) has not stopped caching: not judged
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume")) | pl.col("value").is_nan()
                        | pl.col("value").is_null() | pl.col("normal").is_null() | (pl.col("normal") <= 0))
                .then(UNKNOWN).when(pl.col("upper_bound") < pl.col("critical")).then(2)
                .when(pl.col("upper_bound") < pl.col("warning")).then(1).otherwise(0).alias("point_level"),
                pl.when(pl.col("value") < pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
                .alias("threshold"),
            ).drop("day", "provider", "normal_ratio", "normal_share", "healthy_ratio")
            out[hit_rule.name] = sustain(judged, KEYS, instants=instants, step=step,
                                         sustain_for=timedelta(minutes=hit.sustain_min)).join(teams, on=KEYS,
                                                                                               how="left")
        if na.enabled:
            sums = adaptive_sums(buckets, ["eligible_calls", "uncached_calls"], na, span,
                                 volume="eligible_calls", teams=teams, automatic=na.automatic_providers)
            judged = scope_thresholds(ctx, na_rule, sums, KEYS, ["warning", "critical", "min_volume", "enabled"])
            judged = judged.with_columns(pl.col("at").dt.truncate("1d").alias("day")).join(
                normal.select([*KEYS, "day", "normal_share"]), on=[*KEYS, "day"], how="left")
            share0 = pl.col("normal_share").fill_null(0.0)
            judged = judged.with_columns(
                (pl.col("uncached_calls") / pl.col("eligible_calls")).alias("value"),
                pl.col("eligible_calls").alias("volume"),
                pl.col("normal_share").alias("normal"),
                wilson_lower(pl.col("uncached_calls"), pl.col("eligible_calls"), na.confidence).alias("lower_bound"),
                wilson_lower(pl.col("uncached_calls"), pl.col("eligible_calls"), na.critical_confidence)
                .alias("critical_bound"),
                # a scope that normally leaves many calls uncached is judged on change
                pl.max_horizontal(pl.col("warning"), 2 * share0).alias("warning"),
                pl.max_horizontal(pl.col("critical"), 2 * share0).alias("critical"),
            ).with_columns(
                pl.when(~pl.col("enabled") | (pl.col("volume") < pl.col("min_volume")) | pl.col("value").is_nan()
                        | pl.col("normal").is_null())
                .then(UNKNOWN).when(pl.col("critical_bound") > pl.col("critical")).then(2)
                .when(pl.col("lower_bound") > pl.col("warning")).then(1).otherwise(0).alias("point_level"),
                pl.when(pl.col("value") > pl.col("critical")).then(pl.col("critical")).otherwise(pl.col("warning"))
                .alias("threshold"),
            ).drop("day", "normal_share", "critical_bound")
            out[na_rule.name] = sustain(judged, KEYS, instants=instants, step=step,
                                        sustain_for=timedelta(minutes=na.sustain_min)).join(teams, on=KEYS,
                                                                                            how="left")
        return out

    @staticmethod
    def _normal(ctx: RuleContext, buckets: pl.DataFrame, span: list[datetime], days: int,
                na: Any) -> pl.DataFrame:
        """Per scope and UTC day: its normal hit ratio (explicit and automatic measures) and share of
        cache-eligible calls not cached, over the previous `days` days (rollups)."""
        schema = {**{k: pl.String for k in KEYS}, "day": TIME, "normal_ratio": pl.Float64, "normal_share": pl.Float64}
        if buckets.is_empty():
            return pl.DataFrame(schema=schema)
        day_list = sorted(set(time_series(span).dt.truncate("1d").to_list()))
        base = q.cache_baseline(ctx.wh, ctx.scope, day_list, baseline_days=days)
        if base.is_empty():
            return pl.DataFrame(schema=schema)
        minimum = base.select("provider", "model").unique().with_columns(
            pl.struct("provider", "model").map_elements(
                lambda r: _min_tokens(r["provider"], r["model"], na.min_tokens), return_dtype=pl.Int64)
            .alias("min_tokens"))
        floats = [c for c in base.columns if c.startswith("base_")]
        base = base.with_columns(pl.col("day").cast(TIME), *(pl.col(c).cast(pl.Float64) for c in floats)).join(
            minimum, on=["provider", "model"], how="left")
        # the rollup keeps the documented minimums 1024, 2048 and 4096: the largest not above the model's
        eligible = pl.when(pl.col("min_tokens") >= 4096).then(pl.col("base_eligible_4096")).when(
            pl.col("min_tokens") >= 2048).then(pl.col("base_eligible_2048")).otherwise(pl.col("base_eligible_1024"))
        uncached = pl.when(pl.col("min_tokens") >= 4096).then(pl.col("base_uncached_4096")).when(
            pl.col("min_tokens") >= 2048).then(pl.col("base_uncached_2048")).otherwise(pl.col("base_uncached_1024"))
        return base.select(
            *KEYS, "day",
            pl.when(pl.col("base_base_tokens") > 0).then(pl.col("base_hit_tokens") / pl.col("base_base_tokens"))
            .alias("normal_ratio"),
            pl.when(eligible >= 100).then(uncached / eligible).alias("normal_share"),
        )
