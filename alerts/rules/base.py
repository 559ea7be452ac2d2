"""What every signal rule shares: the context it runs in, the shape of what it returns, and the
Polars helpers that turn bucket totals into sliding windows, levels and sustain.

A family (one module per signal family) runs one query for its window and returns, per rule, a
frame with one row per (scope, evaluation instant): `at`, the scope columns, `team`, `level`
(the current level of a breach sustained since its first breaching point, see `sustain`), `peak` (the highest level at any
point of it; -1 when no point could be judged), `value`, `threshold`, `volume` and free detail
columns. Judging is vectorised; Python only loops over the few scopes that fire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NamedTuple

import polars as pl

from alerts.model import WARNING_CRITICAL, Level
from alerts.settings import SignalRule, SignalsSettings
from warehouse.client import Warehouse
from warehouse.queries.scope import Scope

TIME = pl.Datetime("ms", "UTC")
UNKNOWN = -1  # a point whose window had too little volume (or no baseline) to judge


@dataclass(frozen=True)
class RuleContext:
    """Where and with which thresholds rules run."""

    wh: Warehouse
    signals: SignalsSettings
    scope: Scope = field(default_factory=Scope.all)


@dataclass(frozen=True)
class Explanation:
    """A probable cause and the next step, computed from the data where possible."""

    cause: str
    next_step: str
    detail: dict[str, Any] = field(default_factory=dict)


class Rule:
    """One signal of design.md §5. Subclasses set the class attributes and `explain`."""

    name: ClassVar[str]
    title: ClassVar[str]
    scope_keys: ClassVar[tuple[str, ...]]
    unit: ClassVar[str]
    next_step: ClassVar[str]
    levels: ClassVar[tuple[Level, ...]] = WARNING_CRITICAL
    absent_means_ok: ClassVar[bool] = False  # event-like measures: no row means nothing happened
    notify_resolved: ClassVar[bool] = True
    renotify: ClassVar[bool] = True  # re-notify a standing CRITICAL after the cool-down
    method: ClassVar[str] = "point value vs threshold"  # the statistic judged (`llmledger signals list`)
    # one incident per cause: scopes of the same group (e.g. one provider) breaching in the same
    # window are one incident listing them; empty: one incident per scope
    group_keys: ClassVar[tuple[str, ...]] = ()
    worse: ClassVar[str] = "higher"  # which way a value is worse (the group's worst member leads it)
    notes: ClassVar[bool] = False  # the family may return info notes (`<name>:notes`), each told once

    def settings(self, ctx: RuleContext) -> SignalRule:
        """The rule's default parameters."""
        return self.settings_of(ctx.signals)

    def settings_of(self, signals: SignalsSettings) -> SignalRule:
        """The rule's default parameters from the signals settings."""
        return getattr(signals, self.name)

    def volume_guard(self, settings: SignalRule) -> int | None:
        """The volume a window needs before it is judged, as configured (a rule that derives it from
        its statistic says so here)."""
        return settings.min_volume

    def scope_of(self, row: dict[str, Any]) -> dict[str, str]:
        """The scope an observation row names."""
        return {key: str(row[key]) for key in self.scope_keys}

    def accumulate(self, detail: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        """An open incident's detail after one more observation (e.g. every runaway call it saw)."""
        return detail

    def levels_of(self, scope: dict[str, str]) -> tuple[Level, ...]:
        """The levels a scope is graded on (most rules: the same for every scope)."""
        return self.levels

    def key_expr(self) -> pl.Expr:
        """The scope's key (`alerts.model.scope_key` of `scope_of`) as a Polars expression."""
        return pl.concat_str([pl.lit(f"{k}=") + pl.col(k).cast(pl.String).fill_null("None") for k in self.scope_keys],
                             separator=",")

    def note(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        """The text of an info note about a scope (rules with `notes`)."""
        return Explanation(f"{self.title}: noted", self.next_step)

    def describe(self, row: dict[str, Any]) -> str:
        """One line: the value against the threshold."""
        return f"{self.title}: {format_value(row['value'], self.unit)} (threshold {format_value(row['threshold'], self.unit)})"

    def explain(self, ctx: RuleContext, scope: dict[str, str], at: datetime, row: dict[str, Any]) -> Explanation:
        """The probable cause of a firing scope; the default names none."""
        return Explanation("", self.next_step)


class Family:
    """Rules computed from one query; `observe` returns a frame per rule name."""

    name: ClassVar[str]
    rules: ClassVar[tuple[Rule, ...]]

    def step(self, signals: SignalsSettings) -> timedelta:
        """Evaluation cadence: the finest step among the family's rules."""
        return timedelta(minutes=min(getattr(signals, r.name).step_min for r in self.rules))

    def enabled(self, signals: SignalsSettings) -> bool:
        """True when any of the family's rules is enabled."""
        return any(getattr(signals, r.name).enabled for r in self.rules)

    def active_rules(self, signals: SignalsSettings) -> tuple[Rule, ...]:
        """The rules as configured (a family whose levels come from settings rebuilds them)."""
        return self.rules

    def observe(self, ctx: RuleContext, instants: list[datetime]) -> dict[str, pl.DataFrame]:
        """Per rule name, one row per (scope, instant) — see the module docstring."""
        raise NotImplementedError

    def sliding(self, ctx: RuleContext, instants: list[datetime]) -> Sliding | None:
        """For a one-rule family judged over a sliding window: its rule and settings, the step, the
        window and the instants to compute (the asked ones plus the sustain lookback); None when the
        rule is switched off."""
        (rule,) = self.rules
        settings = rule.settings(ctx)
        if not settings.enabled:
            return None
        return Sliding(rule, settings, *self.reach(ctx, instants, [settings]))

    def reach(self, ctx: RuleContext, instants: list[datetime],
              settings: Sequence[Any]) -> tuple[timedelta, timedelta, list[datetime]]:
        """(step, longest window, instants to compute) for rules judged together over sliding
        windows: the asked instants plus the longest sustain lookback."""
        step = self.step(ctx.signals)
        span = points(instants, step, timedelta(minutes=max(s.sustain_min for s in settings)))
        return step, timedelta(minutes=max(s.window_min for s in settings)), span


class Sliding(NamedTuple):
    """What `Family.sliding` works out for a one-rule family."""

    rule: Rule
    settings: Any
    step: timedelta
    window: timedelta
    span: list[datetime]


def empty_observations(keys: list[str]) -> pl.DataFrame:
    """An observation frame with no rows (the standard columns only)."""
    return pl.DataFrame(schema={**{k: pl.String for k in keys}, "at": TIME, "team": pl.String, "level": pl.Int8,
                                "peak": pl.Int8, "value": pl.Float64, "threshold": pl.Float64, "volume": pl.Float64})


# ---- time -----------------------------------------------------------------------------------------


def floor_time(at: datetime, step: timedelta) -> datetime:
    """`at` rounded down to a multiple of `step` since the epoch (UTC)."""
    seconds = int(step.total_seconds())
    epoch = int(at.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Instants start, start+step, …, end (inclusive); empty when start > end."""
    out: list[datetime] = []
    at = start
    while at <= end:
        out.append(at)
        at += step
    return out


def points(instants: Sequence[datetime], step: timedelta, sustain: timedelta) -> list[datetime]:
    """The instants plus the lookback a sustain period needs before the first one."""
    return grid(min(instants) - sustain, max(instants), step)


def time_series(values: Sequence[datetime], name: str = "at") -> pl.Series:
    """Datetimes as a UTC millisecond series."""
    return pl.Series(name, list(values), dtype=TIME)


# ---- windows and levels ------------------------------------------------------------------------


def window_sums(
    buckets: pl.DataFrame,
    keys: list[str],
    columns: list[str],
    *,
    bucket: timedelta,
    window: timedelta,
    at: Sequence[datetime],
) -> pl.DataFrame:
    """For each scope (`keys`) and instant in `at`: the sums of `columns` over buckets starting in
    [instant - window, instant). Missing buckets count as zero."""
    schema = {**{k: pl.String for k in keys}, "at": TIME, **{c: pl.Float64 for c in columns}}
    if buckets.is_empty():
        return pl.DataFrame(schema=schema)
    first = min(at) - window
    starts = pl.datetime_range(first, max(at) - bucket, interval=bucket, eager=True, time_unit="ms",
                               time_zone="UTC").alias("bucket")
    totals = buckets.group_by([*keys, "bucket"]).agg(pl.col(c).cast(pl.Float64).sum() for c in columns)
    scopes = totals.select(keys).unique()
    full = (
        scopes.join(starts.to_frame(), how="cross")
        .join(totals, on=[*keys, "bucket"], how="left")
        .with_columns(pl.col(c).fill_null(0.0) for c in columns)
        .sort([*keys, "bucket"])
    )
    width = max(1, int(window / bucket))
    # rounded: a float rolling sum leaves residues (1e-19) where the window is really empty
    rolled = full.with_columns(
        *(pl.col(c).rolling_sum(width, min_samples=1).over(keys).round(12) for c in columns),
        (pl.col("bucket") + bucket).alias("at"),
    )
    return rolled.filter(pl.col("at").is_in(time_series(at).implode())).drop("bucket")


def widened_sums(
    buckets: pl.DataFrame,
    keys: list[str],
    columns: list[str],
    *,
    volume: str,
    need: pl.Expr,
    bucket: timedelta,
    windows: Sequence[timedelta],
    at: Sequence[datetime],
    widest: pl.Expr | None = None,
    per_scope: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`window_sums` over the first of `windows` (ascending) whose `volume` reaches `need` at that
    scope and instant — the rule's own window where it holds enough, else widened step by step until
    it does, so a thin scope is judged on enough calls, later, rather than never — or over the widest
    where none does (the rule then finds it too thin). `widest` (minutes) caps the widening for some
    scopes; `need` and `widest` may name columns of `per_scope` (one row per scope, joined on
    `keys`: e.g. its provider). `window_min` says which window each row used. One pass: each
    window's sums are differences of the scope's running totals."""
    steps = sorted(set(windows))
    minutes = [int(w / timedelta(minutes=1)) for w in steps]
    schema = {**{k: pl.String for k in keys}, "at": TIME, **{c: pl.Float64 for c in columns}, "window_min": pl.Int64}
    if buckets.is_empty():
        return pl.DataFrame(schema=schema)
    starts = pl.datetime_range(min(at) - steps[-1], max(at) - bucket, interval=bucket, eager=True, time_unit="ms",
                               time_zone="UTC").alias("bucket")
    totals = buckets.group_by([*keys, "bucket"]).agg(pl.col(c).cast(pl.Float64).sum() for c in columns)
    full = (
        totals.select(keys).unique().join(starts.to_frame(), how="cross")
        .join(totals, on=[*keys, "bucket"], how="left")
        .with_columns(pl.col(c).fill_null(0.0) for c in columns)
        .sort([*keys, "bucket"])
        .with_columns(*(pl.col(c).cum_sum().over(keys).alias(f"_cum_{c}") for c in columns),
                      (pl.col("bucket") + bucket).alias("at"))
    )
    widths = [max(1, int(w / bucket)) for w in steps]
    # rounded: float differences leave residues (1e-19) where a window is really empty
    full = full.with_columns((pl.col(f"_cum_{c}") - pl.col(f"_cum_{c}").shift(n).over(keys).fill_null(0.0))
                             .round(9).alias(f"_{c}_{i}") for i, n in enumerate(widths) for c in columns)
    sums = [{c: pl.col(f"_{c}_{i}") for c in columns} for i in range(len(widths))]
    out = full.filter(pl.col("at").is_in(time_series(at).implode()))
    if per_scope is not None:
        out = out.join(per_scope, on=keys, how="left")
    cap = widest if widest is not None else pl.lit(minutes[-1])
    # the first window that holds enough (or is as wide as this scope may go); the widest otherwise
    chosen = pl.lit(len(steps) - 1)
    for i in reversed(range(len(steps) - 1)):
        chosen = pl.when((sums[i][volume] >= need) | (pl.lit(minutes[i + 1]) > cap)).then(pl.lit(i)).otherwise(chosen)
    out = out.with_columns(chosen.alias("_window"))

    def pick(values: list[pl.Expr]) -> pl.Expr:
        return pl.coalesce(*[pl.when(pl.col("_window") == i).then(v) for i, v in enumerate(values)])

    return out.select(
        *keys, "at",
        *(pick([s[c] for s in sums]).alias(c) for c in columns),
        pick([pl.lit(m, pl.Int64) for m in minutes]).alias("window_min"),
    )


def first_value(buckets: pl.DataFrame, keys: list[str], column: str) -> pl.DataFrame:
    """Per scope, one non-empty value of `column` (e.g. the team behind a route)."""
    if buckets.is_empty() or column not in buckets.columns:
        return pl.DataFrame(schema={**{k: pl.String for k in keys}, column: pl.String})
    return buckets.filter(pl.col(column) != "").group_by(keys).agg(pl.col(column).first())


def sustain(
    judged: pl.DataFrame,
    keys: list[str],
    *,
    instants: Sequence[datetime],
    step: timedelta,
    sustain_for: timedelta,
    absent_means_ok: bool = False,
    level_held: int = 1,
) -> pl.DataFrame:
    """From per-point levels (`point_level`, UNKNOWN where a point could not be judged) to `level`
    and `peak`, for the requested instants only.

    A breach is sustained once it has held at every judged point since its first breaching point,
    and that point lies at least `sustain_for` before the instant: the period is counted from the
    first breaching evaluation, never from a point too thin to judge (a point that could not be
    judged neither breaks nor makes a breach, so a burst first seen after an hour of thin minutes
    must still hold for the whole period). At least half of the period's points, and at least two
    (or the only one), must be judged: two judged minutes amid thin ones are no sustained condition.
    `level` is then the breach's current level (its last judged point): a condition that has held
    the period escalates as soon as it is worse, rather than restarting the period at each level
    (a rollout seen at WARNING reaches CRITICAL without waiting for a second sustain period).
    With `level_held` = m > 1 the current level is the lowest of the breach's last m points (thin
    points carry the level before them): a higher level counts once it has held m evaluations, so
    one look of a thin scope's many past a bound does not escalate (default 1: the last point).
    `peak` is the highest level at any point of the period; `onset` the evaluation before the
    unbroken breach's first point."""
    if judged.is_empty():
        return judged.with_columns(pl.lit(0, pl.Int8).alias("level"), pl.lit(0, pl.Int8).alias("peak"))
    span = points(instants, step, sustain_for)
    scopes = judged.select(keys).unique()
    full = (
        scopes.join(time_series(span).to_frame(), how="cross")
        .join(judged, on=[*keys, "at"], how="left")
        .with_columns(pl.col("point_level").fill_null(0 if absent_means_ok else UNKNOWN))
        .sort([*keys, "at"])
    )
    width = int(sustain_for / step) + 1
    breach = pl.col("point_level") > 0
    known = pl.col("point_level") >= 0
    enough = known.cast(pl.Int32).rolling_sum(width, min_samples=1).over(keys) >= min(max(2, (width + 1) // 2), width)
    # a run: the points from one judged clear point to the next (thin points belong to the run they fall in)
    run = [*keys, "_run"]
    out = full.with_columns(
        (known & ~breach).cum_sum().over(keys).alias("_run"),
        (~breach).cum_sum().over(keys).alias("_unbroken"),
    ).with_columns(
        pl.when(breach).then(pl.col("at")).otherwise(None).min().over(run).alias("_first_breach"),
        pl.when(known).then(pl.col("point_level")).otherwise(None).forward_fill().over(run).fill_null(0)
        .alias("_current"),
    )
    if level_held > 1:
        out = out.with_columns(pl.col("_current").rolling_min(level_held, min_samples=1).over(run).alias("_current"))
    out = out.with_columns(
        pl.when(enough & (pl.col("_current") > 0) & (pl.col("_first_breach") <= pl.col("at") - sustain_for))
        .then(pl.col("_current")).otherwise(0).clip(0, 98).cast(pl.Int8).alias("level"),
        pl.col("point_level").rolling_max(width, min_samples=1).over(keys).cast(pl.Int8).alias("peak"),
        # the onset: the first point of the unbroken breach this instant belongs to (the cause is
        # looked for there, not in the hour before the page)
        pl.when(breach).then(pl.col("at").min().over([*keys, "_unbroken"])).otherwise(None).alias("onset"),
    ).drop("_run", "_unbroken", "_first_breach", "_current")
    return out.filter(pl.col("at").is_in(time_series(instants).implode()))


def onset_of(row: dict[str, Any], window: timedelta, default: datetime) -> datetime:
    """Where a cause should be looked for: one window before the breach's first point (the window
    that first breached began there), else `default`."""
    onset = row.get("onset")
    if not isinstance(onset, datetime):
        return default
    onset = onset if onset.tzinfo else onset.replace(tzinfo=UTC)
    return min(onset - window, default)


def scope_thresholds(
    ctx: RuleContext, rule: Rule, frame: pl.DataFrame, keys: list[str], fields: list[str]
) -> pl.DataFrame:
    """`frame` with one column per field of the rule's settings, per-scope overrides applied."""
    base = rule.settings(ctx)
    if not any(o.signal == rule.name for o in ctx.signals.overrides) or frame.is_empty():
        return frame.with_columns(pl.lit(getattr(base, f)).alias(f) for f in fields)
    scopes = frame.select(keys).unique()
    rows = []
    for scope in scopes.iter_rows(named=True):
        settings = ctx.signals.rule(rule.name, {k: str(v) for k, v in scope.items()})
        rows.append({**scope, **{f: getattr(settings, f) for f in fields}})
    return frame.join(pl.DataFrame(rows), on=keys, how="left")


def format_value(value: float | None, unit: str) -> str:
    """A measure for people: ratios as 0.42, shares as 42%, multiples as 3.1x, ms as 31.2 s, $ as $1.23."""
    if value is None or value != value:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "x":
        return "∞x" if value == float("inf") else f"{value:.1f}x"
    if unit == "ms":
        return f"{value / 1000:.1f} s"
    if unit == "usd":
        return f"${value:,.2f}"
    if unit == "tokens":
        return f"{value:,.0f} tokens"
    return f"{value:g}"
