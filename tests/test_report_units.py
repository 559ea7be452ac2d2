"""The weekly report's smaller parts: ISO weeks, the dashboard link, money formatting, the data
quality section (gaps, unpriced models, dead letters) and budgets with the month-end forecast,
on a real warehouse with a handful of calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from alerts.report.content import build_report, dashboard_link
from alerts.report.incidents import week_incidents
from alerts.report.model import COMPANY, Audience
from alerts.report.render import exact, pct, render, usd
from alerts.report.week import Week
from ingest.pipeline import Pipeline
from llmledger.settings import Budget, Settings
from tests.factories import make_call, write_jsonl
from warehouse.client import Warehouse
from warehouse.queries.scope import Scope


def test_iso_weeks() -> None:
    week = Week.parse("2025-W45")
    assert (week.start, week.end) == (datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 10, tzinfo=UTC))
    assert week.previous == Week.parse("2025W44") and Week.parse("2026-W01").previous == Week.parse("2025-W52")
    assert Week.last_complete(datetime(2025, 11, 10, 0, 0, tzinfo=UTC)) == week
    assert Week.last_complete(datetime(2025, 11, 16, 23, 59, tzinfo=UTC)) == Week.parse("2025-W45")
    assert Week.parse("2025-W44").month_start == datetime(2025, 11, 1, tzinfo=UTC)  # ends Sun 2 Nov
    assert Week.parse("2025-W48").days_left_in_month == 0  # ends Sun 30 Nov
    for bad in ("2025-45", "2025-W54", "W45"):
        with pytest.raises(ValueError):
            Week.parse(bad)


def test_dashboard_link_and_formatting() -> None:
    week = Week.parse("2025-W45")
    assert dashboard_link("https://d.example.com/app/", week, Audience("a b")) == \
        "https://d.example.com/app/?start=2025-11-03&end=2025-11-10&team=a+b"
    assert dashboard_link("https://d.example.com", week, Audience(COMPANY)) == \
        "https://d.example.com/?start=2025-11-03&end=2025-11-10"
    assert dashboard_link(None, week, Audience(COMPANY)) is None
    assert usd(Decimal("1234.565")) == "$1,234.57" and usd(Decimal("-0.004")) == "$0.00"
    assert usd(Decimal("-2.5")) == "−$2.50"
    assert pct(Decimal("0.125"), signed=True) == "+13%" and pct(None) == "—"
    assert exact(Decimal("8.616567500000000000")) == "8.6165675" and exact(Decimal("100.000")) == "100"


@pytest.fixture
def week_of_calls(pipeline: Pipeline, tmp_path: Path) -> None:
    rows = [make_call(ts=f"2025-11-0{d}T{h:02d}:30:00Z", team="search") for d in (3, 4, 5, 6, 7, 8, 9)
            for h in range(24) if not (d == 5 and 10 <= h < 13)]
    rows += [make_call(ts="2025-11-04T09:00:00Z", team="search", provider="acme", model="acme-private-1")]
    rows += [make_call(ts="2025-10-28T10:00:00Z", team="search")]
    path = write_jsonl(tmp_path / "calls.jsonl", rows, extra_lines=[b"{not json"])
    summary = pipeline.ingest_file(path, source="unit")
    assert summary.written == len(rows) and summary.dead == 1


def test_data_quality_section(wh: Warehouse, settings: Settings, week_of_calls: None) -> None:
    week = Week.parse("2025-W45")
    now = datetime(2025, 11, 10, 8, tzinfo=UTC)
    quality = build_report(wh, settings, week, Audience(COMPANY), now=now).data_quality
    assert quality.gaps == ((datetime(2025, 11, 5, 10, tzinfo=UTC), datetime(2025, 11, 5, 13, tzinfo=UTC)),)
    assert quality.unpriced == (("acme", "acme-private-1", 1),)
    assert quality.dead_letters == ()  # dead letters count in the week they were written: now
    written = wh.query_rows("SELECT max(ingested_at) FROM dead_letters")[0][0].replace(tzinfo=UTC)  # the engine's clock
    current = build_report(wh, settings, Week.containing(written), Audience(COMPANY), now=written).data_quality
    assert current.dead_letters == (("unit", "malformed_json", 1),)
    team = build_report(wh, settings, week, Audience("search"), now=now)
    assert team.data_quality.gaps is None and team.data_quality.dead_letters is None  # ingest facts: company only
    assert "acme/acme-private-1" in render(team).text


def test_budget_and_forecast(wh: Warehouse, settings: Settings, week_of_calls: None) -> None:
    budgeted = settings.model_copy(update={"signals": settings.signals.model_copy(update={"budgets": [
        Budget(team="search", monthly_usd=Decimal("2")), Budget(team="idle", monthly_usd=Decimal(1)),
        Budget(team="search", project="other", monthly_usd=Decimal(1)),
        Budget(project="default", monthly_usd=Decimal(9))]})})
    week = Week.parse("2025-W45")
    report = build_report(wh, budgeted, week, Audience(COMPANY), now=datetime(2025, 11, 10, tzinfo=UTC))
    lines = {t.team: t for t in report.teams}
    search = lines["search"]
    assert search.month_to_date_usd == search.cost_usd  # November 1-9: only this week's calls
    assert search.forecast_usd == search.month_to_date_usd + search.cost_usd / 7 * 21  # 21 days left
    assert search.budget_usd == Decimal(2)  # the team's own budget, not one within a project
    assert search.budget_status == "at risk" and lines["idle"].cost_usd == 0 and lines["idle"].budget_status == "ok"
    assert search.previous_cost_usd > 0


def test_without_alert_history_the_section_says_so(fresh_wh: Warehouse) -> None:
    missing = week_incidents(fresh_wh, Scope.all(), Week.parse("2025-W45"), None)  # no alert tables at all
    assert not missing.available and missing.items == () and "No alert history available" in missing.note


def test_with_an_empty_alert_history_there_are_no_incidents(wh: Warehouse) -> None:
    empty = week_incidents(wh, Scope.all(), Week.parse("2025-W45"), None)
    assert empty.available and empty.items == ()
