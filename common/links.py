"""Deep links into the dashboards: one canonical shape, built and read here, plus the older shapes
still out in e-mails and Slack threads.

Canonical: `<base>/<page>?range=custom&from=…&to=…&f=dimension:value…&<page parameters>`, where
`from` / `to` are dates (both inclusive, whole UTC days) or ISO 8601 instants (`to` exclusive).
Also accepted, and rewritten to the canonical shape on arrival (`canonical`):
- `start` / `end` (the weekly report: dates or instants, `end` exclusive);
- `at` (Slack: an instant; the day before it to the day after it);
- a dimension as its own parameter (`team=search`), `scope.<dimension>=` (Slack) and `filter=`
  (the read API's name) as filters.
Pure functions without I/O, so the report, the Slack messages and the dashboards share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

# the dimensions a link may filter on (the read API's allow-list, less what makes no page filter)
DIMENSIONS: tuple[str, ...] = ("team", "feature", "route", "model", "provider", "user_id", "api_key_id", "project",
                               "environment", "session_id", "tool_name", "prompt_version", "routing_policy",
                               "deployment", "node", "status", "service_tier", "source", "model_raw")
RANGE_KEYS = ("range", "from", "to")
OLD_RANGE_KEYS = ("start", "end", "at")
# what a page keeps from a link beside range and filters
PAGE_KEYS = ("incident", "signal", "session", "dim", "measure", "event", "order", "min_cost", "max_cost",
             "min_latency_ms", "max_latency_ms")

Params = Mapping[str, str | Sequence[str]]


def day_or_instant(text: str | None) -> date | datetime | None:
    """A date (YYYY-MM-DD) or an instant (ISO 8601; naive = UTC); None when unreadable."""
    if not text:
        return None
    text = text.strip().replace(" ", "+")  # a "+" of an offset that arrived unescaped reads as a space
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def instants(first: date | datetime, last: date | datetime) -> tuple[datetime, datetime]:
    """[start, end) of a custom range: dates are whole days (`last` inclusive), instants exact;
    edges given the wrong way round are swapped."""
    if not isinstance(first, datetime) and not isinstance(last, datetime):
        first, last = min(first, last), max(first, last)
    start = first if isinstance(first, datetime) else datetime.combine(first, time(0), tzinfo=UTC)
    end = last if isinstance(last, datetime) else datetime.combine(last, time(0), tzinfo=UTC) + timedelta(days=1)
    return (start, end) if start < end else (end, start)


@dataclass(frozen=True)
class Link:
    """What a deep link asks for: a page, a time range (None: the page's default), filters and
    page parameters, in canonical form."""

    page: str = ""
    first: date | datetime | None = None
    last: date | datetime | None = None
    range: str | None = None
    filters: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def params(self) -> dict[str, str | list[str]]:
        """The canonical query parameters."""
        out: dict[str, str | list[str]] = {}
        if self.first is not None and self.last is not None:
            out.update({"range": "custom", "from": _text(self.first), "to": _text(self.last)})
        elif self.range:
            out["range"] = self.range
        if self.filters:
            out["f"] = list(self.filters)
        for name, value in self.extra:
            out[name] = value
        return out

    def url(self, base: str) -> str:
        """`<base>/<page>?…` with the canonical parameters."""
        query = urlencode(self.params(), doseq=True)
        return f"{base.rstrip('/')}/{self.page}" + (f"?{query}" if query else "")


def build(base: str, page: str = "", *, start: datetime | date | None = None, end: datetime | date | None = None,
          filters: Mapping[str, str] | Sequence[str] = (), **extra: str | None) -> str:
    """A canonical link: `start` / `end` as instants (end exclusive) or dates (end inclusive)."""
    pairs = [f"{k}:{v}" for k, v in filters.items()] if isinstance(filters, Mapping) else list(filters)
    kept = tuple((k, str(v)) for k, v in extra.items() if v is not None and v != "")
    first = last = None
    if start is not None and end is not None:
        first, last = start, end
    return Link(page.strip("/"), first, last, None, tuple(dict.fromkeys(pairs)), kept).url(base)


def _values(params: Params, name: str) -> list[str]:
    raw = params.get(name)
    if raw is None:
        return []
    return [raw] if isinstance(raw, str) else [str(v) for v in raw]


def _one(params: Params, name: str) -> str | None:
    values = _values(params, name)
    return values[-1] if values else None


def read(params: Params, *, page: str = "") -> Link:
    """A link's parameters (any accepted shape) as a canonical `Link`. Unreadable values are
    dropped, so a mangled link still opens its page with the defaults."""
    first: date | datetime | None = day_or_instant(_one(params, "from"))
    last: date | datetime | None = day_or_instant(_one(params, "to"))
    choice = _one(params, "range")
    start, end = day_or_instant(_one(params, "start")), day_or_instant(_one(params, "end"))
    at = day_or_instant(_one(params, "at"))
    if start is not None and end is not None:  # the report's exclusive end
        first = start
        last = end - timedelta(days=1) if isinstance(end, date) and not isinstance(end, datetime) else end
        if isinstance(first, date) and not isinstance(first, datetime) and last < first:
            last = first
    elif at is not None and (first is None or last is None):
        day = at.date() if isinstance(at, datetime) else at
        first, last = day - timedelta(days=1), day + timedelta(days=1)
    if first is None or last is None or type(first) is not type(last):
        first = last = None
    filters: list[str] = [f for f in _values(params, "f") + _values(params, "filter")
                          if f.partition(":")[1] and (f.partition(":")[0] in DIMENSIONS or f.startswith("tag."))]
    for dimension in DIMENSIONS:
        for value in _values(params, dimension) + _values(params, f"scope.{dimension}"):
            filters.append(f"{dimension}:{value}")
    extra = []
    for name in PAGE_KEYS:
        value = _one(params, name)
        if value:
            extra.append((name, value))
    for name, raw in params.items():  # page parameters this module does not know are kept as they are
        if name in RANGE_KEYS or name in OLD_RANGE_KEYS or name in PAGE_KEYS or name in DIMENSIONS \
                or name in ("f", "filter") or name.startswith("scope."):
            continue
        value = raw if isinstance(raw, str) else (list(raw)[-1] if len(raw) else "")
        if value:
            extra.append((name, value))
    return Link(page, first, last, choice if first is None else None, tuple(dict.fromkeys(filters)), tuple(extra))


def is_canonical(params: Params) -> bool:
    """True when the parameters already are in canonical form (nothing to rewrite)."""
    return not any(k in params for k in (*OLD_RANGE_KEYS, "filter", *DIMENSIONS)) and \
        not any(k.startswith("scope.") for k in params)


# the page (and its parameters) that charts each signal: where an incident's "open the chart" goes
SIGNAL_PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "cache_hit_collapse": ("caching", {}),
    "cache_not_applied": ("caching", {}),
    "prompt_accumulation": ("attribution", {"dim": "route", "measure": "input_tokens"}),
    "llm_calls_in_tools": ("attribution", {"dim": "route"}),
    "sandbox_runaway": ("calls", {}),
    "reasoning_runaway": ("routing", {}),
    "stale_routing": ("routing", {}),
    "latency_tail": ("latency", {}),
    "spend_spike": ("attribution", {}),
    "budget": ("", {}),
}


def chart_page(signal: str) -> tuple[str, dict[str, str]]:
    """The page charting `signal` and its parameters (the overview for a signal not listed)."""
    return SIGNAL_PAGES.get(signal, ("", {}))
