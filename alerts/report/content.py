"""Build one audience's weekly report from the warehouse: spend (API and self-hosted infra)
against last week and budget, top lists, movers, caching, latency against SLO, incidents,
savings, provider bills against logged calls (company report) and data quality.

Every figure comes from the query library — the same functions the read API serves — over the
ISO week [Monday, next Monday) UTC, so the report equals `/v1/...` for that range and team.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from urllib.parse import urlencode

import polars as pl

from alerts.report import incidents as incident_section
from alerts.report import savings as savings_section
from alerts.report.model import (
    Audience,
    BillLine,
    CacheSummary,
    DataQuality,
    LatencyLine,
    Mover,
    TeamSpend,
    TopLine,
    Totals,
    WeeklyReport,
)
from alerts.report.week import Week
from alerts.settings import LatencyRule, ReportingSettings
from warehouse.client import Warehouse
from warehouse.queries import attribution, ops, reconciliation, series, weekly
from warehouse.queries import savings as savings_queries
from warehouse.queries.scope import Filters, Scope

TOP_DIMENSIONS = ("route", "feature", "user_id", "model")
MOVER_DIMENSIONS = ("route", "model", "user_id")
TABLE_DIMENSIONS = ("team", "route", "feature", "user_id", "model")
TABLE_COLUMNS = ("calls", "cost_usd", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                 "reasoning_tokens", "errors", "unpriced_calls")
ZERO = Decimal(0)


def report_scope(settings: ReportingSettings) -> Scope:
    """The projects the reports cover (`report.projects`, default all)."""
    projects = settings.report.projects
    return Scope.all() if projects is None else Scope.of(*projects)


def audience_filters(audience: Audience) -> Filters | None:
    """The read API's `filter=team:<team>` for a team's report; nothing for the company's."""
    return None if audience.team is None else {"team": [audience.team]}


def dashboard_link(base_url: str | None, week: Week, audience: Audience) -> str | None:
    """`<base>/?start=YYYY-MM-DD&end=YYYY-MM-DD[&team=T]` (end exclusive), or None without a base URL."""
    if not base_url:
        return None
    params = {"start": f"{week.start:%Y-%m-%d}", "end": f"{week.end:%Y-%m-%d}"}
    if audience.team is not None:
        params["team"] = audience.team
    return f"{base_url.rstrip('/')}/?{urlencode(params)}"


def build_report(
    wh: Warehouse, settings: ReportingSettings, week: Week, audience: Audience, *, now: datetime | None = None
) -> WeeklyReport:
    """The weekly report of `week` for `audience`, read from `wh`. `now` (default the current time)
    bounds the data-gap check for a week still running."""
    now = now or datetime.now(UTC)
    scope, filters, cfg = report_scope(settings), audience_filters(audience), settings.report
    start, end = week.start, week.end
    prev = week.previous
    totals = _totals(wh, scope, week, filters)
    table = per_dimension_table(wh, scope, week, filters)
    opportunities = savings_section.opportunities(wh, settings, scope, week, filters)
    missed = sum((o.saving_usd_month for o in opportunities if o.kind == "uncached_prefix"), ZERO)
    return WeeklyReport(
        week=week,
        audience=audience,
        generated_at=now,
        totals=totals,
        teams=_team_spend(wh, scope, week, filters, team_budgets(settings)),
        top={d: _top(table, d, cfg.top_n, totals.cost_usd) for d in TOP_DIMENSIONS},
        movers={d: _movers(wh, scope, week, filters, d, cfg.top_n, totals.delta_usd) for d in MOVER_DIMENSIONS},
        cache=_cache(wh, scope, week, filters, missed),
        latency=_latency(wh, scope, week, filters, settings),
        incidents=incident_section.week_incidents(wh, scope, week, audience.team),
        opportunities=opportunities,
        data_quality=_data_quality(wh, scope, week, filters, audience, now),
        dashboard_url=dashboard_link(cfg.dashboard_url, week, audience),
        bills=_bills(wh, scope, week) if audience.team is None else None,
        table=table,
        daily=series.time_series(wh, scope, start, end, grain="day", dimension="team" if audience.team is None
                                 else "route", top=6, filters=filters, tag="job:report:daily"),
        daily_previous=series.time_series(wh, scope, prev.start, prev.end, grain="day", filters=filters,
                                          tag="job:report:daily"),
    )


def _money(value: object) -> Decimal:
    return ZERO if value is None else Decimal(value)  # type: ignore[arg-type]


def _totals(wh: Warehouse, scope: Scope, week: Week, filters: Filters | None) -> Totals:
    now_row = attribution.totals(wh, scope, week.start, week.end, filters, tag="job:report:totals").row(0, named=True)
    prev = week.previous
    before = attribution.totals(wh, scope, prev.start, prev.end, filters, tag="job:report:totals").row(0, named=True)
    return Totals(
        cost_usd=_money(now_row["cost_usd"]), previous_cost_usd=_money(before["cost_usd"]),
        calls=int(now_row["calls"]), previous_calls=int(before["calls"]),
        input_tokens=int(now_row["input_tokens"] or 0), output_tokens=int(now_row["output_tokens"] or 0),
        errors=int(now_row["errors"]), unpriced_calls=int(now_row["unpriced_calls"]),
        infra_cost_usd=_money(now_row["infra_cost_usd"]), previous_infra_cost_usd=_money(before["infra_cost_usd"]),
        self_hosted_calls=int(now_row["self_hosted_calls"]),
    )


def _bills(wh: Warehouse, scope: Scope, week: Week) -> tuple[BillLine, ...]:
    """Each provider's cost export for the week against the logged calls (`reconciliation.capture`):
    what was billed, what llmledger logged, and the spend no logged call explains."""
    frame = reconciliation.capture(wh, scope, week.start, week.end, tag="job:report:reconcile")
    return tuple(BillLine(str(r["provider"]), str(r["grain"]), _money(r["billed_usd"]), _money(r["logged_usd"]),
                          _money(r["invisible_usd"]), r["capture_rate"]) for r in frame.to_dicts())


def team_budgets(settings: ReportingSettings) -> dict[str, Decimal]:
    """Monthly budgets per team, as the budget signal has them (`signals.budgets`); a budget for a
    team within one project is left out: it does not cover the team's whole spend."""
    return {b.team: b.monthly_usd for b in settings.signals.budgets if b.team and b.project is None}


def _team_spend(
    wh: Warehouse, scope: Scope, week: Week, filters: Filters | None, budgets: dict[str, Decimal]
) -> tuple[TeamSpend, ...]:
    """Per team: the week, the week before, month to date (to the week's end) and the month-end
    forecast (month to date + this week's daily rate × the days left in the month)."""
    prev = week.previous
    tag = "job:report:teams"

    def costs(start: datetime, end: datetime) -> dict[str, Decimal]:
        frame = attribution.usage_by(wh, scope, "team", start, end, filters, tag=tag)
        return {k: _money(v) for k, v in zip(frame["key"].to_list(), frame["cost_usd"].to_list(), strict=True)}

    current, before = costs(week.start, week.end), costs(prev.start, prev.end)
    month_to_date = costs(week.month_start, min(week.end, week.month_end))
    wanted = set(current) | set(before)
    if filters is None:
        wanted |= set(budgets)
    else:
        wanted |= {t for t in filters["team"] if t in budgets}
    lines = []
    for team in wanted:
        week_cost = current.get(team, ZERO)
        mtd = month_to_date.get(team, ZERO)
        forecast = mtd + week_cost / Decimal(7) * week.days_left_in_month
        lines.append(TeamSpend(team, week_cost, before.get(team, ZERO), mtd, forecast, budgets.get(team)))
    return tuple(sorted(lines, key=lambda line: (-line.cost_usd, line.team)))


def per_dimension_table(wh: Warehouse, scope: Scope, week: Week, filters: Filters | None) -> pl.DataFrame:
    """The CSV: per dimension (team, route, feature, user_id, model) and value, the week's calls,
    cost, tokens, errors and unpriced calls (as `/v1/usage`), with last week's cost and the change."""
    prev = week.previous
    parts = []
    for dimension in TABLE_DIMENSIONS:
        now = attribution.usage_by(wh, scope, dimension, week.start, week.end, filters, tag="job:report:table")
        before = attribution.usage_by(wh, scope, dimension, prev.start, prev.end, filters, tag="job:report:table")
        frame = (
            now.select("key", *TABLE_COLUMNS)
            .join(before.select("key", pl.col("cost_usd").alias("previous_cost_usd")), on="key", how="full",
                  coalesce=True)
            .with_columns(pl.col("calls").fill_null(0), pl.col("cost_usd").fill_null(ZERO),
                          pl.col("previous_cost_usd").fill_null(ZERO))
            .with_columns((pl.col("cost_usd") - pl.col("previous_cost_usd")).alias("delta_usd"))
            .with_columns(pl.lit(dimension).alias("dimension"))
            .sort(["cost_usd", "key"], descending=[True, False])
        )
        parts.append(frame)
    columns = ["dimension", "key", "calls", "cost_usd", "previous_cost_usd", "delta_usd", *TABLE_COLUMNS[2:]]
    return pl.concat([p.select(columns) for p in parts], how="vertical_relaxed")


def _top(table: pl.DataFrame, dimension: str, n: int, total: Decimal) -> tuple[TopLine, ...]:
    rows = table.filter((pl.col("dimension") == dimension) & (pl.col("calls") > 0)).head(n).to_dicts()
    return tuple(TopLine(str(r["key"]), _money(r["cost_usd"]), int(r["calls"]),
                         _money(r["cost_usd"]) / total if total else ZERO) for r in rows)


def _movers(
    wh: Warehouse, scope: Scope, week: Week, filters: Filters | None, dimension: str, n: int, total_delta: Decimal
) -> tuple[Mover, ...]:
    prev = week.previous
    frame = weekly.movers(wh, scope, dimension, (week.start, week.end), (prev.start, prev.end), filters, limit=n,
                          tag="job:report:movers")
    out = []
    for row in frame.to_dicts():
        cost, before = _money(row["cost_usd"]), _money(row["previous_cost_usd"])
        if cost == before:
            continue
        share = (cost - before) / total_delta if total_delta else None
        out.append(Mover(dimension, str(row["key"]), cost, before, share))
    return tuple(out)


def _cache(wh: Warehouse, scope: Scope, week: Week, filters: Filters | None, missed_usd_month: Decimal) -> CacheSummary:
    prev = week.previous
    realised = savings_queries.cache_savings(wh, scope, week.start, week.end, filters,
                                             tag="job:report:cache").row(0, named=True)
    return CacheSummary(
        hit_ratio=attribution.cache_hit_ratio(wh, scope, week.start, week.end, filters, tag="job:report:cache"),
        previous_hit_ratio=attribution.cache_hit_ratio(wh, scope, prev.start, prev.end, filters,
                                                       tag="job:report:cache"),
        cache_read_tokens=int(realised["cache_read_tokens"] or 0),
        realised_usd=_money(realised["realised_usd"]),
        missed_usd_month=missed_usd_month,
    )


def ttft_slo_ms(settings: ReportingSettings, route: str) -> int:
    """The TTFT SLO of a route as the latency-tail signal judges it (`signals.latency_tail`, with
    its per-route overrides): chat routes (`chat_routes` globs) get the chat SLO, others the other."""
    rule = settings.signals.rule("latency_tail", {"route": route})
    assert isinstance(rule, LatencyRule)
    chat = any(fnmatchcase(route, pattern) for pattern in rule.chat_routes)
    return rule.ttft_slo_chat_ms if chat else rule.ttft_slo_other_ms


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _latency(
    wh: Warehouse, scope: Scope, week: Week, filters: Filters | None, settings: ReportingSettings
) -> tuple[LatencyLine, ...]:
    frame = attribution.latency_percentiles(wh, scope, week.start, week.end, filters, dimension="route",
                                            tag="job:report:latency")
    lines = [
        LatencyLine(str(r["key"]), int(r["calls"]), _float(r["latency_p95_ms"]), _float(r["latency_p99_ms"]),
                    _float(r["ttft_p95_ms"]), _float(r["ttft_p99_ms"]), ttft_slo_ms(settings, str(r["key"])))
        for r in frame.fill_nan(None).to_dicts()
        if r["key"]
    ]
    return tuple(sorted(lines, key=lambda line: (not line.breached, -line.calls, line.route)))


def _data_quality(
    wh: Warehouse, scope: Scope, week: Week, filters: Filters | None, audience: Audience, now: datetime
) -> DataQuality:
    """Unpriced models of the audience; hours without any call and dead letters in the company
    report only: they describe ingest, and a quiet hour of one team is no gap."""
    unpriced = weekly.unpriced_models(wh, scope, week.start, week.end, filters, tag="job:report:unpriced")
    hours: list[datetime] | None = None
    dead: tuple[tuple[str, str, int], ...] | None = None
    if audience.team is None:
        until = min(week.end, now.replace(minute=0, second=0, microsecond=0))
        hours = []
        if until > week.start:
            hours = weekly.hours_without_calls(wh, scope, week.start, until, tag="job:report:gaps")["hour"].to_list()
        if scope.projects is None:  # dead letters carry no trusted project
            frame = ops.dead_letter_counts(wh, week.start, week.end, tag="job:report:dead_letters")
            dead = tuple((str(r["source"]), str(r["reason"]), int(r["records"])) for r in frame.to_dicts())
    return DataQuality(
        gaps=None if hours is None else _ranges(hours),
        unpriced=tuple((str(r["provider"]), str(r["model"]), int(r["calls"])) for r in unpriced.to_dicts()),
        dead_letters=dead,
    )


def _ranges(hours: list[datetime]) -> tuple[tuple[datetime, datetime], ...]:
    """Consecutive empty hours merged into [start, end) ranges."""
    out: list[tuple[datetime, datetime]] = []
    for hour in hours:
        hour = hour if hour.tzinfo else hour.replace(tzinfo=UTC)
        if out and out[-1][1] == hour:
            out[-1] = (out[-1][0], hour + timedelta(hours=1))
        else:
            out.append((hour, hour + timedelta(hours=1)))
    return tuple(out)
