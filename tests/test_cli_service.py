"""Operating the embedded default: `llmledger up` holds the store (a real subprocess with its dashboard),
and every command of the README's command table runs against it through the automatic API path —
found from the store's lock file, no flag, no key — exiting 0 with its documented output. Alert
actions change what the API the dashboards read shows; creating the first key leaves the dashboard
working; a visitor of a dashboard served beyond localhost signs in once and stays signed in across
reloads and deep links.

One `up` for the module (small, pinned data: 40 calls in November 2025, a budget they overrun, a
stand-in vLLM endpoint); commands run in this process through the CLI's entry point, so each costs
a request, not an interpreter start."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.servers import FIXTURES, MetricsServer
from tests.service_support import REPO, free_port

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
BUDGET = '[{"team": "ops", "monthly_usd": "0.01"}]'


@dataclass
class Up:
    """The running `llmledger up` and how to talk to it."""

    home: Path
    url: str
    dashboard: str
    process: subprocess.Popen[bytes]
    log: Path
    ran: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LLMLEDGER_")}
        return {**environment, "LLMLEDGER_HOME": str(self.home), "PYTHONPATH": str(REPO)}

    def cli(self, *args: str) -> str:
        """Run `llmledger ARGS` (the CLI's own entry point, in this process) with this home; its output."""
        from llmledger.cli import app
        from llmledger.settings import get_settings

        self.ran.update({args[0], " ".join(args[:2])})
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, list(args), env={**self.env(), "COLUMNS": "200"}, catch_exceptions=False)
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0, f"llmledger {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        assert "through the llmledger service" in result.stderr or args[0] == "simulate"
        return result.stdout

    def api(self, path: str, **params: object) -> dict:
        """What the dashboards read (with the per-run token the lock file holds)."""
        token = _lock_fields(self.home)["token"]
        answer = httpx.get(f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                           timeout=30)
        answer.raise_for_status()
        return answer.json()


def _lock_fields(home: Path) -> dict[str, str]:
    lines = (home / "warehouse.lock").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines[2:] if "=" in line)


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def metrics() -> Iterator[MetricsServer]:
    """A stand-in vLLM node for `llmledger collect`."""
    server = MetricsServer()
    server.bodies["/metrics"] = [(FIXTURES / f"vllm/scrape_{i}.txt").read_text() for i in range(1, 5)]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, metrics: MetricsServer) -> Iterator[Up]:
    """`llmledger up` with its dashboard on an empty embedded store (scheduler off: the test drives
    every job itself, at pinned instants)."""
    home = tmp_path_factory.mktemp("operate") / "home"
    home.mkdir()
    api, board = free_port(), free_port()
    log = home.parent / "up.log"
    state = Up(home, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{board}", None, log)  # type: ignore[arg-type]
    env = {**state.env(), "LLMLEDGER_SCHEDULER__ENABLED": "false", "LLMLEDGER_SIGNALS__BUDGETS": BUDGET,
           "LLMLEDGER_SERVICE__FLUSH_INTERVAL_S": "0.2", "LLMLEDGER_COLLECTORS__VLLM__ENABLED": "true",
           "LLMLEDGER_COLLECTORS__VLLM__TARGETS": json.dumps([{"url": f"{metrics.url}/metrics", "node": "gpu-1"}])}
    env.pop("LLMLEDGER_API_KEY", None)
    state.process = subprocess.Popen(
        [sys.executable, "-m", "llmledger", "up", "--port", str(api), "--dashboard-port", str(board)],
        cwd=home.parent, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait(f"{state.url}/health", state.process, log)
        _wait(f"{state.dashboard}/_stcore/health", state.process, log)
        yield state
    finally:
        _stop(state.process)


def _calls(path: Path) -> Path:
    """40 calls over three November 2025 days: team ops overruns its $0.01 budget."""
    rows = [{"event_id": f"e{i}", "ts": f"2025-11-{18 + i % 3:02d}T{8 + i % 10:02d}:{i:02d}:00Z", "provider": "openai",
             "model": "gpt-4o", "team": "ops" if i % 2 else "search", "route": "/chat" if i % 3 else "nightly-batch",
             "user_id": f"u{i % 5}", "input_tokens": 2000 + i, "output_tokens": 300, "latency_ms": 900 + i,
             "ttft_ms": 200} for i in range(40)]
    rows.append({"event_id": "bad", "ts": "2025-11-19T10:00:00Z", "model": "gpt-4o", "input_tokens": -1})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _readme_verbs() -> set[str]:
    """The commands of the README's command table (`collectors status`, `import helicone`, `up`, …)."""
    text = (REPO / "README.md").read_text()
    verbs = set()
    for row in text[text.index("## Commands"):text.index("## Configuration")].splitlines():
        if not row.startswith("| `llmledger"):
            continue
        group = None
        for code in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            words = code.split()
            if words[0] == "llmledger":
                words = words[1:]
                group = words[0]
            elif words[0] != group:  # `status` after `llmledger collectors list`
                words = [str(group), *words]
            sub = words[1] if len(words) > 1 and re.fullmatch(r"[a-z][a-z\\|-]*", words[1]) else None
            verbs |= {f"{group} {name}" for name in sub.split("\\|")} if sub else {str(group)}
    return verbs


def test_the_first_key_leaves_the_running_dashboard_working(up: Up) -> None:
    """The dashboard `up` started reads with its own key: creating the first API key (which makes
    every request need one) does not lock it out."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            tab = browser.new_page()
            tab.goto(f"{up.dashboard}/health")
            tab.get_by_role("heading", name="Data health").wait_for(timeout=120_000)
            assert httpx.get(f"{up.url}/v1/totals", params={"start": "2025-11-01", "end": "2025-12-01"}).status_code == 200
            created = json.loads(up.cli("keys", "create", "--scope", "admin", "--name", "first"))
            assert created["token"].startswith("llk_")
            assert httpx.get(f"{up.url}/v1/totals", params={"start": "2025-11-01", "end": "2025-12-01"}).status_code == 401
            tab.goto(f"{up.dashboard}/attribution?dim=team")  # new reads, none cached
            tab.get_by_role("heading", name="Attribution").wait_for(timeout=120_000)
            _settled(tab)
            assert tab.get_by_text("API key (read scope)").count() == 0
            assert tab.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()


def _settled(tab) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 120
    while tab.locator('[data-testid="stStatusWidget"], [data-testid="stSpinner"]').count():
        assert time.monotonic() < deadline, "the page kept running"
        time.sleep(0.3)


def test_every_command_goes_through_the_running_service(up: Up, tmp_path: Path) -> None:
    cli = up.cli
    # writes: a file streamed to the service, imports of every kind
    out = cli("ingest", str(_calls(tmp_path / "calls.jsonl")))
    assert "40 written" in out and "dead letter negative_tokens: 1" in out
    assert "through the llmledger service" not in out  # the notice goes to stderr, results to stdout
    for importer, path, extra in (
        ("litellm-spend-logs", "litellm/spend_logs.csv", []), ("helicone", "helicone/requests.json", []),
        ("portkey", "portkey/logs.jsonl", []), ("openrouter", "openrouter/generations.jsonl", []),
        ("mapped", "mapped/acme_calls.csv", ["--mapping", str(FIXTURES / "mapped/acme.toml")]),
        ("nvidia-smi", "nvidia_smi/query_with_header.csv", ["--node", "gpu-1"]),
    ):
        assert f"{importer}: ok" in cli("import", importer, str(FIXTURES / path), *extra)
    assert "vllm: ok" in cli("collect", "vllm")
    assert re.search(r"vllm +│ scrape +│ yes", cli("collectors", "list"))  # the service's settings enable it
    assert "vllm" in cli("collectors", "status")
    assert "cursor reset" in cli("collectors", "reset", "vllm")

    # the store's upkeep
    assert "price cells" in cli("prices", "load")
    assert re.search(r"repriced \d+ calls", cli("reprice", "--since", "2025-11-01", "--until", "2025-12-01"))
    assert "up to date" in cli("migrate")
    assert "checked" in cli("rollups", "refresh")
    assert "rebuilt 202511" in cli("rollups", "rebuild", "202511")
    assert "rollups.refresh: ok" in cli("jobs", "run", "rollups.refresh")
    assert "rollups.refresh" in cli("jobs", "list")
    assert "rollups.refresh" in cli("jobs", "history")

    # reads
    assert "cost attribution" in cli("summary", "--days", "3650")
    assert "Budget" in cli("signals", "evaluate", "--at", "2025-11-20T12:00:00")
    listed = cli("signals", "list")
    assert re.search(r"budget +│ 50%, 80% of budget +│ 100% of budget .*5-min steps \(scheduler off\)", listed)

    # alert actions, seen by the API the dashboards read
    incident = next(r for r in up.api("/v1/alerts")["rows"] if r["signal"] == "budget")  # a crossing or a forecast
    assert incident["incident_id"] in cli("alerts", "list", "--signal", "budget")
    assert "Probable cause" in cli("alerts", "show", incident["incident_id"])
    assert "acknowledged" in cli("alerts", "ack", incident["incident_id"], "--by", "oncall")
    (acked,) = [r for r in up.api("/v1/alerts")["rows"] if r["incident_id"] == incident["incident_id"]]
    assert acked["acked_by"] == "oncall"
    made = cli("alerts", "silence", "--for", "2h", "--by", "oncall", "--signal", "budget", "--scope", "team=ops")
    silence_id = re.search(r"silence (\w+):", made).group(1)  # type: ignore[union-attr]
    (active,) = up.api("/v1/silences")["rows"]
    assert active["silence_id"] == silence_id and active["created_by"] == "oncall"
    assert silence_id in cli("alerts", "silences")
    assert "lifted" in cli("alerts", "unsilence", silence_id)
    assert up.api("/v1/silences")["rows"] == []
    assert "logged" in cli("alerts", "deliver")
    assert "re-queued 0" in cli("alerts", "retry")

    # reports, advice, exports: made by the service, written here
    report = json.loads(cli("report", "weekly", "--week", "2025-W47", "--team", "ops", "--dry-run",
                            str(tmp_path / "report"), "--json").strip().splitlines()[-1])
    assert report["written"] == 1 and (tmp_path / "report" / "2025-W47" / "ops" / "email.html").is_file()
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({"score": round(0.05 + i / 210, 4), "cheap_input_tokens": 900,
                                          "cheap_output_tokens": 200, "frontier_input_tokens": 900,
                                          "frontier_output_tokens": 250}) + "\n" for i in range(200)))
    assert "recommended threshold" in cli("routing", "advise", "--route", "/chat", "--replay", str(replay), "--cheap",
                                          "openai/gpt-4o-mini", "--frontier", "openai/gpt-4o",
                                          "--monthly-requests", "10000")
    focus = tmp_path / "focus.csv"
    assert "FOCUS rows" in cli("export", "focus", "--since", "2025-11-01", "--until", "2025-12-01", "--out", str(focus))
    assert focus.read_text().startswith("BilledCost") or "BilledCost" in focus.read_text().splitlines()[0]
    assert re.search(r"\d+ calls ->", cli("export", "calls", "--since", "2025-11-01", "--until", "2025-12-01",
                                          "--out", str(tmp_path / "calls.parquet")))

    if "reconcile" in _readme_verbs():  # provider bills against logged calls (its own branch)
        cli("reconcile", "--since", "2025-11-01", "--until", "2025-12-01")

    # keys, the demo and files
    key = json.loads(cli("keys", "create", "--scope", "read", "--name", "viewer"))
    assert key["key_id"] in cli("keys", "list")
    assert f"revoked {key['key_id']}" in cli("keys", "revoke", key["key_id"])
    assert "ingested" in cli("demo", "--days", "1", "--calls-per-day", "100")
    assert "wrote" in cli("simulate", "--out", str(tmp_path / "sim"), "--days", "1", "--calls-per-day", "100")

    # a second `up` says where the first one runs
    again = subprocess.run([sys.executable, "-m", "llmledger", "up", "--port", str(free_port()), "--no-dashboard"],
                           env=up.env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and f"llmledger is already running at {up.url}" in again.stderr, again.stderr
    up.ran.add("up")
    up.ran.add("dashboard")  # test_a_visitor_signs_in_once runs it
    missing = _readme_verbs() - up.ran
    assert not missing, f"README commands not run here: {sorted(missing)}"


def test_failures_are_one_or_two_lines(up: Up) -> None:
    environment = {**up.env(), "LLMLEDGER_API_KEY": ""}
    for args, says in ((["alerts", "ack", "nope", "--by", "me"], "no open incident"),
                       (["summary", "--api", "http://127.0.0.1:9"], "cannot reach the llmledger service")):
        done = subprocess.run([sys.executable, "-m", "llmledger", *args], env=environment, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 1 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 3, done.stderr


def test_a_visitor_signs_in_once(up: Up) -> None:
    """`llmledger dashboard` beyond localhost finds the service by itself; a visitor signs in with a
    read key, and reloads and a deep link keep them signed in (an HttpOnly session cookie) until they
    sign out."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium")
    from playwright.sync_api import sync_playwright

    key = json.loads(up.cli("keys", "create", "--scope", "read", "--name", "visitor"))["token"]
    port = free_port()
    log = up.home.parent / "dashboard.log"
    process = subprocess.Popen([sys.executable, "-m", "llmledger", "dashboard", "--host", "0.0.0.0", "--port", str(port)],
                               cwd=up.home.parent, env=up.env(), stdout=log.open("wb"), stderr=subprocess.STDOUT)
    board = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{board}/_stcore/health", process, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            try:
                context = browser.new_context()
                tab = context.new_page()
                tab.goto(f"{board}/latency?dim=model")
                tab.get_by_label("API key (read scope)").fill(key)
                tab.get_by_role("button", name="Open the dashboard").click()
                tab.get_by_role("heading", name="Latency").wait_for(timeout=120_000)
                assert "/latency" in tab.url and "dim=model" in tab.url
                (cookie,) = [c for c in context.cookies() if c["name"] == "llmledger_session"]
                assert cookie["httpOnly"] and key not in cookie["value"]
                tab.reload()
                tab.get_by_role("heading", name="Latency").wait_for(timeout=120_000)
                assert tab.get_by_text("API key (read scope)").count() == 0
                deep = context.new_page()
                deep.goto(f"{board}/attribution?dim=team")
                deep.get_by_role("heading", name="Attribution").wait_for(timeout=120_000)
                assert deep.get_by_text("API key (read scope)").count() == 0
                deep.get_by_role("button", name="Sign out").click()
                deep.get_by_label("API key (read scope)").wait_for(timeout=120_000)
                assert not [c for c in context.cookies() if c["name"] == "llmledger_session"]
            finally:
                browser.close()
    finally:
        _stop(process)
