"""Spend spikes per user, route and feature: cost over a sliding hour, and over the last six whole
hours, against the scope's own seasonal baseline and its own variability, above a floor in $.
One query with GROUPING SETS gives the windows of all three dimensions; rollup history is fetched
only for the scopes over their floor. Scopes too young to have a baseline are told once as a new
spend source (an info note), not judged against nothing.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from alerts.rules.base import (
    TIME,
    Explanation,
    Family,
    Rule,
    RuleContext,
    empty_observations,
    first_value,
    onset_of,
    scope_thresholds,
    sustain,
    time_series,
    window_sums,
)
from warehouse.queries import signals as q
from warehouse.queries.signals import causes

KEYS = ["project", "dimension", "key"]
BUCKET = timedelta(minutes=5)
HOUR = timedelta(hours=1)
IQR_PER_SD = 1.349  # a normal distribution's interquartile range in standard deviations
BEHIND = {"user_id": ["route", "model"], "route": ["model", "user_id"], "feature": ["route", "model"]}


def _spread(z: float | None) -> str:
    """How far past its usual six hours a sustained shift is, for people: "; 5.2 robust SDs above
    this scope's usual six hours" (nothing where the scope's six hours never vary)."""
    if z is None or z != z or z == float("inf"):
        return ""
    return f"; {z:.1f} robust SDs above this scope's usual six hours"


class SpendSpike(Rule):
    """+ spend spike, per user / route / feature, above the dimension's floor in $ (`floor_usd`).
    Method: a seasonal robust baseline per scope — per clock hour one median pooled from that hour
    on the previous `baseline_days` days of the same kind (weekdays for a weekday, weekend days for a
    weekend day) and the same hour of week of the older weeks up to `baseline_weeks` (zero where the
    scope existed but spent nothing; never under a tenth of the floor: an hour that usually costs
    nothing is no zero baseline; not the larger of two medians, which sat above the realised cost)
    — and the scope's own variability: the `tail_quantile` of its residuals log(cost / baseline)
    over its previous `stats_days` of hours (heavy tails, news-like bursts and level shifts it showed
    as normal). A sliding hour warns at baseline × max(3, `tail_margin` × e^(tail)) and is critical
    at baseline × max(10, 2 × e^(tail)) — twice the scope's largest excursion: the seed's 3×/10× are
    the minimum effect, a scope that normally varies more needs a larger move. Either level also
    needs at least `min_excess_hours` of the scope's usual hour (its mean hourly spend over
    `baseline_days`) of extra money over the baseline: a quiet route's night-time 10× is a fraction
    of one daytime hour. Sustained shift: the last `sustained_hours` whole hours against their
    baselines warn at max(`sustained_min` (2×), e^(m₆ + `sustained_z` × σ₆)), a robust z-score: m₆
    the median and σ₆ the interquartile range / 1.349 of the scope's own six-hour residuals
    log(s₆ / b₆) over `stats_days` (not its single largest excursion: the maximum of two weeks of
    heavy-tailed hours is a poor scale, and one past runaway blinded the test for two weeks) — a
    day-long level shift a one-hour window misses (its six hours also reach `floor_usd` × 6 and
    their extra money ≥ `min_excess_hours` usual hours per hour; the $ floor over six hours, not
    their extra money, on the alert benchmark: the excess alone let through more night-time noise
    and caught no more shifts in time). Warm-up: a scope younger than `min_history_days` is not
    judged; until `full_history_days` only a critical spike is, against the larger of its same-hour
    baseline and its usual hour (a median of a few days is too thin to trust a low value); either
    way it is told once as a new spend source (info). Calls with no user / route / feature are no scope
    (never judged as ""). A new source's money is judged through its route: the window's spend of
    users younger than `min_history_days` on a judged route is critical at 10× (`critical`) the
    route's usual hour and warns at 3× (`warning`, once the route is warmed up) — the route's learned
    excursions describe the users it had, not a source it never saw, so an agent loop of a new user
    pages on its route however bursty the route normally is (its floor and `min_excess_hours` still
    apply). The same money is told once: a user whose spend is one breaching route's is quiet, and a
    feature whose money is ≥ 95% one route's is judged by that route only (breaching or not; for the
    sustained test, its six hours' money)."""

    method = ("seasonal median (same hour on days of the same kind, same hour of week) × max(3×/10×, 1.5×/2× "
              "the scope's largest excursion of 2 weeks) per hour, and ≥ 1 usual hour of extra $; 6-hour "
              "sustained shift ≥ 2× and a robust z ≥ 4.5 (median, IQR of the scope's 6-hour residuals); "
              "warm-up 3/7 days, "
              "a new user's $ judged on its route at 3×/10× the route's usual hour")

    name = "spend_spike"
    title = "Spend spike"
    scope_keys = ("project", "dimension", "key")
    unit = "x"
    absent_means_ok = True
    notes = True
    next_step = ("Confirm whether the spend is expected; if not, rate-limit or cap the user / route (a "
                 "per-user budget) or move the work to a cheaper model.")

    def scope_of(self, row: dict[str, Any]) -> dict[str, str]:
        return {"project": str(row["project"]), str(row["dimension"]): str(row["key"])}

    def key_expr(self) -> pl.Expr:
        return pl.concat_str([pl.lit("project="), pl.col("project"), pl.lit(","), pl.col("dimension"), pl.lit("="),
                              pl.col("key")])

    def describe(self, row: dict[str, Any]) -> str:
        cost, base, value = row.get("cost_usd"), row.get("base_cost_usd") or 0, row.get("value")
        if row.get("by_sustained"):
            return (f"{self.title}: ${row.get('sustained_cost_usd') or 0:,.2f} over the last {row.get('sustained_hours')} "
                    f"h, {row.get('sustained_ratio') or 0:.1f}x the usual ${row.get('sustained_base_usd') or 0:,.2f} "
                    f"for those hours (a sustained shift{_spread(row.get('sustained_zscore'))})")
        if row.get("by_new_source") and cost is not None and base:
            new, usual = row.get("new_usd") or 0, row.get("typical_usd") or 0
            share = f", {new / usual:.1f}x the route's usual hour of ${usual:,.2f}" if usual else ""
            return (f"{self.title}: ${cost:,.2f} in the last hour, {value or 0:.1f}x the usual ${base:,.2f}; "
                    f"${new:,.2f} of it from {row.get('new_source') or 'a new user'}{share} — a user too new to "
                    "have a baseline of its own")
        if cost is None or value is None or value != value:
            return f"{self.title}: held by the sustain window (no spend measured at this instant)"
        if not base or value == float("inf"):
            return f"{self.title}: ${cost:,.2f} in the last hour, new spend (this hour usually costs nothing)"
        tail = row.get("tail_r")
        reach = 2.718281828 ** tail if tail is not None and tail == tail else None
        spread = f"; its busiest normal hours of two weeks reached {reach:.1f}x" if reach and reach > 2 else ""
        return f"{self.title}: ${cost:,.2f} in the last hour, {value:.1f}x the usual ${base:,.2f}{spread}"

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        window = timedelta(minutes=settings.window_min)
        dimension = next(k for k in scope if k != "project")
        # the money of the window that first breached: from one window before the onset
        began = onset_of(row, window, at - window)
        top = causes.top_contributors(ctx.wh, ctx.scope, {k: [v] for k, v in scope.items()}, BEHIND[dimension],
                                      lo=began, hi=at)
        if top.is_empty():
            return Explanation("", self.next_step)
        parts = [" / ".join(str(r[d]) for d in BEHIND[dimension]) + f" ${float(r['cost_usd']):,.2f} ({r['share']:.0%})"
                 for r in top.iter_rows(named=True)]
        from alerts.rules.cache import describe_shift

        phrases, detail = describe_shift(ctx, {k: [v] for k, v in scope.items()}, ["model", "prompt_version"],
                                         at=at, changed_by=began + window)
        cause = f"driven by {', '.join(parts)} since {began:%H:%M} UTC"
        if phrases:
            cause += "; " + "; ".join(phrases)
        return Explanation(cause, self.next_step,
                           {**detail, "top": [{k: str(v) for k, v in r.items()} for r in top.iter_rows(named=True)]})

    def note(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        settings = self.settings(ctx)
        dimension = next(k for k in scope if k != "project")
        first = row.get("first_hour")
        since = f"; first call {first:%Y-%m-%d %H:%M} UTC" if isinstance(first, datetime) else ""
        judged = (f"; judged for spikes from {first + timedelta(days=settings.full_history_days):%Y-%m-%d %H:%M} UTC, "
                  f"once it has {settings.full_history_days} days of history (only a 10x spike before)"
                  if isinstance(first, datetime) else "")
        if dimension == "user_id":  # a new user's money is judged on its routes meanwhile
            judged += (f"; until {settings.min_history_days} days old its spend counts on its routes "
                       "(10x a route's usual hour pages the route)")
        return Explanation(
            f"New spend source: {dimension} {scope[dimension]}, ${row.get('cost_usd') or 0:,.2f} in the last hour"
            f"{since}{judged}",
            "Nothing to do if it is expected (a launch, a new user); give it a budget if it should have one.",
            {"first_hour": str(first)})


def _covered(judged: pl.DataFrame, user_routes: pl.DataFrame, *, window: timedelta,
             span: list[datetime]) -> pl.DataFrame:
    """Quiet a user spike whose money is one breaching route's (told once, by the route): ≥ 80% of
    the user's window spend on one route that breaches at least as high. (A feature's money is
    judged by its route in `_one_route_features`.)"""
    breaching = judged.filter((pl.col("dimension") == "route") & (pl.col("point_level") > 0)).select(
        "project", pl.col("key").alias("route"), "at", pl.col("point_level").alias("route_level"))
    if breaching.is_empty() or user_routes.is_empty():
        return judged.with_columns(pl.lit(None, pl.String).alias("covered_by_route"))
    per_route = window_sums(user_routes.rename({"route": "_route"}), ["project", "key", "_route"], ["cost_usd"],
                            bucket=BUCKET, window=window, at=span)
    shares = per_route.with_columns(
        (pl.col("cost_usd") / pl.col("cost_usd").sum().over(["project", "key", "at"])).alias("user_share"),
    ).sort("user_share", descending=True).group_by(["project", "key", "at"]).first()
    users = shares.filter(pl.col("user_share") >= 0.8).select(
        "project", "key", "at", pl.col("_route").alias("route"), pl.lit("user_id").alias("dimension"))
    cover = breaching.join(users, on=["project", "route", "at"]).select(
        "project", "dimension", "key", "at", "route", "route_level").sort("route_level", descending=True).unique(
        ["project", "dimension", "key", "at"], keep="first")
    marked = judged.join(cover, on=KEYS + ["at"], how="left")
    covered = (pl.col("route_level") >= pl.col("point_level")).fill_null(False)
    return marked.with_columns(
        pl.when(covered).then(0).otherwise(pl.col("point_level")).alias("point_level"),
        pl.when(covered).then(pl.col("route")).otherwise(None).alias("covered_by_route"),
    ).drop("route_level", "route")


def _one_route_features(judged: pl.DataFrame, buckets: pl.DataFrame) -> pl.DataFrame:
    """Quiet a feature whose money is one route's, breaching or not: the same money is judged once,
    by the route. "One route's": the route holds ≥ 95% of the money the feature's verdict is about —
    the six whole hours when it fires by the sustained test (a burst an hour is long gone from the
    sliding hour still fills the block), else the sliding hour."""
    routes = (buckets.filter((pl.col("dimension") == "route") & (pl.col("route_feature") != ""))
              .select("project", pl.col("key").alias("route"), pl.col("route_feature").alias("key")).unique())
    sums = judged.filter(pl.col("dimension") == "route").select(
        "project", pl.col("key").alias("route"), "at", pl.col("cost_usd").alias("route_cost"),
        pl.col("sustained_cost_usd").alias("route_s6"))
    if routes.is_empty() or sums.is_empty():
        return judged
    owner = (routes.join(sums, on=["project", "route"]).with_columns(pl.lit("feature").alias("dimension"))
             .join(judged.filter(pl.col("dimension") == "feature").select(*KEYS, "at", "cost_usd", "by_sustained",
                                                                           "sustained_cost_usd"), on=[*KEYS, "at"])
             .with_columns(pl.when(pl.col("by_sustained"))
                           .then(pl.col("route_s6") >= 0.95 * pl.col("sustained_cost_usd"))
                           .otherwise(pl.col("route_cost") >= 0.95 * pl.col("cost_usd")).fill_null(False)
                           .alias("owned"))
             .filter(pl.col("owned")).group_by([*KEYS, "at"]).agg(pl.col("route").first().alias("owner")))
    if owner.is_empty():
        return judged
    marked = judged.join(owner, on=[*KEYS, "at"], how="left")
    return marked.with_columns(
        pl.when(pl.col("owner").is_not_null()).then(0).otherwise(pl.col("point_level")).alias("point_level"),
        pl.coalesce("covered_by_route", "owner").alias("covered_by_route"),
    ).drop("owner")


def new_money(ctx: RuleContext, judged: pl.DataFrame, *, window: timedelta, span: list[datetime]) -> pl.DataFrame:
    """Per route and instant, the window's money from users too young to be judged on their own
    (`new_usd`; `new_source` the largest of them): a user is a candidate once its window reaches the
    user floor while younger than `min_history_days`."""
    young = judged.filter((pl.col("dimension") == "user_id") & ~pl.col("judged"))
    users = young.filter(pl.col("cost_usd") >= pl.col("floor"))["key"].unique().to_list()
    none = judged.with_columns(pl.lit(0.0).alias("new_usd"), pl.lit(None, pl.String).alias("new_source"))
    if not users:
        return none
    routes = q.spend_user_routes(ctx.wh, ctx.scope, span[0] - window, span[-1], users=users).with_columns(
        pl.col("cost_usd").cast(pl.Float64), pl.col("bucket").cast(TIME))
    if routes.is_empty():
        return none
    sums = window_sums(routes.rename({"route": "_route"}), ["project", "key", "_route"], ["cost_usd"], bucket=BUCKET,
                       window=window, at=span).join(young.select("project", "key", "at"), on=["project", "key", "at"],
                                                    how="semi")  # while the user is still young
    per_route = (sums.filter(pl.col("cost_usd") > 0).sort("cost_usd", descending=True)
                 .group_by(["project", "_route", "at"])
                 .agg(pl.col("cost_usd").sum().alias("new_usd"), pl.col("key").first().alias("new_source"))
                 .select("project", pl.lit("route").alias("dimension"), pl.col("_route").alias("key"), "at", "new_usd",
                         "new_source"))
    return judged.join(per_route, on=[*KEYS, "at"], how="left").with_columns(pl.col("new_usd").fill_null(0.0))


def same_kind_lags(days: int, weeks: int) -> list[pl.Expr]:
    """The values one median baseline pools for an hour: the same clock hour on each of the previous
    `days` days of the same kind (weekday or weekend), and the same hour of week of each older week
    up to `weeks` (a week inside `days` is already one of those days). One pooled median, not the
    larger of two: the maximum of a 7-day median and a same-hour-of-week median sat above the hour's
    realised cost (a weekday's quiet hours cost 0.85-0.87x it, a weekend's 0.62-0.76x, on the alert
    benchmark's four seed sets), and a median of the one week a young scope has is that week's
    value, a burst included. Days of the other kind are left out: a weekend hour judged against
    weekdays (or the reverse) is off by the scope's weekly shape. Reads the lag columns `_lag{h}`
    (the cost h hours before) and `_weekday` (1 = Monday) of `seasonal`'s frame."""
    weekend = pl.col("_weekday") >= 6
    # the weekday k days before, from the hour's own: no datetime arithmetic per lag
    same = [pl.when(((pl.col("_weekday") + 6 - k % 7) % 7 >= 5) == weekend).then(pl.col(f"_lag{24 * k}"))
            for k in range(1, days + 1)]
    older = [pl.col(f"_lag{168 * k}") for k in range(1, weeks + 1) if 7 * k > days]
    return same + older


def row_median(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """The median of `columns` per row, nulls skipped (null where all are): numpy over the block of
    columns at once (a list median per row costs ten times as much)."""
    values = frame.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-null row: its median is null
        median = np.nanmedian(values, axis=1)
    return pl.Series(median).fill_nan(None)


def seasonal(history: pl.DataFrame, first: pl.DataFrame, *, lo: datetime, hi: datetime, days: int, weeks: int,
             sustained_hours: int, tail: float, stats_hours: int) -> pl.DataFrame:
    """A dense hourly series per scope over [lo, hi): cost `v` (null before the scope existed), its
    seasonal baseline `base` (the median of the same clock hour on the previous `days` days of the
    same kind — weekdays for a weekday, weekend days for a weekend day — pooled with the same hour
    of week of the older weeks up to `weeks`, see `same_kind_lags`; the median of every previous day
    where no day of its kind exists yet; never under a tenth of the dimension's `floor`: an hour
    that usually costs nothing is no zero baseline), its usual hour
    `typical` (the mean hourly cost over the previous `days` days), and the variability learned from
    the previous `stats_hours` residuals log(v / base) from the scope's second day on: `tail_r` (their
    `tail` quantile) per hour, and for sums over `sustained_hours` (`s6`, `b6`, their residual `r6`)
    the median `mid6` and the robust scale `scale6` (interquartile range / 1.349) of those residuals.
    `first` holds each scope's first hour and its dimension's floor."""
    hours = pl.datetime_range(lo, hi - HOUR, interval="1h", eager=True, time_unit="ms", time_zone="UTC").alias("hour")
    dense = (first.join(hours.to_frame(), how="cross")
             .join(history.select([*KEYS, "hour", "cost_usd"]), on=[*KEYS, "hour"], how="left")
             .with_columns(pl.when(pl.col("hour") >= pl.col("first_hour").dt.truncate("1h"))
                           .then(pl.col("cost_usd").fill_null(0.0)).otherwise(None).alias("v"))
             .sort([*KEYS, "hour"]))
    # every scope has the same grid of hours, in order: a lag is a shift, void where it would reach
    # into the scope before
    position = pl.int_range(pl.len()) % hours.len()
    steps = sorted({24 * k for k in range(1, days + 1)} | {168 * k for k in range(1, weeks + 1)})
    dense = dense.with_columns(pl.col("hour").dt.weekday().alias("_weekday"),
                               *(pl.when(position >= h).then(pl.col("v").shift(h)).alias(f"_lag{h}") for h in steps))
    day_lags = [f"_lag{24 * k}" for k in range(1, days + 1)]
    kinds = dense.select(e.alias(f"_kind{i}") for i, e in enumerate(same_kind_lags(days, weeks)))
    dense = dense.with_columns(
        row_median(dense, day_lags).alias("m_day"),
        pl.sum_horizontal(pl.col(c).is_not_null() for c in day_lags).alias("n_day"),
        row_median(dense, [f"_lag{168 * k}" for k in range(1, weeks + 1)]).alias("m_week"),
        row_median(kinds, kinds.columns).alias("m_kind"),
        # the scope's usual hour: its mean hourly spend over the previous `days` days
        pl.col("v").rolling_mean(24 * days, min_samples=24).shift(1).over(KEYS).alias("typical"),
    ).with_columns(pl.max_horizontal(pl.coalesce("m_kind", "m_day"), pl.col("floor") / 10).alias("base")).drop(
        "_weekday", *(f"_lag{h}" for h in steps))
    eps = pl.col("floor") / 100  # a spend-free hour still has a log residual
    n = sustained_hours
    dense = dense.with_columns(
        # residuals from the scope's second day: against a baseline of one or two days they are larger
        # (noisier), so a young scope's variability is overstated, never understated
        pl.when(pl.col("n_day") >= 1).then(((pl.col("v") + eps) / (pl.col("base") + eps)).log()).alias("r"),
        pl.col("v").rolling_sum(n).over(KEYS).alias("s6"),
        pl.col("base").rolling_sum(n).over(KEYS).alias("b6"),
    ).with_columns(
        pl.when(pl.col("n_day").rolling_min(n).over(KEYS) >= 1)  # every hour of the block has a baseline
        .then(((pl.col("s6") + n * eps) / (pl.col("b6") + n * eps)).log()).alias("r6"),
    )

    # the variability in force at an hour comes from the residuals before it (before its 6-hour block)
    def quantile(column: str, q: float, shift: int) -> pl.Expr:
        return pl.col(column).rolling_quantile(q, window_size=stats_hours, min_samples=48).shift(shift).over(KEYS)

    return dense.with_columns(quantile("r", tail, 1).alias("tail_r"), quantile("r6", 0.5, n).alias("mid6"),
                              ((quantile("r6", 0.75, n) - quantile("r6", 0.25, n)) / IQR_PER_SD).alias("scale6"))


class SpendFamily(Family):
    """Spend spikes from one GROUPING SETS query and rollup history for the candidates."""

    name = "spend"
    rules = (SpendSpike(),)

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        sliding = self.sliding(ctx, instants)
        if sliding is None:
            return {}
        rule, settings, step, window, span = sliding
        n = settings.sustained_hours
        floors = pl.DataFrame({"dimension": list(settings.floor_usd), "floor": list(settings.floor_usd.values())})
        buckets = q.spend_buckets(ctx.wh, ctx.scope, span[0] - window, span[-1]).with_columns(
            pl.col("cost_usd").cast(pl.Float64), pl.col("bucket").cast(TIME))
        buckets = buckets.filter(pl.col("key") != "")  # no user / route / feature: no scope to judge
        # A window's sum peaks just after a bucket enters it, so the sums at bucket ends bound every
        # instant: only scopes whose sparse rolling sum reaches the floor can fire (a few of thousands).
        peaks = (buckets.sort("bucket").rolling(index_column="bucket", period=window - BUCKET, closed="both",
                                                group_by=KEYS)
                 .agg(pl.col("cost_usd").sum().alias("peak_usd")).group_by(KEYS).agg(pl.col("peak_usd").max()))
        over = peaks.join(floors, on="dimension", how="inner").filter(pl.col("peak_usd") >= pl.col("floor") - 1e-9)
        # sustained-shift candidates: a mean of the floor per hour over the last whole hours
        h_first, h_last = span[0].replace(minute=0, second=0, microsecond=0), span[-1].replace(minute=0, second=0,
                                                                                             microsecond=0)
        recent = q.spend_hourly(ctx.wh, ctx.scope, h_first - n * HOUR, h_last, every_key=True).with_columns(
            pl.col("cost_usd").cast(pl.Float64), pl.col("hour").cast(TIME))
        steady = (recent.sort("hour").rolling(index_column="hour", period=f"{n}h", group_by=KEYS)
                  .agg(pl.col("cost_usd").sum().alias("s")).group_by(KEYS).agg(pl.col("s").max())
                  .join(floors, on="dimension", how="inner").filter(pl.col("s") >= n * pl.col("floor") - 1e-9))
        candidates = pl.concat([over.select(KEYS), steady.select(KEYS)]).unique()
        if candidates.is_empty():
            return {rule.name: empty_observations(KEYS)}
        keys_of = {d: candidates.filter(pl.col("dimension") == d)["key"].to_list() for d in settings.floor_usd}
        first = q.spend_first_seen(ctx.wh, ctx.scope, users=keys_of.get("user_id", []),
                                   routes=keys_of.get("route", []), features=keys_of.get("feature", []))
        if first.is_empty():
            return {rule.name: empty_observations(KEYS)}
        first = first.with_columns(pl.col("first_hour").cast(TIME)).join(candidates, on=KEYS, how="semi").join(
            floors, on="dimension", how="inner")
        lookback = timedelta(days=max(settings.baseline_weeks * 7, settings.baseline_days) + settings.stats_days) \
            + (n + 1) * HOUR
        lo, hi = h_first - window - lookback, h_last + HOUR
        history = q.spend_hourly(ctx.wh, ctx.scope, lo, hi, users=keys_of.get("user_id", []),
                                 routes=keys_of.get("route", []), features=keys_of.get("feature", [])).with_columns(
            pl.col("cost_usd").cast(pl.Float64), pl.col("hour").cast(TIME))
        dense = seasonal(history, first, lo=lo.replace(minute=0, second=0, microsecond=0), hi=hi,
                         days=settings.baseline_days, weeks=settings.baseline_weeks, sustained_hours=n,
                         tail=settings.tail_quantile, stats_hours=settings.stats_days * 24)

        # the sliding hour at every instant, for the scopes over their floor
        in_window = buckets.join(candidates, on=KEYS, how="semi")
        sums = window_sums(in_window, KEYS, ["cost_usd", "calls"], bucket=BUCKET, window=window, at=span)
        grid = candidates.join(pl.DataFrame({"at": span}, schema={"at": TIME}), how="cross")
        sums = grid.join(sums, on=[*KEYS, "at"], how="left").with_columns(
            pl.col("cost_usd").fill_null(0.0), pl.col("calls").fill_null(0.0))
        sums = sums.join(floors, on="dimension", how="inner")
        # the hourly test: the larger baseline of the two clock hours the window touches, with the
        # variability learned before the first of them
        h0 = (pl.col("at") - window).dt.truncate("1h")
        hourly = dense.select([*KEYS, "hour", "base", "tail_r", "typical"])
        sums = sums.with_columns(h0.alias("h0"), (h0 + HOUR).alias("h1")).join(
            hourly.rename({"hour": "h0", "base": "base0"}), on=[*KEYS, "h0"], how="left").join(
            hourly.select([*KEYS, pl.col("hour").alias("h1"), pl.col("base").alias("base1")]), on=[*KEYS, "h1"],
            how="left")
        # the sustained test: the last whole hours before the instant's hour (from the rollup)
        block = dense.select([*KEYS, (pl.col("hour") + HOUR).alias("h_now"), "s6", "b6", "r6", "mid6", "scale6",
                              "m_week"])
        sums = sums.with_columns(pl.col("at").dt.truncate("1h").alias("h_now")).join(block, on=[*KEYS, "h_now"],
                                                                                    how="left")
        judged = scope_thresholds(ctx, rule, sums, KEYS,
                                  ["warning", "critical", "enabled", "min_history_days", "full_history_days",
                                   "sustained_min", "sustained_z", "tail_margin", "min_excess_hours"])
        age = pl.col("at") - pl.col("first_hour")
        judged = judged.join(first.drop("floor"), on=KEYS, how="left").with_columns(
            pl.col("calls").alias("volume"),
            (age >= pl.duration(days=1) * pl.col("min_history_days")).fill_null(False).alias("judged"),
            (age >= pl.duration(days=1) * pl.col("full_history_days")).fill_null(False).alias("warmed_up"),
            pl.col("typical").fill_null(0.0).alias("typical_usd"),
        )
        judged = new_money(ctx, judged, window=window, span=span).with_columns(
            # a same-hour median of a few days is too thin to trust a low value: until the scope is
            # warmed up, an hour is judged against its usual hour when that is larger
            pl.when(pl.col("warmed_up")).then(pl.max_horizontal("base0", "base1"))
            .otherwise(pl.max_horizontal("base0", "base1", "typical_usd")).alias("base_cost_usd"),
            # the least extra money worth a page: `min_excess_hours` of the scope's usual hour (a quiet
            # route's night-time doubling is a fraction of one daytime hour)
            (pl.col("min_excess_hours") * pl.col("typical_usd")).alias("min_excess_usd"),
        ).with_columns(
            pl.when(pl.col("base_cost_usd") > 0).then(pl.col("cost_usd") / pl.col("base_cost_usd"))
            .otherwise(float("inf")).alias("value"),
            pl.max_horizontal(pl.col("warning"), pl.col("tail_r").exp() * pl.col("tail_margin")).alias("warning_mult"),
            pl.max_horizontal(pl.col("critical"), 2 * pl.col("tail_r").exp()).alias("critical_mult"),
            pl.max_horizontal(pl.col("sustained_min"),
                              (pl.col("mid6") + pl.col("sustained_z") * pl.col("scale6")).exp())
            .alias("sustained_mult"),
            (pl.col("s6") / pl.col("b6")).alias("sustained_ratio"),
            ((pl.col("r6") - pl.col("mid6")) / pl.col("scale6")).alias("sustained_zscore"),
        ).with_columns(
            (pl.col("warning_mult") * pl.col("base_cost_usd")).alias("warning_usd"),
            (pl.col("critical_mult") * pl.col("base_cost_usd")).alias("critical_usd"),
            (pl.col("warmed_up") & pl.col("m_week").is_not_null() & (pl.col("s6") >= n * pl.col("floor"))
             & (pl.col("b6") > 0) & (pl.col("sustained_ratio") >= pl.col("sustained_mult"))
             & (pl.col("s6") - pl.col("b6") >= n * pl.col("min_excess_usd"))).fill_null(False)
            .alias("by_sustained"),
        ).with_columns(
            pl.when(~pl.col("enabled") | pl.col("base_cost_usd").is_null() | ~pl.col("judged")
                    | (pl.col("cost_usd") < pl.col("floor"))
                    | (pl.col("cost_usd") - pl.col("base_cost_usd") < pl.col("min_excess_usd"))).then(0)
            .when(pl.col("cost_usd") >= pl.col("critical_usd")).then(2)
            .when(pl.col("warmed_up") & (pl.col("cost_usd") >= pl.col("warning_usd"))).then(1).otherwise(0)
            .alias("spike_level"),
            # money from users too young to be judged on their own, judged through the route at the
            # seed's multiples alone: the route's learned excursions describe the users it had, not a
            # source it never saw (an agent loop of a new user is the runaway's signature)
            pl.when(pl.col("enabled") & pl.col("judged") & (pl.col("dimension") == "route")
                    & (pl.col("typical_usd") > 0) & (pl.col("new_usd") >= pl.col("floor"))
                    & (pl.col("cost_usd") - pl.col("base_cost_usd") >= pl.col("min_excess_usd")))
            .then(pl.when(pl.col("new_usd") >= pl.col("critical") * pl.col("typical_usd")).then(2)
                  .when(pl.col("warmed_up") & (pl.col("new_usd") >= pl.col("warning") * pl.col("typical_usd")))
                  .then(1).otherwise(0))
            .otherwise(0).alias("new_level"),
        ).with_columns(
            pl.max_horizontal("spike_level", "new_level").alias("hour_level"),
            (pl.col("new_level") > pl.col("spike_level")).alias("by_new_source"),
        ).with_columns(
            pl.when(pl.col("enabled") & pl.col("by_sustained") & (pl.col("hour_level") == 0)).then(1)
            .otherwise(pl.col("hour_level")).alias("point_level"),
            (pl.col("by_sustained") & (pl.col("hour_level") == 0)).alias("by_sustained"),
            pl.when(pl.col("by_new_source") & (pl.col("new_level") == 2)).then(pl.col("critical"))
            .when(pl.col("by_new_source")).then(pl.col("warning"))
            .when(pl.col("cost_usd") >= pl.col("critical_usd")).then(pl.col("critical_mult"))
            .otherwise(pl.col("warning_mult")).alias("threshold"),
            pl.col("s6").alias("sustained_cost_usd"), pl.col("b6").alias("sustained_base_usd"),
            pl.lit(n).alias("sustained_hours"),
        )
        notes = judged.filter(~pl.col("warmed_up") & (pl.col("cost_usd") >= pl.col("floor"))).select(
            [*KEYS, "at", "cost_usd", "first_hour", pl.col("cost_usd").alias("value")])
        breaching_users = judged.filter((pl.col("dimension") == "user_id") & (pl.col("point_level") > 0))["key"]
        user_routes = (q.spend_user_routes(ctx.wh, ctx.scope, span[0] - window, span[-1],
                                           users=breaching_users.unique().to_list()).with_columns(
            pl.col("cost_usd").cast(pl.Float64), pl.col("bucket").cast(TIME))
            if breaching_users.len() else pl.DataFrame())
        judged = _one_route_features(_covered(judged, user_routes, window=window, span=span), buckets).drop(
            "h0", "h1", "h_now", "base0", "base1", "floor", "min_history_days", "full_history_days",
            "sustained_min", "sustained_z", "tail_margin", "s6", "b6", "r6", "mid6", "scale6", "m_week", "judged",
            "hour_level", "typical",
            "min_excess_hours", "spike_level", "new_level")
        out = sustain(judged, KEYS, instants=instants, step=step, sustain_for=timedelta(minutes=settings.sustain_min),
                      absent_means_ok=True)
        teams = first_value(buckets, KEYS, "team")
        return {rule.name: out.join(teams, on=KEYS, how="left"),
                f"{rule.name}:notes": notes.filter(pl.col("at").is_in(time_series(instants).implode())).join(
                    teams, on=KEYS, how="left")}
