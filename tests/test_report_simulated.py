"""The weekly report on the simulated month (incidents on), against the simulator's ground truth:
the signals evaluated over the month as the scheduler would (the signals' own benchmark harness),
then every full week's report names each incident injected in it, with its cause, and the savings
opportunities the simulator planted, with estimates in line with what it states, and none of its
controls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from alerts.report.content import build_report
from alerts.report.model import COMPANY, Audience, WeeklyReport
from alerts.report.render import render
from alerts.report.savings import per_month
from alerts.report.week import Week
from bench import signal_eval as harness
from llmledger.settings import Budget, ReportSettings, Settings
from llmledger.simulator import GroundTruth, ground_truth
from tests.conftest import migrated_database
from warehouse.client import Warehouse
from warehouse.queries import attribution
from warehouse.queries.scope import Scope

pytestmark = pytest.mark.slow  # a simulated month ingested and evaluated: scheduled first when parallel

CONFIG = harness.config(days=30)  # November 2025 at 30,000 calls a day: the volume the signals are judged at
WEEKS = [Week.parse(w) for w in ("2025-W45", "2025-W46", "2025-W47", "2025-W48")]  # the full weeks inside
NOW = datetime(2025, 12, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return ground_truth(CONFIG)


@pytest.fixture(scope="module")
def month(store: Path, tmp_path_factory: pytest.TempPathFactory,
          truth: GroundTruth) -> Iterator[tuple[Warehouse, Settings]]:
    """The simulated month (calls and tool runs) ingested through the real pipeline into a database
    of its own, and every signal evaluated over it (budgets as the truth states them)."""
    base = Settings(home=tmp_path_factory.mktemp("report-sim"), warehouse={"path": store})
    settings = harness.settings_for(truth, base)
    with migrated_database(settings) as wh:
        harness.load(wh, settings, CONFIG)
        harness.evaluate(wh, settings, CONFIG)
        yield wh, settings


@pytest.fixture(scope="module")
def reports(month: tuple[Warehouse, Settings]) -> dict[str, WeeklyReport]:
    wh, settings = month
    return {w.label: build_report(wh, settings, w, Audience(COMPANY), now=NOW) for w in WEEKS}


def test_each_injected_incident_is_named_in_its_weeks_report(reports: dict[str, WeeklyReport],
                                                             truth: GroundTruth) -> None:
    assert len(truth.incidents) == 10
    for incident in truth.incidents:
        report = reports[Week.containing(incident.start_at).label]
        assert report.incidents.available
        signal = harness.SIGNAL_OF[incident.name].replace("_", " ")
        named = [i for i in report.incidents.items if i.signal == signal and _matches(i.scope, incident.scope)]
        assert named, (incident.name, incident.scope, [(i.signal, i.scope) for i in report.incidents.items])
        assert any(i.cause for i in named) and any(i.severity == incident.expected_severity for i in named)
        assert named[0].opened_at < report.week.end and (named[0].resolved_at or report.week.end) >= report.week.start
        text = render(report).text
        assert f"] {signal} " in text and named[0].cause.splitlines()[0][:40] in text


def test_team_reports_name_their_own_incidents(month: tuple[Warehouse, Settings], truth: GroundTruth) -> None:
    wh, settings = month
    budget = truth.incident("budget_overrun")
    week = Week.containing(budget.start_at)
    team = build_report(wh, settings, week, Audience(budget.scope["team"]), now=NOW)
    assert any(i.signal == "budget" for i in team.incidents.items)
    other = build_report(wh, settings, week, Audience("devtools"), now=NOW)
    assert not any(i.signal == "budget" for i in other.incidents.items)


def _matches(scope: dict[str, str], planted: dict[str, str]) -> bool:
    return all(scope.get(k) == v or v in scope.get(k, "").split(", ") for k, v in planted.items())


@pytest.mark.parametrize("week", [w.label for w in WEEKS])
def test_every_planted_opportunity_is_reported(reports: dict[str, WeeklyReport], truth: GroundTruth,
                                               week: str) -> None:
    found = reports[week].opportunities
    for planted in truth.opportunities:
        assert any(o.kind == planted.kind and _matches(o.scope, planted.scope) for o in found), (planted.name, found)


@pytest.mark.parametrize("week", [w.label for w in WEEKS])
def test_controls_are_not_reported(reports: dict[str, WeeklyReport], truth: GroundTruth, week: str) -> None:
    found = reports[week].opportunities
    batched = next(o for o in truth.opportunities if o.kind == "not_on_batch_api").details["controls_already_batched"]
    assert not any(o.kind == "not_on_batch_api" and o.scope["route"] in batched for o in found)
    assert not any(o.kind == "not_on_batch_api" and o.scope["route"] != "crm-enrichment" for o in found)
    assert [o.scope["routing_policy"] for o in found if o.kind == "cheap_step_answers_most"] == ["cascade-lite"]
    assert [o.scope["route"] for o in found if o.kind == "uncached_prefix"] == ["contract-review"]


def test_estimates_follow_the_ground_truth(reports: dict[str, WeeklyReport], month: tuple[Warehouse, Settings],
                                           truth: GroundTruth) -> None:
    wh, _ = month
    week = WEEKS[1]
    report = reports[week.label]
    by_kind = {o.kind: o for o in report.opportunities}
    route_cost = attribution.usage_by(wh, Scope.all(), "route", week.start, week.end)
    cost = {k: Decimal(v) for k, v in zip(route_cost["key"], route_cost["input_cost_usd"], strict=True)}
    total = {k: Decimal(v) for k, v in zip(route_cost["key"], route_cost["cost_usd"], strict=True)}

    # "Batch API: 50% of the route's cost"
    assert by_kind["not_on_batch_api"].saving_usd_month == per_month(total["crm-enrichment"] * Decimal("0.5"))
    # "~90% of the prefix's input cost, ~60% of the route's input cost" (the prefix estimate is the
    # shortest uncached prompt, so a little above the true 9,000 tokens)
    share = by_kind["uncached_prefix"].saving_usd_month / per_month(cost["contract-review"])
    assert Decimal("0.5") < share < Decimal("0.75")
    # "the cheap model answers ~90% of calls"
    planted = next(o for o in truth.opportunities if o.kind == "cheap_step_answers_most")
    answered = re.search(r"answers (\d+)% of calls", by_kind["cheap_step_answers_most"].title)
    assert answered and abs(int(answered.group(1)) / 100 - (1 - planted.details["escalation_rate"])) <= 0.04


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--no-first-run"]


@pytest.mark.parametrize("team", [None, "devtools"])
def test_the_email_renders_in_chromium(month: tuple[Warehouse, Settings], team: str | None) -> None:
    """The HTML as a mail client gets it (scripts off, `cid:` images from the message's own parts),
    rendered by headless Chromium and saved under test-artifacts/ for a person to look at."""
    from playwright.sync_api import sync_playwright

    from alerts.report.charts import ChartRenderer, render_charts
    from alerts.report.render import content_id, render

    wh, base = month
    settings = base.model_copy(update={
        "report": ReportSettings(dashboard_url="https://dash.example.com"),
        "signals": base.signals.model_copy(update={"budgets": [*base.signals.budgets,
                                                               Budget(team="devtools", monthly_usd=Decimal(4000))]}),
    })
    report = build_report(wh, settings, WEEKS[1], Audience(COMPANY if team is None else team), now=NOW)
    rendered = render(report, render_charts(report, ChartRenderer(settings.report.browser_path)))
    assert {c.name for c in rendered.charts} == {"daily-spend", "movers", "budgets"}
    html = rendered.html
    for chart in rendered.charts:  # what a mail client does with multipart/related
        html = html.replace(f"cid:{content_id(chart)}", "data:image/png;base64," + _b64(chart.png))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"weekly-report-{team or 'company'}.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 760, "height": 1000}, java_script_enabled=False)
            page.set_content(html, wait_until="load")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.naturalWidth, e.clientWidth])")
            overflow = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert len(images) == 3 and all(natural >= 1280 and 0 < shown <= 640 for natural, shown in images), images
    assert overflow <= 760  # nothing wider than a phone-ish mail pane
    assert shot.stat().st_size > 50_000


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _chromium() -> str:
    from alerts.report.charts import find_browser

    return find_browser(None)
