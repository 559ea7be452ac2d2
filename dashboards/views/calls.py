"""Calls: the individual calls behind any number — filtered by the sidebar's range and filters (any
attribution dimension, model, status, session, tool …) and by cost and latency ranges, newest,
oldest, costliest or slowest first, a page at a time — each with its cost components, tokens,
latency / TTFT / TPOT, cascade step, tool and session. With `?session=ID`, one session's calls in
order with the growth of their input. No prompt or response text is stored, so none is shown."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import polars as pl
import streamlit as st

from common import formatting as fmt
from dashboards import controls, figures, layout, tables

ORDERS = {"newest": "newest first", "oldest": "oldest first", "costliest": "costliest first",
          "slowest": "slowest first"}
PAGE_SIZE = 50
LISTED = ("ts", "route", "model", "user_id", "status", "cost_usd", "latency_ms", "ttft_ms", "tpot_ms", "input_tokens",
          "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "input_cost_usd",
          "cache_read_cost_usd", "cache_write_cost_usd", "output_cost_usd", "tool_cost_usd", "cascade_step",
          "routing_policy", "tool_name", "session_id", "team", "feature", "provider", "deployment", "node", "queue_ms",
          "error_type", "event_id", "url")
TURN_COLUMNS = ("turn", "ts", "model", "route", "input_tokens", "input_growth_tokens", "cache_read_tokens",
                "output_tokens", "cost_usd", "cumulative_cost_usd", "latency_ms", "ttft_ms", "status", "cascade_step",
                "tool_name", "event_id")

api = layout.api_for("calls")
view = controls.view(api)
st.title("Calls")


def _number(name: str) -> Decimal | None:
    """A range bound from the URL (None when absent or unreadable)."""
    try:
        value = Decimal(st.query_params.get(name, ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def _to_url(name: str, key: str, scale: Decimal) -> None:
    """A bound's widget changed: write it to the URL (in the URL's unit)."""
    shown = st.session_state.get(key)
    if shown is None:
        st.query_params.pop(name, None)
    else:
        st.query_params[name] = format((Decimal(str(shown)) * scale).normalize(), "f")


def _bound(name: str, title: str, where, *, scale: Decimal = Decimal(1)) -> Decimal | None:  # noqa: ANN001
    """A number input whose value lives in the URL parameter `name` (in the URL's unit, shown ÷
    `scale`): the URL wins, as for `controls.choice`."""
    current, key = _number(name), f"in_{name}"
    st.session_state[key] = float(current / scale) if current is not None else None
    where.number_input(title, min_value=0.0, key=key, placeholder="any", on_change=_to_url, args=(name, key, scale))
    return current


def session_view(session_id: str) -> None:
    with st.spinner("Loading the session…"):
        turns = api.session(view, session_id)
    layout.link("← All calls", controls.link("calls"))
    st.header(f"Session {session_id}")
    if turns.is_empty():
        layout.empty("No calls of this session in this range.", "Widen the time range in the sidebar.")
        return
    first, last = turns.row(0, named=True), turns.row(turns.height - 1, named=True)
    row = st.columns(4)
    lasted = (last["ts"] - first["ts"]).total_seconds() * 1000
    layout.metric(row[0], "Turns", fmt.count(turns.height), f"over {fmt.duration_ms(lasted)} from {fmt.moment(first['ts'])}")
    layout.metric(row[1], "Session cost", fmt.money(last["cumulative_cost_usd"]),
                  f"{fmt.money(Decimal(str(last['cumulative_cost_usd'])) / turns.height)} per turn")
    layout.metric(row[2], "Input tokens, first → last turn",
                  f"{fmt.compact(first['input_tokens'])} → {fmt.compact(last['input_tokens'])}",
                  f"{fmt.count(turns['input_growth_tokens'].sum())} tokens of growth")
    grows = turns["input_growth_tokens"].slice(1)
    steady = grows.len() and (grows > 0).mean() >= 0.8
    layout.metric(row[3], "User", fmt.text(first["user_id"]), f"route {fmt.text(first['route'])}")
    if steady and turns.height >= 4:
        st.warning("Every turn re-sends a longer input: the whole history goes back each time. Keep a sliding "
                   "window of recent turns or summarise older ones.", icon=":material/trending_up:")
    st.plotly_chart(figures.session_growth(turns), key="session_growth")
    tables.show_table(turns.select([c for c in TURN_COLUMNS if c in turns.columns]), kinds={"ts": "time_s"},
                      key="turns")


def explorer() -> None:
    left, middle, right = st.columns([2, 3, 3])
    order = controls.choice("order", list(ORDERS), "newest", title="Order", where=left, format_func=ORDERS.get)
    low, high = middle.columns(2)
    ranges = {"min_cost_usd": _bound("min_cost", "Cost at least ($)", low),
              "max_cost_usd": _bound("max_cost", "Cost at most ($)", high)}
    low, high = right.columns(2)
    ranges.update(min_latency_ms=_bound("min_latency_ms", "Latency at least (s)", low, scale=Decimal(1000)),
                  max_latency_ms=_bound("max_latency_ms", "Latency at most (s)", high, scale=Decimal(1000)))
    ranges = {k: (int(v) if k.endswith("_ms") else v) for k, v in ranges.items() if v is not None}

    # the cursor of each page seen, so "previous" works; a new query starts again at the first page
    query_key = (view.start, view.end, view.filters, order, tuple(sorted(ranges.items())))
    if st.session_state.get("calls_query") != query_key:
        st.session_state["calls_query"], st.session_state["calls_pages"] = query_key, [None]
    pages: list[str | None] = st.session_state["calls_pages"]
    with st.spinner("Loading calls…"):
        (calls, next_cursor), totals = api.together(
            lambda: api.calls(view, order=order, limit=PAGE_SIZE, cursor=pages[-1], **ranges), lambda: api.totals(view))
        totals = totals.row(0, named=True)
    if calls.is_empty():
        layout.empty("No calls match.", "Widen the time range, remove a filter in the sidebar or loosen the cost and "
                     "latency bounds.")
        return
    number = len(pages)
    st.caption(f"Page {number}: calls {fmt.count((number - 1) * PAGE_SIZE + 1)}–"
               f"{fmt.count((number - 1) * PAGE_SIZE + calls.height)}, {ORDERS[order]}, costing "
               f"{fmt.money(calls['cost_usd'].sum())} together. The range and filters hold {fmt.count(totals['calls'])} "
               f"calls ({fmt.money(totals['cost_usd'])} API)" + (" before the cost and latency bounds." if ranges else ".")
               + " A session opens its calls in order.")
    sessions = [s or None for s in calls["session_id"].to_list()]
    shown = calls.with_columns(pl.Series("url", controls.drill_urls(sessions, "calls", param="session"), pl.String))
    tables.show_table(shown.select([c for c in LISTED if c in shown.columns]), links={"session_id": "url"},
                      kinds={"ts": "time_s"}, key="calls", height=560)
    back, forward, _ = st.columns([1, 1, 4])
    if back.button("← Previous page", disabled=number == 1, key="calls_prev"):
        pages.pop()
        st.rerun()
    if forward.button("Next page →", disabled=next_cursor is None, key="calls_next"):
        pages.append(next_cursor)
        st.rerun()
    st.download_button("Download this page as CSV", tables.csv_bytes(calls), file_name="llmledger-calls.csv",
                       mime="text/csv", key="calls_csv")


with layout.guard(api):
    session = st.query_params.get("session")
    if session:
        session_view(session)
    else:
        explorer()
    st.caption(f"{fmt.timestamp(view.start)} → {fmt.timestamp(view.end)} · "
               + (", ".join(f"{controls.label(f.partition(':')[0])} = {f.partition(':')[2]}" for f in view.filters)
                  or "no filters") + ". No prompt or response text is stored, so none is shown.")
