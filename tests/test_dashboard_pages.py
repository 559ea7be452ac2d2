"""Every dashboard page under Streamlit's AppTest against a real running service: the simulated
weeks render with their charts, numbers equal the read API's (as the shared formatting layer
writes them), total spend is API + GPU time, filters and drill-downs live in the URL, the calls
explorer pages and filters, the incident view silences and lifts, empty stores show what to
configure, and API failures are messages — never tracebacks."""

from __future__ import annotations

import json

from decimal import Decimal

import httpx
import polars as pl
import pytest
import streamlit as st
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from common import formatting as fmt
from dashboards.client import Api, View
from dashboards.tables import money_places
from dashboards.controls import now_minute, range_of
from llmledger.service.keys import KeyScope
from tests.dashboard_support import PAGES, charts, page, table
from tests.service_support import Running, free_port

pytestmark = pytest.mark.slow  # simulated weeks ingested and evaluated: scheduled first when parallel

MIN_CHARTS = {"overview": 4, "attribution": 5, "caching": 2, "latency": 4, "routing": 6, "nodes": 7, "calls": 0,
              "alerts": 0, "health": 0}


def _range() -> View:
    start, end = range_of("30d", end=now_minute())
    return View(start, end)


def _as_column(values: list) -> list[str]:
    """Money as a table column writes it (one precision per column)."""
    places = money_places(pl.Series([None if v is None else float(v) for v in values], dtype=pl.Float64))
    return [fmt.money(v, places=places) for v in values]


def _dollars(text: str) -> float:
    return float(text.replace("$", "").replace(",", "").replace("−", "-"))


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_the_simulated_weeks(demo_service: Running, name: str) -> None:
    at = page(name, demo_service.url)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(charts(at)) >= MIN_CHARTS[name]
    assert at.query_params["range"] == "30d"  # the time range is in the URL


def test_incidents_show_where_their_page_shows_them(demo_service: Running) -> None:
    routing = page("routing", demo_service.url)
    warnings = " ".join(w.value for w in routing.warning)
    assert "100,000 reasoning tokens" in warnings and "reasoning-qa" in warnings  # reasoning runaway
    stale = " ".join(w.value for w in [*routing.warning, *routing.info])  # current, or said to be over
    assert "cascade-v2 escalated" in stale and "gpt-4.1-mini" in stale  # stale routing
    caching = page("caching", demo_service.url)
    hit = json.loads(next(c for c in charts(caching) if "hit_ratio" in c.proto.id).proto.spec)
    collapsed = [t["meta"] for t in hit["data"] if min((y for y in t["y"] if y is not None), default=1) < 0.3]
    assert "assistant-chat · claude-sonnet-4-5" in collapsed  # cache hit collapse under the 0.3 line
    marks = [a.get("text", "") + a.get("hovertext", "") for a in hit["layout"]["annotations"]]
    assert any("v8" in m for m in marks)  # the prompt release marked


def test_overview_numbers_equal_the_read_api(demo_service: Running) -> None:
    at = page("overview", demo_service.url)
    api, view = Api(demo_service.url), _range()
    periods = api.periods(view).row(0, named=True)
    totals = api.totals(view).row(0, named=True)
    savings = api.cache_savings(view).row(0, named=True)
    infra = api.infra(view, "project")["infra_cost_usd"].sum()
    shown, notes = _metrics(at), {m.label: m.proto.delta for m in at.metric}
    assert infra > 0  # the demo's nodes cost money: every headline is API + GPU time
    assert shown["Spend in range"] == fmt.money(totals["cost_usd"] + infra)
    assert notes["Spend in range"] == f"{fmt.money(totals['cost_usd'])} API + {fmt.money(infra)} GPUs"
    assert notes["Month to date"].startswith(f"{fmt.money(periods['month_usd'])} API + ")
    assert shown["Calls in range"] == fmt.count(totals["calls"])
    assert shown["Cache savings in range"] == fmt.money(savings["net_saved_usd"])
    assert notes["Errors"] == f"{fmt.count(totals['errors'])} of {fmt.count(totals['calls'])} calls"
    finding = " ".join(w.value for w in at.warning)
    assert "Self-hosted llama-3.1-70b-instruct" in finding and "per 1M output tokens as run" in finding


def test_attribution_filters_live_in_the_url_and_equal_the_api(demo_service: Running) -> None:
    at = page("attribution", demo_service.url, query={"f": ["team:data"], "dim": "route", "measure": "calls"})
    assert not at.exception
    cells = table(at)
    api = Api(demo_service.url).usage(View(*range_of("30d", end=now_minute()), ("team:data",)), "route")
    assert sorted(cells["route"]) == sorted(api["key"].to_list())
    mine = dict(zip(cells["route"], cells["cost_usd"], strict=True))
    assert mine == dict(zip(api["key"].to_list(), _as_column(api["cost_usd"].to_list()), strict=True))
    assert all(u.startswith("/calls?") and "team%3Adata" in u for u in cells["route url"])  # drill to the calls
    assert any("team = data" in b.label for b in at.button)  # the filter, removable, in the sidebar
    assert at.query_params["f"] == "team:data" and at.query_params["dim"] == "route"


def test_attribution_adds_self_hosted_infra_as_the_api_attributes_it(demo_service: Running) -> None:
    at = page("attribution", demo_service.url, query={"dim": "route"})
    assert not at.exception
    cells = table(at)
    view = View(*range_of("30d", end=now_minute()))
    infra = Api(demo_service.url).infra(view, "route")
    usage = Api(demo_service.url).usage(view, "route")
    served = infra.filter(infra["key"] != "(idle capacity)")
    assert not served.is_empty()  # the demo's self-hosted routes ran on GPUs with a price
    gpus = dict(zip(served["key"].to_list(), served["infra_cost_usd"].to_list(), strict=True))
    api_cost = dict(zip(usage["key"].to_list(), usage["cost_usd"].to_list(), strict=True))
    totals = {k: v + gpus.get(k, 0) for k, v in api_cost.items()}
    assert dict(zip(cells["route"], cells["infra_cost_usd"], strict=True)) == dict(
        zip(api_cost, _as_column([gpus.get(k) for k in api_cost]), strict=True))
    assert dict(zip(cells["route"], cells["total_usd"], strict=True)) == dict(
        zip(totals, _as_column(list(totals.values())), strict=True))
    ranked = [Decimal(t.replace("$", "").replace(",", "").replace("−", "-")) for t in cells["total_usd"]]
    assert ranked == sorted(ranked, reverse=True)  # ranked by what each costs in all, GPUs included
    bars = json.loads(next(c for c in charts(at) if "bars_route" in c.proto.id).proto.spec)
    assert [t["name"] for t in bars["data"]] == ["API calls", "self-hosted GPU time"]
    assert any("GPU time attributed by tokens" in c.value for c in at.caption)


def test_clicking_a_bar_drills_down(demo_service: Running) -> None:
    at = page("attribution", demo_service.url, query={"dim": "team"})
    bars = next(c for c in charts(at) if "bars_team" in c.proto.id)
    team = json.loads(bars.proto.spec)["data"][0]["customdata"][-1]  # the biggest spender
    states = at._tree.get_widget_states()  # noqa: SLF001 - AppTest has no API for chart selections
    selection = {"selection": {"points": [{"y": team, "customdata": team, "point_index": 0}], "point_indices": [0],
                               "box": [], "lasso": []}}
    states.widgets.append(WidgetState(id=bars.proto.id, string_value=json.dumps(selection)))
    at._run(states)  # noqa: SLF001
    assert not at.exception
    assert at.query_params["f"] == f"team:{team}" and at.query_params["dim"] == "feature"
    assert at.radio(key="q_dim").value == "feature"


@pytest.mark.parametrize("name", PAGES)
def test_an_empty_store_says_what_to_configure(empty_service: Running, name: str) -> None:
    at = page(name, empty_service.url)
    assert not at.exception and not at.error
    assert at.info or at.success, f"{name} shows no empty state"


def test_api_errors_are_messages_not_tracebacks(demo_service: Running) -> None:
    at = page("overview", f"http://127.0.0.1:{free_port()}")
    assert not at.exception
    assert "cannot reach the llmledger API" in at.error[0].value
    bad = page("attribution", demo_service.url, query={"range": "nonsense", "dim": "nope", "f": ["bogus"]})
    assert not bad.exception and not bad.error  # unknown URL values fall back to the defaults


def test_a_key_is_asked_for_when_the_api_wants_one(demo_service: Running) -> None:
    key, token = demo_service.state.keys.create([KeyScope.READ], name="dashboard-test")
    st.cache_data.clear()  # answers from before the key existed are cached for a minute
    try:
        assert httpx.get(f"{demo_service.url}/v1/totals", params={"start": "2020-01-01", "end": "2030-01-01"}
                         ).status_code == 401
        at = page("latency", demo_service.url)
        assert not at.exception and at.text_input and "read scope" in at.info[0].value
        at = page("latency", demo_service.url, key=token)
        assert not at.exception and not at.error and charts(at)
    finally:
        demo_service.state.keys.revoke(key.key_id)


def test_nodes_break_even_follows_the_gpu_price(demo_service: Running) -> None:
    at = page("nodes", demo_service.url)
    before = _metrics(at)
    at.number_input(key="gpu_price").set_value(10.0).run()
    after = _metrics(at)
    for metric in ("Self-hosted, 1M output at full use", "Self-hosted, 1M output as run"):  # as run follows it too
        assert _dollars(after[metric]) == pytest.approx(_dollars(before[metric]) * 4, rel=0.05), metric
    assert not at.exception


def test_a_filter_is_added_from_the_sidebar(demo_service: Running) -> None:
    at = page("latency", demo_service.url)
    at.toggle(key="add_open").set_value(True).run()
    at.selectbox(key="add_dim").set_value("team").run()
    assert "data" in at.selectbox(key="add_value").options
    at.selectbox(key="add_value").set_value("data").run()
    at.button(key="add_filter").click().run()
    assert not at.exception and at.query_params["f"] == "team:data"


def test_self_hosted_models_are_costed_by_gpu_time_not_listed_as_unpriced(demo_service: Running) -> None:
    at = page("health", demo_service.url)
    assert not at.exception
    assert any("Self-hosted models have no per-token price" in i.value and "llama-3.1-70b-instruct" in i.value
               for i in at.info)
    assert any("Every API call in this range found a price" in s.value for s in at.success)


def test_the_calls_explorer_filters_orders_and_pages(demo_service: Running) -> None:
    at = page("calls", demo_service.url, query={"f": ["team:data"], "order": "costliest", "min_latency_ms": "1000"})
    assert not at.exception and not at.error
    first = table(at)
    assert len(first["cost_usd"]) == 50 and set(first["team"]) == {"data"}
    assert all(float(s) >= 1.0 for s in first["latency_ms"])  # latency (s) at least 1 s
    costs = [_dollars(c) for c in first["cost_usd"]]
    assert costs == sorted(costs, reverse=True)
    at.button(key="calls_next").click().run()
    second = table(at)
    assert not set(second["event_id"]) & set(first["event_id"])
    assert max(_dollars(c) for c in second["cost_usd"]) <= min(costs)
    at.button(key="calls_prev").click().run()
    assert table(at)["event_id"] == first["event_id"]
    assert at.number_input(key="in_min_latency_ms").value == 1.0  # the bound, in seconds, from the URL


def test_a_session_shows_its_calls_in_order_with_their_growth(demo_service: Running) -> None:
    view = _range()
    calls, _ = Api(demo_service.url).calls(view, order="newest", limit=200)
    session = next(s for s in calls["session_id"].to_list() if s)
    turns = Api(demo_service.url).session(view, session)
    at = page("calls", demo_service.url, query={"session": session})
    assert not at.exception and not at.error
    cells = table(at)
    assert cells["turn"] == [str(t) for t in range(1, turns.height + 1)]
    assert cells["input_growth_tokens"] == [fmt.count(g) for g in turns["input_growth_tokens"].to_list()]
    assert any("session_growth" in c.proto.id for c in charts(at))
    assert _metrics(at)["Session cost"] == fmt.money(turns["cumulative_cost_usd"][-1])


def test_the_incident_view_shows_its_timeline_and_silences(demo_service: Running) -> None:
    history = Api(demo_service.url).incidents(_range())
    assert history.height
    incident = history.filter(pl.col("peak_severity") == "critical").row(0, named=True)
    at = page("alerts", demo_service.url, query={"incident": incident["incident_id"]})
    assert not at.exception and not at.error
    shown = _metrics(at)
    assert shown["Peak severity"] == "critical"  # not the final "ok" of a resolved incident
    assert any("timeline" in c.proto.id for c in charts(at))
    events = table(at)
    assert events["kind"][0] == "opened" and "resolved" in events["kind"]
    assert any("Probable cause" in i.value for i in at.info) and any("Next step" in s.value for s in at.success)
    chart = next(m.value for m in at.markdown if "Open the chart" in m.value)
    assert "range=custom" in chart
    at.text_input(key="silence_by").set_value("dana")
    at.text_input(key="silence_reason").set_value("known, fixing")
    next(b for b in at.button if b.label == "Silence").click().run()
    assert not at.exception and any("Silence: done" in s.value for s in at.success)
    silences = Api(demo_service.url).silences()
    assert silences.height == 1 and silences["signal"][0] == incident["signal"]
    at.button(key=f"lift_{silences['silence_id'][0]}").click().run()
    assert Api(demo_service.url).silences().is_empty()
