"""The read endpoints the dashboards added, on the real service over simulated weeks: each answers
what its query function computes (money as exact decimal strings), refuses parameters outside its
allow-lists, respects a key's project, and tags its queries with the page that asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from starlette.requests import Request

from common import formatting as fmt
from llmledger.demo import truth_file
from llmledger.service.keys import KeyScope
from llmledger.service.reading import query_tag
from llmledger.settings import SchedulerSettings
from llmledger.simulator import GroundTruth
from tests.service_support import Running, service_settings, start_in_thread
from warehouse.queries import alerts, calls, caching, distributions, nodes, ops, routing, selfhost, series, spend
from warehouse.queries.scope import Scope

ALL = Scope.all()


def _window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(days=30), end


def _get(svc: Running, path: str, params: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    with svc.client(token) as http:
        response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _busiest_session(wh: Any) -> str:
    return str(wh.scalar("SELECT session_id FROM calls WHERE session_id != '' GROUP BY session_id "
                         "ORDER BY count() DESC, session_id LIMIT 1"))


def _same(rows: list[dict[str, Any]], frame: Any) -> None:
    """API rows equal the frame's: decimals exactly, floats closely, the rest as they are."""
    assert len(rows) == frame.height
    for got, want in zip(rows, frame.to_dicts(), strict=True):
        for column, value in want.items():
            if isinstance(value, Decimal):
                assert Decimal(got[column]) == value, column
            elif isinstance(value, float) and value != value:
                assert got[column] is None, column  # NaN is written as null
            elif isinstance(value, float):
                assert got[column] == pytest.approx(value, rel=1e-9), column
            elif isinstance(value, datetime):
                assert got[column].startswith(value.strftime("%Y-%m-%dT%H:%M:%S")), column
            else:
                assert got[column] == value, column


def test_each_endpoint_answers_what_its_query_computes(demo_service: Running) -> None:
    wh, (start, end) = demo_service.state.read_wh, _window()
    r = {"start": start.isoformat(), "end": end.isoformat()}
    cases = [
        ("/v1/spend/heatmap", {}, spend.spend_heatmap(wh, ALL, start, end)),
        ("/v1/movers", {"dimension": "user_id", "n": 5}, spend.movers(wh, ALL, "user_id", start, end, n=5)),
        ("/v1/cache/windows", {"grain": "day", "by": ["route", "model"]},
         caching.cache_windows(wh, ALL, start, end, grain="day", by=["route", "model"])),
        ("/v1/cache/savings", {"by": ["route"]}, caching.cache_savings(wh, ALL, start, end, by=["route"])),
        ("/v1/prompt-versions", {}, caching.prompt_versions(wh, ALL, start, end)),
        ("/v1/distribution", {"measure": "output_tokens", "dimension": "model"},
         distributions.token_quantiles(wh, ALL, start, end, measure="output_tokens", dimension="model")),
        ("/v1/histogram", {"measure": "input_tokens", "dimension": "route"},
         distributions.token_histogram(wh, ALL, start, end, measure="input_tokens", dimension="route")),
        ("/v1/reasoning/outliers", {"n": 5}, distributions.reasoning_outliers(wh, ALL, start, end, n=5)),
        ("/v1/cascade/series", {"grain": "day"}, routing.cascade_series(wh, ALL, start, end, grain="day")),
        ("/v1/cascade/steps", {}, routing.cascade_steps(wh, ALL, start, end)),
        ("/v1/cascade/frontier", {}, routing.frontier_cost(wh, ALL, start, end)),
        ("/v1/latency/series", {"grain": "day", "dimension": "provider"},
         series.latency_series(wh, ALL, start, end, grain="day", dimension="provider")),
        ("/v1/unpriced", {}, ops.unpriced_models(wh, ALL, start, end)),
        ("/v1/nodes/gpu", {"step_s": 86_400}, nodes.gpu_utilisation(wh, ALL, start, end, step_s=86_400)),
        ("/v1/nodes/cost", {}, nodes.self_host_cost(wh, ALL, start, end)),
        ("/v1/nodes/breakeven", {}, nodes.breakeven_inputs(wh, ALL, start, end)),
        ("/v1/usage/infra", {"dimension": "user_id"}, nodes.infra_by(wh, ALL, "user_id", start, end)),
        ("/v1/usage/infra", {"dimension": "route", "filter": "team:platform"},
         nodes.infra_by(wh, ALL, "route", start, end, {"team": ["platform"]})),
        ("/v1/usage/infra", {"dimension": "provider", "grain": "day"},
         nodes.infra_by(wh, ALL, "provider", start, end, grain="day")),
        ("/v1/nodes/finding", {}, selfhost.self_hosted_vs_api(wh, ALL, start, end)),
        ("/v1/incidents", {}, alerts.incidents_between(wh, ALL, start, end)),
        ("/v1/sessions/" + _busiest_session(wh), {}, calls.session_calls(wh, ALL, _busiest_session(wh), start, end)),
        ("/v1/calls", {"filter": ["team:data", "status:ok"], "order": "slowest", "limit": 30, "min_cost_usd": "0.001"},
         calls.calls_page(wh, ALL, start, end, {"team": ["data"], "status": ["ok"]}, order="slowest", limit=30,
                          ranges=calls.Ranges(min_cost_usd=Decimal("0.001")))[0]),
    ]
    for path, params, expected in cases:
        assert not expected.is_empty(), path  # the simulated weeks have something for every endpoint
        _same(_get(demo_service, path, {**r, **params})["rows"], expected)

    body = _get(demo_service, "/v1/spend", {"at": end.isoformat(), "filter": ["team:data"]})
    _same(body["rows"], spend.spend_periods(wh, ALL, end, {"team": ["data"]}))
    assert isinstance(body["rows"][0]["month_usd"], str)
    prices = _get(demo_service, "/v1/price-list", {"model": ["gpt-4o"], "like": "llama-3.1-70b"})["rows"]
    assert {"gpt-4o", "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"} <= {p["model"] for p in prices}


def test_calls_page_by_cursor_and_stay_in_their_project(demo_service: Running) -> None:
    start, end = _window()
    r = {"start": start.isoformat(), "end": end.isoformat(), "filter": ["route:support-chat"], "limit": 40}
    first = _get(demo_service, "/v1/calls", r)
    second = _get(demo_service, "/v1/calls", {**r, "cursor": first["next_cursor"]})
    assert len(first["rows"]) == 40 and first["next_cursor"] and second["rows"]
    newest_second = max(row["ts"] for row in second["rows"])
    assert newest_second <= min(row["ts"] for row in first["rows"])  # newest first, no overlap
    assert not {row["event_id"] for row in first["rows"]} & {row["event_id"] for row in second["rows"]}
    assert not {"prompt", "response", "messages", "content", "input", "output"} & set(first["columns"])  # no text
    with demo_service.client() as http:
        assert http.get("/v1/calls", params={**r, "cursor": "bogus"}).status_code == 422
        assert http.get("/v1/calls", params={**r, "order": "costliest", "cursor": first["next_cursor"]}
                        ).status_code == 422  # a cursor of another order
        assert http.get("/v1/calls", params={**r, "min_cost_usd": "2", "max_cost_usd": "1"}).status_code == 422
    key, token = demo_service.state.keys.create([KeyScope.READ], project="acme-app", name="calls")
    try:
        mine = _get(demo_service, "/v1/calls", {**r, "filter": [], "limit": 200}, token)["rows"]
        assert mine and {row["project"] for row in mine} == {"acme-app"}
    finally:
        demo_service.state.keys.revoke(key.key_id)


def test_parameters_outside_the_allow_lists_are_refused(demo_service: Running) -> None:
    start, end = _window()
    r = {"start": start.isoformat(), "end": end.isoformat()}
    bad = [("/v1/cache/windows", {"by": ["prompt; DROP TABLE calls"]}), ("/v1/distribution", {"measure": "cost_usd"}),
           ("/v1/movers", {"dimension": "ts"}), ("/v1/nodes/gpu", {"step_s": 1}), ("/v1/cascade/series", {"grain": "2h"}),
           ("/v1/latency/series", {"filter": ["nope:x"]}), ("/v1/alerts", {"state": "sideways"}),
           ("/v1/calls", {"order": "random"}), ("/v1/calls", {"limit": 100_000}), ("/v1/usage/infra", {"dimension": "route", "grain": "5min"})]
    with demo_service.client() as http:
        for path, params in bad:
            assert http.get(path, params={**r, **params}).status_code == 422, path
    assert demo_service.rows("SELECT count() FROM calls")[0][0] > 0


def test_a_project_key_reads_only_its_project(demo_service: Running) -> None:
    key, token = demo_service.state.keys.create([KeyScope.READ], project="acme-app", name="scoped")
    try:
        start, end = _window()
        r = {"start": start.isoformat(), "end": end.isoformat()}
        routes = {row["route"] for row in _get(demo_service, "/v1/cache/savings", {**r, "by": ["route"]}, token)["rows"]}
        assert routes and "code-assist" not in routes  # an acme-internal route
        assert _get(demo_service, "/v1/nodes/gpu", r, token)["rows"] == []  # the nodes serve acme-internal
        with demo_service.client(token) as http:
            assert http.get("/v1/dead-letters/counts", params=r).status_code == 403
    finally:
        demo_service.state.keys.revoke(key.key_id)


def test_alerts_carry_the_incidents_of_the_simulated_weeks(demo_service: Running) -> None:
    body = _get(demo_service, "/v1/alerts", {"state": "all", "limit": 500})
    assert body["engine"] is True
    signals = {row["signal"] for row in body["rows"]}
    # at this small volume the windowed signals' volume guards keep some incidents quiet; these never are
    assert {"reasoning_runaway", "budget"} <= signals and len(body["rows"]) >= 3
    assert all(row["cause"] and row["next_step"] for row in body["rows"])
    open_only = _get(demo_service, "/v1/alerts", {"state": "open"})["rows"]
    assert {row["state"] for row in open_only} <= {"warning", "critical"}
    # the demo team's budget stays crossed until its month ends; a crossing of last month is resolved
    # (a forecast warning of the month now running is another period's incident)
    truth = GroundTruth.from_json(truth_file(demo_service.settings).read_text(encoding="utf-8"))
    month = truth.incident("budget_overrun").details["month"]
    budgets = [row for row in body["rows"] if row["signal"] == "budget" and f"period={month}" in row["scope_key"]]
    assert budgets, f"no budget incident for {month}"
    current = month == datetime.now(UTC).strftime("%Y-%m")
    assert any(row["signal"] == "budget" and f"period={month}" in row["scope_key"] for row in open_only) == current


def test_without_a_scheduler_or_any_evaluation_there_is_no_alert_engine(store: Path, tmp_path: Path) -> None:
    settings = service_settings(store, tmp_path / "home").model_copy(
        update={"scheduler": SchedulerSettings(enabled=False)})
    for running in start_in_thread(settings):
        body = _get(running, "/v1/alerts", {})
        assert body["engine"] is False and body["rows"] == [] and "no alert engine configured" in body["detail"]


def test_queries_are_tagged_with_the_page_that_asked() -> None:
    class Route:
        name = "usage"

    def request(headers: list[tuple[bytes, bytes]]) -> Request:
        return Request({"type": "http", "headers": headers, "route": Route()})

    import asyncio

    assert asyncio.run(query_tag(request([(b"x-llmledger-page", b"overview")]))) == "page:overview:usage"
    assert asyncio.run(query_tag(request([]))) == "api:usage"
    assert asyncio.run(query_tag(request([(b"x-llmledger-page", b"'; DROP")]))) == "api:usage"


def test_the_dashboard_client_keeps_money_exact(demo_service: Running) -> None:
    from dashboards.client import MONEY, Api, View

    start, end = _window()
    frame = Api(demo_service.url, page="caching").cache_savings(View(start, end), by=["model"])
    raw = _get(demo_service, "/v1/cache/savings", {"start": start.isoformat(), "end": end.isoformat(), "by": ["model"]})
    assert frame.schema["saved_usd"] == MONEY
    assert [str(v.normalize()) for v in frame["saved_usd"]] == [str(Decimal(r["saved_usd"]).normalize()) for r in raw["rows"]]
    windows = Api(demo_service.url).cache_windows(View(start, end), grain="day")
    assert windows.schema["bucket"] == pl.Datetime("us", "UTC")


def test_the_weekly_report_saves_what_the_overview_finds(demo_service: Running) -> None:
    """The self-hosted finding of the overview is the company report's savings item, from the same
    query; a team's report leaves the shared GPU fleet out."""
    from alerts.report.savings import opportunities, per_month
    from alerts.report.week import Week

    wh, settings = demo_service.state.read_wh, demo_service.settings
    week = Week.containing(datetime.now(UTC) - timedelta(days=7))
    found = [o for o in opportunities(wh, settings, ALL, week, None) if o.kind == "self_hosted_underused"]
    finding = selfhost.self_hosted_vs_api(wh, ALL, week.start, week.end).row(0, named=True)
    assert len(found) == 1 and found[0].saving_usd_month == per_month(finding["excess_usd"])
    assert f"GPUs {fmt.number(finding['util_pct'])}% utilised" in found[0].title
    assert "per 1M output tokens as run vs $" in found[0].evidence
    assert not [o for o in opportunities(wh, settings, ALL, week, {"team": ["platform"]})
                if o.kind == "self_hosted_underused"]
