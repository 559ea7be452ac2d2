"""The weekly report e-mail end to end: simulated traffic ingested by the real service, the report
job sending through a real local SMTP server (aiosmtpd), and the parsed messages checked against
the service's own read API for the same week and team: recipients, subject, both parts, inline
images (`cid:` ↔ Content-ID), the CSV, and figures. A second run sends nothing new.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.report.job import send_weekly_reports
from alerts.report.render import ms, pct, usd
from alerts.report.week import Week
from llmledger.settings import ReportSettings, Settings, SmtpSettings
from llmledger.simulator import SimulationConfig, iter_days
from tests.service_support import Running, service_settings, start_in_thread
from tests.smtp_server import Handler, Received, smtp_server
from warehouse.queries import report_sends
from warehouse.queries.scope import Scope

WEEK = Week.parse("2025-W46")
SIM = SimulationConfig(start=WEEK.previous.start, days=14, calls_per_day=1200, seed=11)
RECIPIENTS = {"support": ["support-leads@example.com"], "devtools": ["dev-leads@example.com", "cto@example.com"]}
COMPANY = ["finops@example.com"]
NOW = datetime(2025, 11, 18, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def running(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The real service on its own database, holding two weeks of simulated traffic."""
    service = start_in_thread(service_settings(store, tmp_path_factory.mktemp("report-home")))
    run = next(service)
    for day in iter_days(SIM):
        run.state.pipeline.ingest_frame(day.calls, source="simulator")
    try:
        yield run
    finally:
        service.close()


def report_settings(base: Settings, port: int, **smtp: Any) -> Settings:
    """`base` with the report's audiences and an SMTP server on localhost:`port`."""
    return base.model_copy(update={
        "report": ReportSettings(recipients=RECIPIENTS, company=COMPANY, dashboard_url="https://dash.example.com/"),
        "smtp": SmtpSettings(host="127.0.0.1", port=port, security="none", sender="llmledger@example.com",
                             backoff_s=0, **smtp),
    })


@pytest.fixture(scope="module")
def delivered(running: Running) -> Iterator[tuple[Handler, Settings, list[Any]]]:
    """The week's reports sent once, then the job run again for the same week."""
    with smtp_server() as (controller, handler):
        settings = report_settings(running.settings, controller.port)
        first = send_weekly_reports(settings, running.state.wh, week=WEEK, now=NOW)
        received = len(handler.received)
        second = send_weekly_reports(settings, running.state.wh, week=WEEK, now=NOW)
        assert len(handler.received) == received
        yield handler, settings, [first, second]


def api(running: Running, path: str, **params: Any) -> list[dict[str, Any]]:
    filters = params.pop("filters", [])
    query = [(k, str(v)) for k, v in params.items()] + [("filter", f) for f in filters]
    query += [("start", WEEK.start.isoformat()), ("end", WEEK.end.isoformat())] if "start" not in params else []
    response = httpx.get(f"{running.url}{path}", params=query, timeout=30)
    response.raise_for_status()
    return response.json()["rows"]


def message_for(handler: Handler, audience_rcpts: list[str]) -> Received:
    matches = [r for r in handler.received if sorted(r.rcpt_tos) == sorted(audience_rcpts)]
    assert len(matches) == 1, [r.rcpt_tos for r in handler.received]
    return matches[0]


def parts(msg: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"images": {}, "text": None, "html": None, "csv": None}
    for part in msg.walk():
        kind = part.get_content_type()
        if part.is_multipart():
            continue
        if kind == "image/png":
            found["images"][part["Content-ID"].strip("<>")] = part.get_content()
        elif kind == "text/csv":
            found["csv"] = (part.get_filename(), part.get_content())
        elif kind == "text/plain" and part.get_content_disposition() != "attachment":
            found["text"] = part.get_content()
        elif kind == "text/html":
            found["html"] = part.get_content()
    return found


def test_each_audience_gets_one_message_and_a_rerun_sends_nothing(delivered: Any, running: Running) -> None:
    handler, _, (first, second) = delivered
    assert first.as_dict()["sent"] == 3 and first.as_dict()["failed"] == 0
    assert second.as_dict()["skipped"] == 3 and second.as_dict()["sent"] == 0
    assert sorted(sorted(r.rcpt_tos) for r in handler.received) == sorted(
        [sorted(COMPANY), *(sorted(v) for v in RECIPIENTS.values())])
    for received in handler.received:
        assert received.mail_from == "llmledger@example.com"
        assert sorted(a.strip() for a in received.message["To"].split(",")) == sorted(received.rcpt_tos)
    states = report_sends.send_states(running.state.wh, Scope.all(), report="weekly", period=WEEK.label)
    assert dict(zip(states["audience"], states["status"], strict=True)) == {"*": "sent", "support": "sent",
                                                                            "devtools": "sent"}
    assert set(states["attempts"].to_list()) == {1}


@pytest.mark.parametrize("team", [None, "support", "devtools"])
def test_message_structure_and_figures_equal_the_read_api(delivered: Any, running: Running, team: str | None) -> None:
    handler, _, _ = delivered
    received = message_for(handler, COMPANY if team is None else RECIPIENTS[team])
    msg = received.message
    filters = [] if team is None else [f"team:{team}"]
    found = parts(msg)

    # both parts, the images the HTML refers to, nothing else
    assert msg.get_content_type() == "multipart/mixed"
    assert found["text"] and found["html"]
    cids = set(re.findall(r'src="cid:([^"]+)"', found["html"]))
    assert cids and cids == set(found["images"])
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in found["images"].values())
    assert "<script" not in found["html"].lower() and "<style" not in found["html"].lower()
    assert 'style="' in found["html"]  # CSS inlined

    # the subject and the headline figures are the read API's totals
    totals = api(running, "/v1/totals", filters=filters)[0]
    previous = api(running, "/v1/totals", filters=filters, start=WEEK.previous.start.isoformat(),
                   end=WEEK.previous.end.isoformat())[0]
    cost, before = Decimal(totals["cost_usd"]), Decimal(previous["cost_usd"])
    title = "Company-wide" if team is None else f"Team {team}"
    assert msg["Subject"] == (f"LLM spend {WEEK.label} · {title}: {usd(cost)} "
                              f"({pct((cost - before) / before, signed=True)} vs last week)")
    assert f"Spend:      {usd(cost)}" in found["text"] and usd(cost) in found["html"]
    assert f"Calls:      {totals['calls']:,}" in found["text"]

    # every row of the CSV is the read API's usage row for that dimension and value
    name, text = found["csv"]
    assert name == f"llm-cost-{WEEK.label}-{team or 'company'}.csv"
    rows = list(csv.DictReader(io.StringIO(text)))
    for dimension in ("team", "route", "feature", "user_id", "model"):
        usage = {r["key"]: r for r in api(running, "/v1/usage", dimension=dimension, limit=100_000, filters=filters)}
        before_usage = {r["key"]: r for r in api(running, "/v1/usage", dimension=dimension, limit=100_000,
                                                 filters=filters, start=WEEK.previous.start.isoformat(),
                                                 end=WEEK.previous.end.isoformat())}
        mine = {r["key"]: r for r in rows if r["dimension"] == dimension}
        assert set(mine) == set(usage) | set(before_usage)
        for key, row in usage.items():
            assert (mine[key]["calls"], mine[key]["cost_usd"]) == (str(row["calls"]), row["cost_usd"])
            assert mine[key]["cache_read_tokens"] == str(row["cache_read_tokens"])
        for key, row in before_usage.items():
            assert mine[key]["previous_cost_usd"] == row["cost_usd"]

    # the top routes, latency and cache figures
    top = api(running, "/v1/usage", dimension="route", limit=5, filters=filters)
    for rank, row in enumerate((r for r in top if r["key"] != "(others)"), 1):  # the rest summed in one row
        assert f"  {rank}. {row['key']}: {usd(Decimal(row['cost_usd']))}" in found["text"]
    for row in api(running, "/v1/latency", dimension="route", filters=filters):
        if row["key"]:
            assert f"- {row['key']}: p95 {ms(row['latency_p95_ms'])}, p99 {ms(row['latency_p99_ms'])}" in found["text"]
    cache = api(running, "/v1/cache", grain="week", filters=filters)
    assert len(cache) == 1 and f"Cache hits: {pct(cache[0]['hit_ratio'], 1)}" in found["text"]

    # the dashboard link opens the same week (and team)
    link = "https://dash.example.com/?start=2025-11-10&amp;end=2025-11-17"
    link += "" if team is None else f"&amp;team={team}"
    assert link in found["html"]


def test_team_reports_cover_their_team_only(delivered: Any) -> None:
    handler, _, _ = delivered
    found = parts(message_for(handler, RECIPIENTS["support"]).message)
    teams = {r["key"] for r in csv.DictReader(io.StringIO(found["csv"][1])) if r["dimension"] == "team"}
    assert teams == {"support"}
