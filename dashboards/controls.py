"""The controls every page shares, kept in the URL so a view can be shared: the time range
(`range`, and `from` / `to` for a custom one: dates, or instants from a deep link), the filters
(`f=dimension:value`, repeatable) and page-specific choices (`choice(...)`). Ranges are UTC and
end at the next whole minute. Links in older shapes (the weekly report's `start` / `end` /
`team`, Slack's `at` / `scope.*`) are rewritten to these parameters on arrival (`common.links`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import streamlit as st

from common import links
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


def range_of(choice: str, *, end: datetime, first: date | datetime | None = None,
             last: date | datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a range choice (`first` / `last`: a custom one's dates, inclusive, or instants,
    `last` exclusive)."""
    if choice == "custom" and first and last and type(first) is type(last):
        return links.instants(first, last)
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


def adopt_link() -> None:
    """Rewrite a deep link of an older shape (`start` / `end`, `at`, `team=…`, `scope.route=…`,
    `filter=…`) into the canonical parameters, once, before any control reads them."""
    params = {name: st.query_params.get_all(name) for name in st.query_params}
    if links.is_canonical(params):
        return
    st.query_params.from_dict(links.read(params).params())


def _as_shown(value: date | datetime, *, last: bool) -> date:
    """The day a date picker shows for a range edge (an exclusive instant's last day for `last`)."""
    if isinstance(value, datetime):
        return (value - timedelta(milliseconds=1)).date() if last else value.date()
    return value


def _custom(end: datetime) -> tuple[date | datetime, date | datetime]:
    """A custom range's edges: the URL's (dates or a link's instants) until the visitor picks dates."""
    first = links.day_or_instant(st.query_params.get("from"))
    last = links.day_or_instant(st.query_params.get("to"))
    if first is None or last is None or type(first) is not type(last):
        first, last = (end - timedelta(days=7)).date(), end.date()
    shown = (_as_shown(first, last=False), _as_shown(last, last=True))
    picked = st.sidebar.date_input("Dates (UTC)", value=shown, key="q_dates")
    if isinstance(picked, tuple) and len(picked) == 2 and tuple(picked) != shown:
        first, last = picked
        st.query_params["from"], st.query_params["to"] = first.isoformat(), last.isoformat()
    return first, last


def view(api: Api | None = None) -> View:
    """Draw the sidebar's time range and filters; the View they describe."""
    adopt_link()
    end = now_minute()
    sidebar = st.sidebar
    picked = choice("range", list(RANGES), DEFAULT_RANGE, title="Time range", where=sidebar,
                    format_func=lambda k: RANGES[k])
    first = last = None
    if picked == "custom":
        first, last = _custom(end)
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


def link(page: str, *, start: datetime | None = None, end: datetime | None = None,
         where: Sequence[str] | None = None, **extra: str | None) -> str:
    """A relative link to another page: the given range (instants) or the one in force here, the
    filters `where` or the ones in force here, and page parameters (`session`, `incident`, …)."""
    chosen = list(where) if where is not None else filters()
    if start is not None and end is not None:
        return links.build("", page, start=start, end=end, filters=chosen, **extra)
    here = {k: st.query_params.get(k) for k in ("range", "from", "to") if st.query_params.get(k)}
    kept = {k: v for k, v in {**here, **extra}.items() if v is not None and v != ""}
    return links.Link(page.strip("/"), filters=tuple(dict.fromkeys(chosen)),
                      extra=tuple((k, str(v)) for k, v in kept.items())).url("")


def drill_urls(values: Sequence[object], page: str, *, dimension: str | None = None, param: str | None = None,
               **extra: str | None) -> list[str | None]:
    """For each value a link to `page` with this page's range: its filters plus `dimension = value`,
    or the value as the page parameter `param` (a session, an incident: no filters); None for a
    missing value."""
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif dimension:
            out.append(link(page, where=[*filters(), f"{dimension}:{value}"], **extra))
        else:
            out.append(link(page, where=[], **{**extra, str(param): str(value)}))
    return out
