"""What a person sees: `llmledger up --demo` (a small simulated month) with its dashboard, every page
— the calls explorer, a session and an incident included — opened in headless Chromium
(Playwright driving Debian's /usr/bin/chromium), waited on until its charts and tables are drawn
(or it shows an error), saved as a screenshot under test-artifacts/ and read as a person would:
no "None" / "NaN", money written as money, every chart there. Then every link of a rendered
weekly report and of a Slack message is followed and must land on its page, range and filters.
One demo service serves the whole module."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from common import links
from dashboards.controls import label
from tests.service_support import REPO, free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
# per page: its title, the Plotly charts and the tables it draws on the demo month
PAGES = {"": ("Overview", 5, 0), "attribution": ("Attribution", 5, 1), "caching": ("Prompt caching", 2, 2),
         "latency": ("Latency", 4, 1), "routing": ("Reasoning & routing", 6, 3), "nodes": ("Self-hosted nodes", 7, 1),
         "reconciliation": ("Reconciliation", 0, 2), "calls": ("Calls", 0, 1), "alerts": ("Alerts", 0, 1),
         "health": ("Data health", 0, 0)}
MONEY_PAGES = {"", "attribution", "caching", "routing", "nodes", "reconciliation", "calls"}
# What the page has drawn, judged on the things the test asserts rather than on a quiet DOM: the
# script run finished (Streamlit's script state, no running indicator or spinner), each Plotly chart has drawn its SVG (a drawn
# chart holds several .main-svg layers, so charts are counted, not layers), the tables are in the page
# (their grids draw lazily, and an empty one draws no canvas), or the page shows an exception.
DRAWN = """() => {
  const all = (s) => Array.from(document.querySelectorAll(s));
  const tables = all('[data-testid="stDataFrame"]');
  return {
    title: (document.querySelector('h1') || {}).innerText || null,
    script: (document.querySelector('[data-testid="stApp"]') || {getAttribute: () => null})
      .getAttribute('data-test-script-state'),
    running: all('[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-testid="stSkeleton"]').length,
    charts: all('.js-plotly-plot').length,
    drawn: all('.js-plotly-plot').filter((p) => p.querySelector('.main-svg')).length,
    tables: tables.length,
    errors: all('[data-testid="stException"]').map((e) => e.innerText.slice(0, 600)),
  };
}"""
# Everything a person reads: the page's text, the table cells (the grid draws on a canvas; its
# accessible cells hold the same text) and the charts' SVG text (ticks, labels, legends).
TEXT = """() => [document.body.innerText,
  ...Array.from(document.querySelectorAll('[data-testid="stDataFrame"] td, [data-testid="stDataFrame"] th'))
     .map((e) => e.textContent),
  ...Array.from(document.querySelectorAll('.js-plotly-plot .main-svg text')).map((e) => e.textContent)].join('\\n')"""
SIDEBAR = """() => (document.querySelector('[data-testid="stSidebar"]') || {}).innerText || ''"""
WAIT_S = 150  # per page, on a loaded 2-core machine
MISSING = re.compile(r"\b(None|NaN|nan|null|undefined|Infinity)\b")
MONEY = re.compile(r"[−-]?\$[0-9][0-9.,]*[kMB]?")
WELL_FORMED = re.compile(r"^−?\$(0|[1-9][0-9]{0,2}(,[0-9]{3})*)(\.[0-9]+)?[kMB]?$")


def _settled(state: dict, title: str, charts: int, tables: int) -> bool:
    if state["errors"]:
        return True  # judged below: the page shows a traceback
    return (state["script"] == "notRunning" and state["title"] == title and not state["running"]
            and state["charts"] >= charts and state["drawn"] >= state["charts"] and state["tables"] >= tables)


def _missing(state: dict, title: str, charts: int, tables: int) -> str:
    return (f"{title} did not finish drawing in {WAIT_S} s: title {state['title']!r}, {state['drawn']} of "
            f"{max(charts, state['charts'])} charts drawn, {state['tables']} of {tables} tables, "
            f"{'still running' if state['running'] else 'not running'}")


def _open(tab: Any, url: str, title: str, charts: int, tables: int, shot: str) -> dict:
    """Go to `url`, wait until the page has drawn what it should (the same state twice, 0.5 s
    apart), screenshot it; its last state."""
    tab.goto(url)
    started, settled, state = time.monotonic(), 0, {}
    while settled < 2:
        state = tab.evaluate(DRAWN)
        settled = settled + 1 if _settled(state, title, charts, tables) else 0
        assert time.monotonic() - started < WAIT_S, _missing(state, title, charts, tables)
        time.sleep(0.5)
    path = ARTIFACTS / f"dashboard-{shot}.png"
    tab.screenshot(path=str(path), full_page=True)
    assert not state["errors"], f"{title} shows a traceback (screenshot {path}): {state['errors'][0]}"
    return state


def _read_as_a_person(tab: Any, name: str, *, money: bool) -> None:
    text = tab.evaluate(TEXT)
    missing = MISSING.findall(text)
    assert not missing, f"{name} shows {sorted(set(missing))}"
    amounts = MONEY.findall(text)
    bad = [a for a in amounts if not WELL_FORMED.match(a.rstrip(",."))]  # prose: "$9.80, …" ends a clause
    assert not bad, f"{name} writes money as {bad[:5]}"
    assert "$−" not in text and "$-" not in text, f"{name} puts the sign after the $"
    assert not money or amounts, f"{name} shows no money"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`llmledger up --demo` with its dashboard; yields the dashboard's and the API's URLs."""
    home = tmp_path_factory.mktemp("browser") / "home"
    home.mkdir()
    api, board = free_port(), free_port()
    env = {**os.environ, "LLMLEDGER_HOME": str(home), "PYTHONPATH": str(REPO)}
    for name in ("LLMLEDGER_CONFIG", "LLMLEDGER_API_KEY", "LLMLEDGER_DASHBOARD__ENABLED"):
        env.pop(name, None)
    log = home.parent / "up.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "llmledger", "up", "--demo", "--calls-per-day", "300", "--port", str(api),
         "--dashboard-port", str(board)], cwd=home.parent, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    urls = {"board": f"http://127.0.0.1:{board}", "api": f"http://127.0.0.1:{api}"}
    try:
        deadline = time.monotonic() + 480  # ~60 s on a quiet machine; two test workers share its cores
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llmledger up exited: {log.read_text()[-3000:]}")
            try:
                if (httpx.get(f"{urls['api']}/health", timeout=1).status_code == 200
                        and httpx.get(f"{urls['board']}/_stcore/health", timeout=1).status_code == 200):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llmledger up did not start: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield urls
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def tab(running: dict[str, str]) -> Iterator[Any]:
    """One Chromium tab for the module."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1500, "height": 2200})
        finally:
            browser.close()


def _incident(api: str) -> dict[str, Any]:
    """A critical incident of the demo (the one the views below open)."""
    rows = httpx.get(f"{api}/v1/alerts", params={"state": "all"}, timeout=30).json()["rows"]
    detail = [httpx.get(f"{api}/v1/alerts/{r['incident_id']}", timeout=30).json() for r in rows]
    return next(d for d in detail if any(e["severity"] == "critical" for e in d["events"]["rows"]))


def test_every_page_draws_and_reads_as_a_person_would(running: dict[str, str], tab: Any) -> None:
    for path, (title, charts, tables) in PAGES.items():
        _open(tab, f"{running['board']}/{path}", title, charts, tables, path or "overview")
        _read_as_a_person(tab, title, money=path in MONEY_PAGES)
    incident = _incident(running["api"])["incident"]
    state = _open(tab, f"{running['board']}/alerts?incident={incident['incident_id']}", "Alerts", 1, 2, "incident")
    _read_as_a_person(tab, "the incident view", money=False)
    text = tab.evaluate(TEXT)
    assert f"Incident {incident['incident_id']}" in text and "Peak severity" in text and "critical" in text
    assert "Acknowledge" in text and "Silence" in text and state["charts"] == 1  # the timeline
    end = datetime.now(UTC).replace(microsecond=0)
    calls = httpx.get(f"{running['api']}/v1/calls", params={"start": (end - timedelta(days=30)).isoformat(),
                                                              "end": end.isoformat(), "limit": 200}, timeout=30).json()
    sessions = [r["session_id"] for r in calls["rows"] if r["session_id"]]
    session = max(sessions, key=sessions.count)  # the longest one in the page
    _open(tab, f"{running['board']}/calls?session={session}", "Calls", 1, 1, "session")
    _read_as_a_person(tab, "the session view", money=True)
    assert f"Session {session}" in tab.evaluate(TEXT)


def _landed(tab: Any, *, title: str, path: str, start: str, end: str, filters: list[str],
            extra: dict[str, str] | None = None) -> None:
    """The page, range and filters a link landed on (after the page rewrote it to canonical form)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        state, query = tab.evaluate(DRAWN), parse_qs(urlparse(tab.url).query)
        if (state["script"] == "notRunning" and state["title"] == title and not state["running"]
                and query.get("range") == ["custom"]):
            break
        assert not state["errors"], state["errors"][0]
        assert time.monotonic() < deadline, f"{tab.url} did not land on {title}: {state}"
        time.sleep(0.5)
    assert urlparse(tab.url).path.rstrip("/") == f"/{path}".rstrip("/"), tab.url
    assert sorted(query.get("f", [])) == sorted(filters), tab.url
    for name, value in (extra or {}).items():
        assert query.get(name) == [value], (name, tab.url)
    sidebar = tab.evaluate(SIDEBAR)
    assert f"{start} → {end} UTC" in sidebar, sidebar
    for item in filters:
        dimension, _, value = item.partition(":")
        assert f"{label(dimension)} = {value}" in sidebar, sidebar


def test_links_of_a_weekly_report_and_a_slack_message_land_where_they_say(
        running: dict[str, str], tab: Any, wh: Any, settings: Any) -> None:
    from alerts.message import chart_url, render
    from alerts.report.content import build_report
    from alerts.report.model import Audience
    from alerts.report.render import render as render_report
    from alerts.report.week import Week

    board = running["board"]
    week = Week.containing(datetime.now(UTC) - timedelta(days=7))
    cfg = settings.model_copy(update={"report": settings.report.model_copy(update={"dashboard_url": board})})
    followed = 0
    for audience in (Audience("*"), Audience("search")):
        html = render_report(build_report(wh, cfg, week, audience)).html
        hrefs = sorted(set(re.findall(r'href="([^"]+)"', html)))
        assert hrefs, "the report links to nothing"
        for href in hrefs:
            tab.goto(href.replace("&amp;", "&"))
            _landed(tab, title="Overview", path="", start=f"{week.start:%Y-%m-%d} 00:00",
                    end=f"{week.end:%Y-%m-%d} 00:00", filters=[] if audience.team is None else [f"team:{audience.team}"])
            followed += 1

    detail = _incident(running["api"])
    incident, last = detail["incident"], detail["events"]["rows"][-1]
    scope = incident["scope"] if isinstance(incident["scope"], dict) else {p["key"]: p["value"] for p in incident["scope"]}
    payload = {**incident, "scope": scope, "title": incident["signal"], "kind": last["kind"], "at": last["at"],
               "severity": "critical", "value_text": "1", "threshold_text": "1", "series": [],
               "opened_at": incident["opened_at"]}
    payload["chart_url"] = chart_url(board, payload)
    _, blocks = render(payload, reply=False)
    slack_links = re.findall(r"<([^|>]+)\|", str(blocks))
    assert slack_links, "the Slack message links to nothing"
    at = datetime.fromisoformat(last["at"].replace("Z", "+00:00"))
    dims = [f"{k}:{v}" for k, v in scope.items() if k in links.DIMENSIONS]
    for link in slack_links:
        tab.goto(link.replace("&amp;", "&"))
        _landed(tab, title="Alerts", path="alerts", start=f"{at.date() - timedelta(days=1)} 00:00",
                end=f"{at.date() + timedelta(days=2)} 00:00", filters=dims,
                extra={"incident": incident["incident_id"]})
        assert f"Incident {incident['incident_id']}" in tab.evaluate(TEXT)
        followed += 1
    assert followed >= 3
