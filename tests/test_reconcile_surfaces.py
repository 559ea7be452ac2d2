"""Reconciliation where a user meets it — `llmledger reconcile`, `GET /v1/reconciliation`, the
dashboard's Reconciliation page and the weekly report — over provider bills collected from the
local stand-ins of the OpenAI and Anthropic admin APIs and calls pushed through the service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from rich.console import Console

from alerts.report.content import build_report
from alerts.report.model import COMPANY, Audience
from alerts.report.render import pct, render, usd
from alerts.report.week import Week
from collectors.runner import run_collector
from common import formatting as fmt
from llmledger.reconcile_cli import render as render_reconciliation
from llmledger.service.keys import KeyScope
from llmledger.service.reading import table
from tests.dashboard_support import page
from tests.factories import make_call, write_jsonl
from tests.servers import ANTHROPIC_KEY, OPENAI_KEY, ProviderServer, provider_server
from tests.service_support import REPO, Running, service_settings, start_in_thread
from tests.test_collectors_providers import NOV, UNTIL, configured
from warehouse.queries.reconciliation import capture, reconcile
from warehouse.queries.scope import Scope

RANGE = {"start": "2025-11-01", "end": "2025-11-06"}
NOV4 = datetime(2025, 11, 4, 9, tzinfo=UTC)


def calls() -> list[dict[str, Any]]:
    """What the gateway logged: key_a's three gpt-4o calls of Nov 4 (the usage export's 3,000 input,
    1,024 cached and 300 output tokens exactly), and a Sonnet call on Nov 2."""
    logged = [make_call(event_id=f"nov4-{i}", ts=f"2025-11-04T09:0{i}:00Z", provider="openai",
                        model="gpt-4o-2024-08-06", api_key_id="key_a", input_tokens=1000,
                        cache_read_tokens=cached, output_tokens=100)
              for i, cached in enumerate((341, 341, 342))]
    logged.append(make_call(event_id="nov2-sonnet", ts="2025-11-02T03:00:00Z", provider="anthropic",
                            model="claude-sonnet-4-20250514", api_key_id="apikey_01", input_tokens=20_100,
                            cache_read_tokens=20_000, output_tokens=1200))
    return logged


def logged_nov4() -> Decimal:
    return sum(calc_price(Usage(input_tokens=1000, cache_read_tokens=c, output_tokens=100), "gpt-4o-2024-08-06",
                          provider_id="openai", genai_request_timestamp=NOV4).total_price for c in (341, 341, 342))


@pytest.fixture(scope="module")
def stand_in() -> Iterator[ProviderServer]:
    with provider_server() as server:
        yield server


@pytest.fixture(scope="module")
def billed(store: Path, tmp_path_factory: pytest.TempPathFactory, stand_in: ProviderServer) -> Iterator[tuple[Running, str]]:
    """A service holding both providers' exports for Nov 1–5 and the logged calls; its admin token."""
    settings = service_settings(store, tmp_path_factory.mktemp("reconcile") / "home")
    for running in start_in_thread(settings):
        env = {"OPENAI_ADMIN_KEY": OPENAI_KEY, "ANTHROPIC_ADMIN_API_KEY": ANTHROPIC_KEY}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            collecting = configured(running.settings, stand_in)
            for name in ("openai", "anthropic"):
                assert run_collector(name, collecting, running.state.wh, since=NOV[1], until=UNTIL).ok
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        with running.client() as http:
            assert http.post("/v1/events", json=calls()).json()["accepted"] == 4
        running.wait_flushed()
        _, token = running.state.keys.create([KeyScope.ADMIN], name="tests")
        yield running, token


def test_the_api_answers_what_the_query_library_computes_per_project(billed: tuple[Running, str]) -> None:
    running, token = billed
    _, other = running.state.keys.create([KeyScope.READ], project="someone-else")
    _, own = running.state.keys.create([KeyScope.READ], project="default")
    start, end = NOV[1], UNTIL
    with running.client(token) as admin, running.client(own) as mine, running.client(other) as theirs:
        providers = admin.get("/v1/reconciliation/providers", params=RANGE).json()["rows"]
        rows = mine.get("/v1/reconciliation", params={**RANGE, "by": "model"}).json()["rows"]
        assert theirs.get("/v1/reconciliation", params=RANGE).json()["rows"] == []
        assert theirs.get("/v1/reconciliation/providers", params=RANGE).json()["rows"] == []
        assert admin.get("/v1/reconciliation", params={**RANGE, "by": "user_id"}).status_code == 422
    expected = capture(running.state.read_wh, Scope.all(), start, end).to_dicts()
    assert [(p["provider"], p["grain"], Decimal(p["billed_usd"]), Decimal(p["invisible_usd"])) for p in providers] == \
        [(p["provider"], p["grain"], p["billed_usd"], p["invisible_usd"]) for p in expected]
    model_rows = reconcile(running.state.read_wh, Scope.of("default"), start, end, by=["model"])
    assert len(rows) == model_rows.height and {r["grain"] for r in rows} == {"model"}
    gpt = next(r for r in rows if r["day"] == "2025-11-04" and r["provider"] == "openai" and r["model"] == "gpt-4o")
    assert Decimal(gpt["billed_usd"]) == Decimal("0.03") and Decimal(gpt["logged_usd"]) == logged_nov4()
    assert (gpt["provider_input_tokens"], gpt["logged_input_tokens"]) == (3000, 3000)
    assert (gpt["provider_cache_read_tokens"], gpt["logged_cache_read_tokens"]) == (1024, 1024)
    assert gpt["capture_rate"] == pytest.approx(float(logged_nov4() / Decimal("0.03")))


def test_the_dashboard_page_shows_capture_and_invisible_spend(billed: tuple[Running, str]) -> None:
    running, token = billed
    at = page("reconciliation", running.url, key=token,
              query={"range": "custom", "from": "2025-11-01", "to": "2025-11-05"})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    summary = capture(running.state.read_wh, Scope.all(), NOV[1], UNTIL).rows_by_key("provider", named=True)
    shown = {m.label: m.value for m in at.metric}
    assert shown["openai capture"] == fmt.percent(summary["openai"][0]["capture_rate"])
    assert shown["anthropic capture"] == fmt.percent(summary["anthropic"][0]["capture_rate"])
    invisible = at.dataframe[1].value  # the rows with invisible spend, largest first
    rows = reconcile(running.state.read_wh, Scope.all(), NOV[1], UNTIL)
    assert len(invisible) == rows.filter(rows["invisible_usd"] > 0).height
    assert invisible["invisible_usd"].iloc[0] == fmt.money(rows["invisible_usd"].max())  # cells are formatted text
    assert any("no logged call explains" in w.value for w in at.warning)


def test_the_dashboard_page_says_what_to_configure_without_bills(empty_service: Running) -> None:
    at = page("reconciliation", empty_service.url)
    assert not at.exception and not at.error
    assert any("No provider cost exports" in i.value for i in at.info)


def test_the_weekly_report_has_the_bills_line(billed: tuple[Running, str]) -> None:
    running, _ = billed
    week = Week.parse("2025-W45")  # Mon 3 – Sun 9 November
    report = build_report(running.state.read_wh, running.settings, week, Audience(COMPANY),
                          now=datetime(2025, 11, 11, tzinfo=UTC))
    expected = capture(running.state.read_wh, Scope.all(), week.start, week.end).rows_by_key("provider", named=True)
    bills = {b.provider: b for b in report.bills or ()}
    assert set(bills) == {"openai", "anthropic"}
    assert bills["openai"].billed_usd == expected["openai"][0]["billed_usd"] == Decimal("1.28")  # Nov 4 + Nov 5
    assert bills["openai"].logged_usd == logged_nov4()
    text = render(report).text
    assert "PROVIDER BILLS AGAINST LOGGED CALLS" in text
    openai = expected["openai"][0]
    assert (f"- openai: billed $1.28, logged {usd(logged_nov4())} (capture {pct(openai['capture_rate'], 1)}); "
            f"invisible {usd(openai['invisible_usd'])}, compared by api_key_id, model and day") in text
    team = build_report(running.state.read_wh, running.settings, week, Audience("search"),
                        now=datetime(2025, 11, 11, tzinfo=UTC))
    assert team.bills is None and "PROVIDER BILLS" not in render(team).text  # bills are not split by team


def test_the_cli_prints_capture_and_the_largest_invisible_spend(billed: tuple[Running, str]) -> None:
    running, _ = billed
    wh = running.state.read_wh
    providers = table(capture(wh, Scope.all(), NOV[1], UNTIL)).rows
    rows = table(reconcile(wh, Scope.all(), NOV[1], UNTIL)).rows
    out = Console(record=True, width=140)
    render_reconciliation(out, NOV[1], UNTIL, providers, rows, top=3)
    text = out.export_text()
    assert "│ openai    │ api_key_id, model │ 4    │ $2.30  │" in text
    assert "invisible spend (billed, not logged), largest first" in text
    first = text.split("largest first", 1)[1].splitlines()[4]  # the largest: Anthropic's web search line
    assert "2025-11-01" in first and "anthropic" in first and "(not per model)" in first and "$10.00" in first
    assert "… and 8 more rows" in text
    empty = Console(record=True, width=140)
    render_reconciliation(empty, NOV[1], UNTIL, [], [])
    assert "no provider cost exports in this range" in empty.export_text()


def _cli(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LLMLEDGER_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    environment.pop("LLMLEDGER_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "llmledger", *args], cwd=home.parent, env=environment,
                          capture_output=True, text=True, timeout=180)


def test_the_cli_as_a_cron_user_runs_it(tmp_path: Path, stand_in: ProviderServer) -> None:
    home = tmp_path / "home"
    env = {"OPENAI_ADMIN_KEY": OPENAI_KEY, "ANTHROPIC_ADMIN_API_KEY": ANTHROPIC_KEY,
           "LLMLEDGER_COLLECTORS__OPENAI__ENABLED": "true",
           "LLMLEDGER_COLLECTORS__OPENAI__BASE_URL": f"{stand_in.url}/v1",
           "LLMLEDGER_COLLECTORS__ANTHROPIC__ENABLED": "true",
           "LLMLEDGER_COLLECTORS__ANTHROPIC__BASE_URL": stand_in.url}
    collected = _cli(home, "collect", "--since", "2025-11-01", "--until", "2025-11-06", env=env)
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    ingested = _cli(home, "ingest", str(write_jsonl(tmp_path / "calls.jsonl", calls())), env=env)
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    answer = _cli(home, "reconcile", "--since", "2025-11-01", "--until", "2025-11-06", "--json", env=env)
    assert answer.returncode == 0, answer.stderr[-2000:]
    body = json.loads(answer.stdout)
    providers = {p["provider"]: p for p in body["providers"]}
    assert (providers["openai"]["grain"], Decimal(providers["openai"]["billed_usd"])) == (
        "api_key_id, model", Decimal("2.2978456789012345"))
    assert providers["anthropic"]["grain"] == "api_key_id, model"  # the analytics API (the default) bills per key
    gpt = next(r for r in body["rows"] if r["day"] == "2025-11-04" and r["api_key_id"] == "key_a")
    assert Decimal(gpt["logged_usd"]) == logged_nov4() and Decimal(gpt["billed_usd"]) == Decimal("0.03")
    refused = _cli(home, "reconcile", "--by", "team", env=env)
    assert refused.returncode == 2 and "api_key_id" in refused.stderr
