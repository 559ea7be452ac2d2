"""Every dashboard page under Streamlit's AppTest against a real running service: the simulated
weeks render with their charts, numbers equal the read API's, filters and drill-downs live in the
URL, empty stores show what to configure, and API failures are messages — never tracebacks."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest
import streamlit as st
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from llmledger import formatting as fmt
from dashboards.client import Api, View
from dashboards.controls import now_minute, range_of
from llmledger.service.keys import KeyScope
from tests.dashboard_support import PAGES, charts, page
from tests.service_support import Running, free_port

MIN_CHARTS = {"overview": 4, "attribution": 5, "caching": 2, "latency": 4, "routing": 5, "nodes": 7, "health": 0}


def _range() -> View:
    start, end = range_of("30d", end=now_minute())
    return View(start, end)


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
    assert "cascade-v2 escalated" in warnings and "gpt-4.1-mini" in warnings  # stale routing
    caching = page("caching", demo_service.url)
    hit = json.loads(next(c for c in charts(caching) if "hit_ratio" in c.proto.id).proto.spec)
    collapsed = [t["name"] for t in hit["data"] if min((y for y in t["y"] if y is not None), default=1) < 0.3]
    assert "assistant-chat · claude-sonnet-4-5" in collapsed  # cache hit collapse under the 0.3 line
    assert any("v8" in a.get("text", "") for a in hit["layout"]["annotations"])  # the prompt release marked


def test_overview_numbers_equal_the_read_api(demo_service: Running) -> None:
    at = page("overview", demo_service.url)
    api, view = Api(demo_service.url), _range()
    periods = api.spend(view).row(0, named=True)
    totals = api.totals(view).row(0, named=True)
    savings = api.cache_savings(view).row(0, named=True)
    shown = _metrics(at)
    assert shown["Month to date"] == fmt.money(periods["month_usd"])
    assert shown["This week"] == fmt.money(periods["week_usd"])
    assert shown["Month-end forecast"] == fmt.money(periods["forecast_usd"])
    assert shown["Calls in range"] == fmt.count(totals["calls"])
    assert shown["Cost per call"] == fmt.money(totals["cost_usd"] / totals["calls"])
    assert shown["Cache savings in range"] == fmt.money(savings["net_saved_usd"])
    gpus = api.infra(view, "project")["infra_cost_usd"].sum()
    calls_note = next(m.proto.delta for m in at.metric if m.label == "Calls in range")
    assert gpus > 0 and f"+ {fmt.money(gpus)} self-hosted GPUs" in calls_note


def test_attribution_filters_live_in_the_url_and_equal_the_api(demo_service: Running) -> None:
    at = page("attribution", demo_service.url, query={"f": ["team:data"], "dim": "route", "measure": "calls"})
    assert not at.exception
    table = at.dataframe[0].value
    api = Api(demo_service.url).usage(View(*range_of("30d", end=now_minute()), ("team:data",)), "route")
    assert sorted(table["route"].tolist()) == sorted(api["key"].to_list())
    mine = dict(zip(table["route"], table["cost_usd"], strict=True))
    for row in api.iter_rows(named=True):
        assert mine[row["key"]] == pytest.approx(float(row["cost_usd"]), abs=1e-9)
    assert any("team = data" in b.label for b in at.button)  # the filter, removable, in the sidebar
    assert at.query_params["f"] == "team:data" and at.query_params["dim"] == "route"


def test_attribution_adds_self_hosted_infra_as_the_api_attributes_it(demo_service: Running) -> None:
    at = page("attribution", demo_service.url, query={"dim": "route"})
    assert not at.exception
    table = at.dataframe[0].value
    infra = Api(demo_service.url).infra(View(*range_of("30d", end=now_minute())), "route")
    served = infra.filter(infra["key"] != "(idle capacity)")
    assert not served.is_empty()  # the demo's self-hosted routes ran on GPUs with a price
    mine = dict(zip(table["route"], table["infra_cost_usd"], strict=True))
    for row in served.iter_rows(named=True):
        assert mine[row["key"]] == pytest.approx(float(row["infra_cost_usd"]), abs=1e-9)
    total = table["cost_usd"] + table["infra_cost_usd"].fillna(0)
    assert (abs(table["total_usd"] - total) < 1e-9).all()
    assert any("Self-hosted GPUs add" in c.value for c in at.caption)


def test_clicking_a_bar_drills_down(demo_service: Running) -> None:
    at = page("attribution", demo_service.url, query={"dim": "team"})
    bars = next(c for c in charts(at) if "bars_team" in c.proto.id)
    team = json.loads(bars.proto.spec)["data"][0]["y"][-1]  # the biggest spender
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
    cheap = _metrics(at)["Self-hosted, 1M output at full use"]
    at.number_input(key="gpu_price").set_value(10.0).run()
    dear = _metrics(at)["Self-hosted, 1M output at full use"]
    assert float(dear.strip("$").replace(",", "")) == pytest.approx(
        float(cheap.strip("$").replace(",", "")) * 4, rel=0.05)  # both rounded to the cent for display
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
