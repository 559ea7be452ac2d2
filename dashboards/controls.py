"""The controls every page shares, kept in the URL so a view can be shared: the time range
(`range`, and `from` / `to` for a custom one), the filters (`f=dimension:value`, repeatable) and
page-specific choices (`choice(...)`). Ranges are UTC and end at the next whole minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from dashboards.client import Api, ApiError, View

RANGES: dict[str, str] = {
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "mtd": "Month to date",
    "custom": "Custom dates",
}
DEFAULT_RANGE = "30d"
DIMENSIONS: tuple[str, ...] = ("team", "feature", "route", "model", "provider", "user_id", "api_key_id",
                               "project", "environment")
LABELS: dict[str, str] = {"user_id": "user", "api_key_id": "API key", "routing_policy": "routing policy",
                          "prompt_version": "prompt version", "tool_name": "tool"}


def label(dimension: str) -> str:
    """A dimension as people name it."""
    return LABELS.get(dimension, dimension.replace("_", " "))


def now_minute() -> datetime:
    """The next whole UTC minute: the exclusive end of "now" ranges (and one cache key per minute)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(minutes=1)


def _day(text: str | None, fallback: date) -> date:
    try:
        return date.fromisoformat(text) if text else fallback
    except ValueError:
        return fallback


def range_of(choice: str, *, end: datetime, first: date | None = None, last: date | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a range choice (`first` / `last`: the dates of a custom one, inclusive)."""
    if choice == "custom" and first and last:
        lo, hi = min(first, last), max(first, last)
        return (datetime.combine(lo, time(0), tzinfo=UTC), datetime.combine(hi, time(0), tzinfo=UTC) + timedelta(days=1))
    if choice == "mtd":
        return datetime(end.year, end.month, 1, tzinfo=UTC), end
    days = {"24h": 1, "7d": 7}.get(choice, 30)
    return end - timedelta(days=days), end


def grain_for(view: View) -> str:
    """A fine bucket width for lines that must show short incidents: 5 min up to 2 days, hours up
    to 45 days, days beyond."""
    span = view.end - view.start
    if span <= timedelta(days=2):
        return "5min"
    return "hour" if span <= timedelta(days=45) else "day"


def bar_grain(view: View) -> str:
    """A coarse bucket width for stacked bars: hours up to 3 days, days up to 93, weeks beyond."""
    span = view.end - view.start
    if span <= timedelta(days=3):
        return "hour"
    return "day" if span <= timedelta(days=93) else "week"


def step_seconds(view: View, *, points: int = 360) -> int:
    """A node-metric bucket width (s) giving about `points` buckets, at least a minute."""
    seconds = (view.end - view.start).total_seconds() / points
    for step in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86_400):
        if step >= seconds:
            return step
    return 86_400


def filters() -> list[str]:
    """The filters in force (`dimension:value`), from the URL."""
    return [f for f in st.query_params.get_all("f") if ":" in f]


def set_filters(values: Sequence[str]) -> None:
    """Replace the filters in the URL (duplicates dropped, order kept)."""
    st.query_params["f"] = list(dict.fromkeys(values))


def add_filter(dimension: str, value: str) -> None:
    """Filter on `dimension = value` (a value already filtered on that dimension is kept too)."""
    set_filters([*filters(), f"{dimension}:{value}"])


def _to_url(name: str, key: str) -> None:
    st.query_params[name] = str(st.session_state[key])


# where a click on a bar of one dimension leads next
DRILL: dict[str, tuple[str, ...]] = {
    "team": ("feature", "route", "model", "user_id"),
    "feature": ("route", "model", "user_id"),
    "route": ("model", "user_id"),
    "model": ("route", "user_id"),
    "provider": ("model", "route"),
    "project": ("team", "feature", "route"),
    "environment": ("team", "route"),
    "api_key_id": ("model", "route"),
    "user_id": ("route", "model"),
}


def drill(dimension: str, value: str, *, param: str = "dim") -> bool:
    """Filter on `dimension = value` and break down by the next dimension not filtered yet; False
    when that filter was already in force (nothing changed)."""
    current = filters()
    item = f"{dimension}:{value}"
    if item in current:
        return False
    set_filters([*current, item])
    taken = {f.partition(":")[0] for f in filters()}
    nxt = next((d for d in DRILL.get(dimension, ()) if d not in taken), dimension)
    st.query_params[param] = nxt
    return True


def choice(name: str, options: Sequence[str], default: str, *, title: str, where=None, horizontal: bool = False,
           format_func=None) -> str:  # noqa: ANN001 - Streamlit containers and callables
    """A select box (or horizontal radio) whose value lives in the URL parameter `name`: the URL
    wins (a shared link, a drill-down), and a change in the widget is written back to it."""
    box, key, options = where or st, f"q_{name}", list(options)
    current = st.query_params.get(name, default)
    current = current if current in options else default
    st.session_state[key] = current
    if st.query_params.get(name) != current:
        st.query_params[name] = current
    widget = box.radio if horizontal else box.selectbox
    extra = {"horizontal": True} if horizontal else {}
    value = widget(title, options, format_func=format_func or label, key=key, on_change=_to_url,
                   args=(name, key), **extra)
    return str(value)


def view(api: Api | None = None) -> View:
    """Draw the sidebar's time range and filters; the View they describe."""
    end = now_minute()
    sidebar = st.sidebar
    picked = choice("range", list(RANGES), DEFAULT_RANGE, title="Time range", where=sidebar,
                    format_func=lambda k: RANGES[k])
    first = last = None
    if picked == "custom":
        default_first = _day(st.query_params.get("from"), (end - timedelta(days=7)).date())
        default_last = _day(st.query_params.get("to"), end.date())
        picked_dates = sidebar.date_input("Dates (UTC)", value=(default_first, default_last), key="q_dates")
        if isinstance(picked_dates, tuple) and len(picked_dates) == 2:
            first, last = picked_dates
            st.query_params["from"], st.query_params["to"] = first.isoformat(), last.isoformat()
        else:
            first, last = default_first, default_last
    start, stop = range_of(picked, end=end, first=first, last=last)
    current = filters()
    _filter_controls(api, View(start, stop, tuple(current)), current)
    sidebar.caption(f"{start:%Y-%m-%d %H:%M} → {stop:%Y-%m-%d %H:%M} UTC")
    return View(start, stop, tuple(current))


def _filter_controls(api: Api | None, base: View, current: list[str]) -> None:
    sidebar = st.sidebar
    sidebar.markdown("**Filters**")
    for item in current:
        dimension, _, value = item.partition(":")
        if sidebar.button(f"✕ {label(dimension)} = {value}", key=f"rm_{item}", help="Remove this filter"):
            set_filters([f for f in current if f != item])
            st.rerun()
    # the values are fetched only once the visitor asks to add a filter (a query saved on every page)
    if api is None or not sidebar.toggle("Add a filter", key="add_open"):
        return
    dimension = sidebar.selectbox("Dimension", DIMENSIONS, format_func=label, key="add_dim")
    try:
        values = api.top(base, dimension, measure="calls", n=200)["key"].to_list() if dimension else []
    except ApiError:  # the page itself reports API errors; here there are just no choices
        values = []
    value = sidebar.selectbox("Value", values, key="add_value", placeholder="no values in this range")
    sidebar.button("Add filter", key="add_filter", disabled=not value, on_click=_add, args=(dimension, str(value)))


def _add(dimension: str, value: str) -> None:
    """The "Add filter" button: filter, and fold the form away (a callback: it runs before the rerun)."""
    add_filter(dimension, value)
    st.session_state["add_open"] = False
