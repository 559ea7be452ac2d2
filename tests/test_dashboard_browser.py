"""What a person sees: `llmledger up --demo` (a small simulated month) with its dashboard, every page
opened in headless Chromium (Playwright driving Debian's /usr/bin/chromium), waited on until its
charts are drawn, checked for errors and saved as a screenshot under test-artifacts/."""

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
PAGES = {"": ("Overview", 4), "attribution": ("Attribution", 5), "caching": ("Prompt caching", 2),
         "latency": ("Latency", 4), "routing": ("Reasoning & routing", 5), "nodes": ("Self-hosted nodes", 7),
         "health": ("Alerts & data health", 0)}
# settled: no spinner, skeleton or running indicator, and every Plotly chart has drawn its SVG
SETTLED = """() => {
  const busy = document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-testid="stSkeleton"]');
  const plots = document.querySelectorAll('.js-plotly-plot').length;
  const drawn = document.querySelectorAll('.js-plotly-plot .main-svg').length;
  return !busy && !!document.querySelector('h1') && drawn >= plots;
}"""


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
            for path, (title, charts) in PAGES.items():
                tab.goto(f"{running}/{path}")
                started, settled = time.monotonic(), 0
                while settled < 3:  # three quiet checks in a row
                    settled = settled + 1 if tab.evaluate(SETTLED) else 0
                    assert time.monotonic() - started < 90, f"{title} did not settle"
                    time.sleep(0.3)
                shot = ARTIFACTS / f"dashboard-{path or 'overview'}.png"
                tab.screenshot(path=str(shot))
                assert tab.locator("h1").first.inner_text() == title
                assert tab.locator('[data-testid="stException"]').count() == 0, f"{title} shows a traceback"
                assert tab.locator(".js-plotly-plot").count() >= charts, title
                assert shot.stat().st_size > 20_000
        finally:
            browser.close()
