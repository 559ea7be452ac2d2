"""The dashboards' only way to data: the service's HTTP read API, over httpx.

`Api(url, key, page)` calls an endpoint and returns a Polars frame: money columns (`*_usd`,
`*_mtok`, `monthly_usd`) as Decimal(38, 18), timestamps as UTC datetimes. Every failure becomes an
`ApiError` whose message is safe and useful to show (cannot reach, key refused, bad parameter,
warehouse error) — pages show it, never a traceback. Responses are cached for `CACHE_S`
seconds per (URL, key, endpoint, parameters), so pushed calls show within seconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import polars as pl

from common.query import query_pairs

DEFAULT_URL = "http://127.0.0.1:8787"
URL_ENV, KEY_ENV, EXPOSED_ENV = "LLMLEDGER_API_URL", "LLMLEDGER_API_KEY", "LLMLEDGER_DASHBOARD_EXPOSED"
MONEY = pl.Decimal(38, 18)
CACHE_ENV = "LLMLEDGER_DASHBOARD_CACHE_S"
# fresh pushes reach the warehouse within ~1 s; a page shows them at most this much later (0: no
# cache, as the dashboards benchmark measures first loads)
CACHE_S = 3
IDLE = "(idle capacity)"  # the infra row of GPU time that served no call (warehouse.queries.nodes.IDLE)
_TIME_COLUMNS = {"bucket", "ts", "at", "first_seen", "last_seen", "month_start", "month_end"}


class ApiError(Exception):
    """A read that failed; `str(err)` is meant for the user. `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def auth(self) -> bool:
        """The API wants a (different) key."""
        return self.status in (401, 403)


Params = Mapping[str, Any]


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:300]
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


def fetch(url: str, key: str | None, page: str, path: str, pairs: Sequence[tuple[str, str]],
          timeout: float = 60.0) -> dict[str, Any]:
    """GET `path` and return its JSON body; raises `ApiError`."""
    return request("GET", url, key, page, path, params=pairs, timeout=timeout)


def request(method: str, url: str, key: str | None, page: str, path: str, *,
            params: Sequence[tuple[str, str]] = (), payload: Mapping[str, Any] | None = None,
            timeout: float = 60.0) -> dict[str, Any]:
    """One HTTP request to the API; its JSON body ({} for 204); raises `ApiError`."""
    headers = {"X-LLMLedger-Page": page}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.request(method, url.rstrip("/") + path, params=list(params), json=payload, headers=headers,
                                 timeout=timeout)
    except httpx.TimeoutException as err:
        raise ApiError(f"the llmledger API at {url} did not answer {path} within {timeout:.0f} s") from err
    except httpx.HTTPError as err:
        raise ApiError(f"cannot reach the llmledger API at {url} ({type(err).__name__}): is `llmledger up` "
                       f"running? The dashboard reads {URL_ENV}.") from err
    if response.status_code == 401:
        raise ApiError("the llmledger API needs an API key with the read scope "
                       "(create one with `llmledger keys create --scope read`)", status=401)
    if response.status_code == 403:
        raise ApiError(f"the API key was refused for {path}: {_detail(response)}", status=403)
    if response.status_code >= 400:
        raise ApiError(f"the llmledger API answered {response.status_code} to {path}: {_detail(response)}",
                       status=response.status_code)
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()  # type: ignore[no-any-return]
    except ValueError as err:
        raise ApiError(f"the llmledger API sent something that is not JSON for {path}") from err


def _cached_fetch() -> Any:
    """`fetch`, memoised for `CACHE_S` by Streamlit when running inside it."""
    try:
        import streamlit as st
        from streamlit.runtime import exists
    except ImportError:  # pragma: no cover - streamlit is a dependency
        return fetch
    if not exists():
        return fetch
    ttl = float(os.environ.get(CACHE_ENV) or CACHE_S)
    return st.cache_data(ttl=ttl, show_spinner=False, max_entries=512)(fetch) if ttl > 0 else fetch


_FETCH: Any = None
PARALLEL_READS = 4  # the service answers reads in its thread pool; a 2-core warehouse gains little beyond


def _script_context() -> Callable[[], None]:
    """An initializer that hands this Streamlit script run's context to a worker thread (so cached
    reads made there are this session's); a no-op outside Streamlit."""
    try:
        from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
    except ImportError:  # pragma: no cover - streamlit is a dependency
        return lambda: None
    context = get_script_run_ctx(suppress_warning=True)
    if context is None:
        return lambda: None
    return lambda: add_script_run_ctx(threading.current_thread(), context)


def frame(body: Mapping[str, Any]) -> pl.DataFrame:
    """A `{columns, rows}` table as a frame with money as Decimal and timestamps as UTC datetimes."""
    columns: list[str] = list(body.get("columns") or [])
    rows: list[dict[str, Any]] = list(body.get("rows") or [])
    if not columns:
        return pl.DataFrame()
    out = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None) if rows else \
        pl.DataFrame(schema={c: pl.String for c in columns})
    exprs = []
    for name in columns:
        if name.endswith(("_usd", "_mtok")):
            exprs.append(pl.col(name).cast(pl.String).cast(MONEY))
        elif name in _TIME_COLUMNS or name.endswith("_at"):
            exprs.append(pl.col(name).cast(pl.String).str.to_datetime(time_zone="UTC", strict=False))
    return out.with_columns(exprs) if exprs else out


def scope_pairs(scope: Any) -> list[tuple[str, str]]:
    """An incident's scope (a JSON object or a list of key/value pairs) as (key, value) pairs."""
    if isinstance(scope, dict):
        return [(str(k), str(v)) for k, v in scope.items()]
    if isinstance(scope, list):
        return [(str(p.get("key")), str(p.get("value"))) for p in scope if isinstance(p, dict)]
    return []


def _scope_text(body: dict[str, Any]) -> None:
    """Incident rows' scope as `k=v, k=v` text, in place (a few hundred incidents at most)."""
    for row in body.get("rows") or []:
        row["scope"] = ", ".join(f"{k}={v}" for k, v in scope_pairs(row.get("scope")))


@dataclass(frozen=True)
class Spend:
    """Total spend over a view and its split: API calls priced per token, and self-hosted GPU time
    (GPU-hours × $/GPU-hour; `idle_usd`: the part in node-hours that served no call)."""

    api_usd: Decimal
    infra_usd: Decimal
    idle_usd: Decimal = Decimal(0)

    @property
    def total_usd(self) -> Decimal:
        return self.api_usd + self.infra_usd


def _money(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def spend_of(totals: pl.DataFrame, infra: pl.DataFrame) -> Spend:
    """Total spend from `/v1/totals` and `/v1/usage/infra` of the same view (any dimension or grain): the
    split from `/v1/totals` where it carries one (`api_cost_usd`, `infra_cost_usd`), else its API
    cost plus the infra rows (the idle-capacity row included when unfiltered). The one place that
    decides where total spend comes from."""
    row = totals.row(0, named=True) if totals.height else {}
    if "infra_cost_usd" in row:
        return Spend(_money(row.get("api_cost_usd", row.get("cost_usd"))), _money(row["infra_cost_usd"]),
                     _money(row.get("idle_cost_usd")))
    if infra.is_empty():
        return Spend(_money(row.get("cost_usd")), Decimal(0))
    idle = infra.filter(pl.col("key") == IDLE)["infra_cost_usd"]
    return Spend(_money(row.get("cost_usd")), _money(infra["infra_cost_usd"].sum()),
                 _money(idle.sum() if idle.len() else 0))


@dataclass(frozen=True)
class View:
    """What a page looks at: a half-open UTC range and `dimension:value` filters."""

    start: datetime
    end: datetime
    filters: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "filter": list(self.filters)}


@dataclass(frozen=True)
class Api:
    """A client of one service, drawing one page (the page name tags the warehouse queries)."""

    url: str = DEFAULT_URL
    key: str | None = None
    page: str = "dashboard"
    timeout: float = 60.0

    @classmethod
    def from_env(cls, page: str, *, key: str | None = None) -> Api:
        """URL from `LLMLEDGER_API_URL`, key from `key` (a visitor's) or `LLMLEDGER_API_KEY`."""
        return cls(url=os.environ.get(URL_ENV, DEFAULT_URL), key=key or os.environ.get(KEY_ENV) or None, page=page)

    def together(self, *reads: Callable[[], Any]) -> list[Any]:
        """Run several reads at once (each a call of this client) and return their results in
        order: a page's first load waits for its slowest read, not for the sum of them. The first
        `ApiError` is raised here."""
        if len(reads) < 2:
            return [read() for read in reads]
        context = _script_context()
        with ThreadPoolExecutor(max_workers=min(PARALLEL_READS, len(reads)), thread_name_prefix="llmledger-read",
                                initializer=context) as pool:
            futures = [pool.submit(read) for read in reads]
        return [future.result() for future in futures]

    def body(self, path: str, **params: Any) -> dict[str, Any]:
        """The raw JSON of an endpoint (cached for a minute inside Streamlit)."""
        global _FETCH
        if _FETCH is None:
            _FETCH = _cached_fetch()
        return _FETCH(self.url, self.key, self.page, path, tuple(query_pairs(params)), self.timeout)  # type: ignore[no-any-return]

    def get(self, path: str, **params: Any) -> pl.DataFrame:
        """An endpoint's table as a frame."""
        return frame(self.body(path, **params))

    def act(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """An action (POST / DELETE; never cached): acknowledge, silence, lift a silence. Needs a key
        with the admin scope where the API wants keys."""
        return request(method, self.url, self.key, self.page, path, payload=payload, timeout=self.timeout)

    def health(self) -> dict[str, Any]:
        """`/health` (uncached)."""
        return fetch(self.url, self.key, self.page, "/health", (), self.timeout)

    def whoami(self) -> dict[str, Any]:
        """`/v1/whoami`: the key's id, scopes and project (uncached; 401 for a key the API refuses)."""
        return fetch(self.url, self.key, self.page, "/v1/whoami", (), self.timeout)

    # ---- the endpoints the pages use --------------------------------------------------------

    def totals(self, view: View) -> pl.DataFrame:
        return self.get("/v1/totals", **view.params())

    def spend(self, view: View) -> Spend:
        """Total spend = API + self-hosted infra over the view: every headline's number (see `spend_of`)."""
        totals, infra = self.together(lambda: self.totals(view), lambda: self.infra(view, "project"))
        return spend_of(totals, infra)

    def usage(self, view: View, dimension: str, *, limit: int = 100) -> pl.DataFrame:
        return self.get("/v1/usage", **view.params(), dimension=dimension, limit=limit)

    def infra(self, view: View, dimension: str, *, grain: str | None = None) -> pl.DataFrame:
        """Self-hosted GPU cost attributed to `dimension` (per `grain` bucket: hour, day or week)."""
        return self.get("/v1/usage/infra", **view.params(), dimension=dimension, grain=grain)

    def timeseries(self, view: View, *, grain: str, measure: str = "cost_usd", dimension: str | None = None,
                   top: int = 8) -> pl.DataFrame:
        return self.get("/v1/timeseries", **view.params(), grain=grain, measure=measure, dimension=dimension, top=top)

    def top(self, view: View, dimension: str, *, measure: str = "cost_usd", n: int = 50) -> pl.DataFrame:
        return self.get("/v1/top", **view.params(), dimension=dimension, measure=measure, n=n)

    def periods(self, view: View) -> pl.DataFrame:
        """Spend today, this week, month to date and the month-end forecast (API calls) at the view's end."""
        return self.get("/v1/spend", filter=list(view.filters), at=view.end)

    def heatmap(self, view: View) -> pl.DataFrame:
        return self.get("/v1/spend/heatmap", **view.params())

    def movers(self, view: View, dimension: str, *, n: int = 8) -> pl.DataFrame:
        return self.get("/v1/movers", **view.params(), dimension=dimension, n=n)

    def budgets(self, view: View) -> pl.DataFrame:
        return self.get("/v1/budgets", at=view.end)

    def latency(self, view: View, dimension: str | None = None) -> pl.DataFrame:
        return self.get("/v1/latency", **view.params(), dimension=dimension)

    def latency_series(self, view: View, *, grain: str, dimension: str | None = None) -> pl.DataFrame:
        return self.get("/v1/latency/series", **view.params(), grain=grain, dimension=dimension)

    def cache_windows(self, view: View, *, grain: str, by: Sequence[str] = ()) -> pl.DataFrame:
        return self.get("/v1/cache/windows", **view.params(), grain=grain, by=list(by))

    def cache_savings(self, view: View, *, by: Sequence[str] = ()) -> pl.DataFrame:
        return self.get("/v1/cache/savings", **view.params(), by=list(by))

    def prompt_versions(self, view: View, *, by: str = "route") -> pl.DataFrame:
        return self.get("/v1/prompt-versions", **view.params(), by=by)

    def distribution(self, view: View, *, measure: str, dimension: str, nonzero: bool = False) -> pl.DataFrame:
        return self.get("/v1/distribution", **view.params(), measure=measure, dimension=dimension, nonzero=nonzero)

    def histogram(self, view: View, *, measure: str, dimension: str, nonzero: bool = False) -> pl.DataFrame:
        return self.get("/v1/histogram", **view.params(), measure=measure, dimension=dimension, nonzero=nonzero)

    def reasoning_outliers(self, view: View, *, n: int = 20) -> pl.DataFrame:
        return self.get("/v1/reasoning/outliers", **view.params(), n=n)

    def cascade_series(self, view: View, *, grain: str) -> pl.DataFrame:
        return self.get("/v1/cascade/series", **view.params(), grain=grain)

    def cascade_steps(self, view: View) -> pl.DataFrame:
        return self.get("/v1/cascade/steps", **view.params())

    def cascade_frontier(self, view: View) -> pl.DataFrame:
        return self.get("/v1/cascade/frontier", **view.params())

    def routing_advice(self, view: View, *, route: str, percentile: float = 70.0) -> dict[str, Any]:
        """`/v1/routing/advice` for a route (the raw document: curve and tasks as tables)."""
        return self.body("/v1/routing/advice", route=route, percentile=percentile, end=view.end)

    def nodes(self, what: str, view: View, *, step_s: int = 3600, **extra: Any) -> pl.DataFrame:
        """`what`: gpu, load, throughput, latency, cost or breakeven (node metrics take no filters)."""
        return self.get(f"/v1/nodes/{what}", start=view.start, end=view.end, step_s=step_s, **extra)

    def calls(self, view: View, *, order: str = "newest", limit: int = 50, cursor: str | None = None,
              **ranges: Any) -> tuple[pl.DataFrame, str | None]:
        """A page of `/v1/calls` and the cursor of the next one (None on the last page)."""
        body = self.body("/v1/calls", **view.params(), order=order, limit=limit, cursor=cursor, **ranges)
        return frame(body), body.get("next_cursor")

    def session(self, view: View, session_id: str) -> pl.DataFrame:
        """`/v1/sessions/{id}`: the session's calls in order with their input growth."""
        return self.get(f"/v1/sessions/{quote(session_id, safe='')}", start=view.start, end=view.end)

    def incidents(self, view: View) -> pl.DataFrame:
        """`/v1/incidents`: incidents open at any time in the view's range, with peak severity and cause."""
        body = self.body("/v1/incidents", start=view.start, end=view.end)
        _scope_text(body)
        return frame(body)

    def incident(self, incident_id: str) -> tuple[dict[str, Any], pl.DataFrame]:
        """`/v1/alerts/{id}` (uncached: it changes when acknowledged): the incident (latest version)
        and its transitions, oldest first."""
        body = fetch(self.url, self.key, self.page, f"/v1/alerts/{quote(incident_id, safe='')}", (), self.timeout)
        incident = dict(body.get("incident") or {})
        return incident, frame(body.get("events") or {})

    def silences(self, *, active: bool = True) -> pl.DataFrame:
        """`/v1/silences` (uncached: the page lists what it just created or lifted)."""
        return frame(fetch(self.url, self.key, self.page, "/v1/silences", query_pairs({"active": active}), self.timeout))

    def alerts(self, *, state: str = "open", limit: int = 200) -> tuple[bool, str, pl.DataFrame]:
        """(signals evaluated here?, detail, incidents); the incident's scope as `k=v, k=v` text."""
        body = self.body("/v1/alerts", state=state, limit=limit)
        _scope_text(body)
        return bool(body.get("engine")), str(body.get("detail") or ""), frame(body)

    def dead_letter_counts(self, view: View) -> pl.DataFrame:
        return self.get("/v1/dead-letters/counts", start=view.start, end=view.end)

    def dead_letters(self, view: View, *, limit: int = 50) -> pl.DataFrame:
        return self.get("/v1/dead-letters", start=view.start, end=view.end, limit=limit)

    def unpriced(self, view: View) -> pl.DataFrame:
        return self.get("/v1/unpriced", **view.params())

    def collectors(self) -> pl.DataFrame:
        return self.get("/v1/collectors")

    def price_list(self, *, models: Sequence[str] = (), like: str | None = None) -> pl.DataFrame:
        return self.get("/v1/price-list", model=list(models), like=like)
