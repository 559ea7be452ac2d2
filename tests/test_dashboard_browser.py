"""What a person sees: `llmledger up --demo` (a small simulated month) with its dashboard, every page
opened in headless Chromium (Playwright driving Debian's /usr/bin/chromium), waited on until its
charts and tables are drawn (or it shows an error), checked for errors and saved as a screenshot under test-artifacts/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service_support import REPO, free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
# per page: its title, the Plotly charts and the tables it draws on the demo month
PAGES = {"": ("Overview", 4, 0), "attribution": ("Attribution", 5, 1), "caching": ("Prompt caching", 2, 2),
         "latency": ("Latency", 4, 1), "routing": ("Reasoning & routing", 5, 3), "nodes": ("Self-hosted nodes", 7, 1),
         "health": ("Alerts & data health", 0, 1)}
# What the page has drawn, judged on the things the test asserts rather than on a quiet DOM: the
# script run finished (no running indicator or spinner), each Plotly chart has drawn its SVG (a drawn
# chart holds several .main-svg layers, so charts are counted, not layers), the tables are in the page
# (their grids draw lazily, and an empty one draws no canvas), or the page shows an exception.
DRAWN = """() => {
  const all = (s) => Array.from(document.querySelectorAll(s));
  const tables = all('[data-testid="stDataFrame"]');
  return {
    title: (document.querySelector('h1') || {}).innerText || null,
    running: all('[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-testid="stSkeleton"]').length,
    charts: all('.js-plotly-plot').length,
    drawn: all('.js-plotly-plot').filter((p) => p.querySelector('.main-svg')).length,
    tables: tables.length,
    errors: all('[data-testid="stException"]').length,
  };
}"""
WAIT_S = 120  # per page, on a loaded 2-core machine


def _settled(state: dict, title: str, charts: int, tables: int) -> bool:
    if state["errors"]:
        return True  # judged below: the page shows a traceback
    return (state["title"] == title and not state["running"] and state["charts"] >= charts
            and state["drawn"] >= state["charts"] and state["tables"] >= tables)


def _missing(state: dict, title: str, charts: int, tables: int) -> str:
    return (f"{title} did not finish drawing in {WAIT_S} s: title {state['title']!r}, {state['drawn']} of "
            f"{max(charts, state['charts'])} charts drawn, {state['tables']} of {tables} tables, "
            f"{'still running' if state['running'] else 'not running'}")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`llmledger up --demo` with its dashboard; yields the dashboard's URL."""
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
    url = f"http://127.0.0.1:{board}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llmledger up exited: {log.read_text()[-3000:]}")
            try:
                if (httpx.get(f"http://127.0.0.1:{api}/health", timeout=1).status_code == 200
                        and httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llmledger up did not start: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")
def test_every_page_draws_its_charts_in_a_browser(running: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1500, "height": 2600})
            for path, (title, charts, tables) in PAGES.items():
                tab.goto(f"{running}/{path}")
                started, settled, state = time.monotonic(), 0, {}
                while settled < 2:  # the same finished state twice, 0.5 s apart
                    state = tab.evaluate(DRAWN)
                    settled = settled + 1 if _settled(state, title, charts, tables) else 0
                    assert time.monotonic() - started < WAIT_S, _missing(state, title, charts, tables)
                    time.sleep(0.5)
                shot = ARTIFACTS / f"dashboard-{path or 'overview'}.png"
                tab.screenshot(path=str(shot))
                assert state["errors"] == 0, f"{title} shows a traceback (screenshot {shot})"
                assert tab.locator("h1").first.inner_text() == title
                assert tab.locator(".js-plotly-plot").count() >= charts, title
                assert tab.locator('[data-testid="stDataFrame"]').count() >= tables, title
                assert shot.stat().st_size > 20_000
        finally:
            browser.close()
