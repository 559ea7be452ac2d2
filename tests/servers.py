"""Small local HTTP servers that speak the documented shapes of outside systems (formats.md §1, §2,
§7, §8), so the real httpx client runs end to end against them.

`ProviderServer` serves OpenAI's organization usage/costs API and Anthropic's usage/cost
reports from recorded buckets: time filtering, grouping (fields of groupings not asked for are
null and alike results summed, as the APIs answer), bucket-count pagination with page tokens, auth
headers, and fault injection (scripted 429/500 answers, token invalidation, an outage after N
pages, revised buckets). It also serves Anthropic's Usage & Cost Analytics API (beta) over the
same recorded usage, as its documented rows (one per time bucket and group, `group` / `usage` /
`cost` objects, empty buckets omitted): the beta header, `group_by[]` aggregation (at most 5),
the 31-day range cap, `order_by=time`, row-count pagination that splits buckets across pages. `MetricsServer` serves Prometheus text bodies, one per scrape.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "collectors"

OPENAI_KEY = "sk-admin-test-openai-secret"
ANTHROPIC_KEY = "sk-ant-admin-test-secret"

OPENAI_PATHS = {"/v1/organization/usage/completions", "/v1/organization/costs"}
ANALYTICS_USAGE, ANALYTICS_COST = "/v1/organizations/analytics/usage", "/v1/organizations/analytics/cost"
ANALYTICS_PATHS = {ANALYTICS_USAGE, ANALYTICS_COST}
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
ANTHROPIC_PATHS = {"/v1/organizations/usage_report/messages", "/v1/organizations/cost_report"} | ANALYTICS_PATHS
_GROUP_BY = {
    "/v1/organization/usage/completions": {"project_id", "user_id", "api_key_id", "model", "batch", "service_tier"},
    "/v1/organization/costs": {"project_id", "line_item", "api_key_id"},
    "/v1/organizations/usage_report/messages": {"api_key_id", "workspace_id", "model", "service_tier",
                                                "context_window", "inference_geo"},
    "/v1/organizations/cost_report": {"workspace_id", "description"},
    ANALYTICS_USAGE: {"actor", "api_key_id", "context_window", "inference_geo", "model", "service_tier",
                      "workspace_id"},
    ANALYTICS_COST: {"api_key_id", "context_window", "cost_type", "inference_geo", "model", "service_tier",
                     "token_type", "workspace_id"},
}


# per endpoint: group_by value → the result fields that are null unless the request groups by it
_GROUP_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "/v1/organization/usage/completions": {g: (g,) for g in _GROUP_BY["/v1/organization/usage/completions"]},
    "/v1/organization/costs": {"project_id": ("project_id",), "api_key_id": ("api_key_id",),
                               "line_item": ("line_item", "quantity", "quantity_unit")},
    "/v1/organizations/usage_report/messages": {g: (g,) for g in _GROUP_BY["/v1/organizations/usage_report/messages"]},
    "/v1/organizations/cost_report": {"workspace_id": ("workspace_id",),
                                      "description": ("description", "cost_type", "model", "service_tier",
                                                      "context_window", "token_type", "inference_geo", "speed")},
}


def _is_measure(key: str, value: Any) -> bool:
    if key == "amount":
        return True
    if isinstance(value, dict):
        return bool(value) and all(_is_measure(k, v) for k, v in value.items())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {k: (_add(a[k], b[k]) if k in b and _is_measure(k, a[k]) else a[k]) for k in a}
    if isinstance(a, str):  # Anthropic's cents as decimal text
        return str(Decimal(a) + Decimal(b))
    total = Decimal(str(a)) + Decimal(str(b))
    return int(total) if isinstance(a, int) and isinstance(b, int) else float(total)


def project_results(path: str, results: list[dict[str, Any]], group_by: list[str]) -> list[dict[str, Any]]:
    """Results as the API answers a request grouped by `group_by`: fields of other groupings are
    null, and results that then look alike are one, their counts and amounts summed."""
    dropped = {f for g, fields in _GROUP_FIELDS[path].items() if g not in group_by for f in fields}
    merged: dict[str, dict[str, Any]] = {}
    for result in results:
        row = {k: (None if k in dropped else v) for k, v in result.items()}
        ident = json.dumps({k: v for k, v in row.items() if not _is_measure(k, v)}, sort_keys=True)
        if ident in merged:
            merged[ident] = {k: (_add(v, row[k]) if _is_measure(k, v) and row.get(k) is not None else v)
                             for k, v in merged[ident].items()}
        else:
            merged[ident] = row
    return list(merged.values())


@dataclass
class Scripted:
    """One canned answer served instead of the normal one."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """A request the server received (auth headers reduced to whether they were right)."""

    path: str
    params: dict[str, list[str]]
    status: int = 0

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class ProviderServer:
    """OpenAI + Anthropic admin usage/cost APIs over recorded buckets."""

    def __init__(self, datasets: dict[str, list[dict[str, Any]]]) -> None:
        self.datasets = {path: list(buckets) for path, buckets in datasets.items()}
        self.requests: list[Seen] = []
        self.scripts: dict[str, list[Scripted]] = {}
        self.generation = 0
        self.pages_served = 0
        self.outage_after_pages: int | None = None
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---- fault injection -------------------------------------------------------------

    def script(self, path: str, *answers: Scripted) -> None:
        """Serve `answers` to the next requests of `path`, in order, before normal answers."""
        self.scripts.setdefault(path, []).extend(answers)

    def invalidate_tokens(self) -> None:
        """Every page token issued so far is refused from now on (HTTP 400)."""
        self.generation += 1

    def revise(self, path: str, start: str, results: list[dict[str, Any]]) -> None:
        """Replace the results of the bucket starting at `start` (a late revision by the provider)."""
        for bucket in self.datasets[path]:
            if _bucket_start(bucket) == _parse_time(start):
                bucket["results"] = results
                return
        raise KeyError(start)

    # ---- serving ---------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parsed = urlparse(self.path)
                seen = Seen(parsed.path, parse_qs(parsed.query))
                with server.lock:
                    server.requests.append(seen)
                    status, body, headers = server._answer(parsed.path, seen.params, self.headers)
                seen.status = status
                payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _answer(self, path: str, params: dict[str, list[str]], headers: Any) -> tuple[int, Any, dict[str, str]]:
        if path not in self.datasets:
            return 404, {"error": {"message": f"no route {path}"}}, {}
        anthropic = path in ANTHROPIC_PATHS
        if anthropic:
            if headers.get("x-api-key") != ANTHROPIC_KEY:
                return 401, {"type": "error", "error": {"type": "authentication_error",
                                                        "message": "invalid x-api-key"}}, {}
            if not headers.get("anthropic-version"):
                return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                        "message": "anthropic-version header is required"}}, {}
        elif headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, {}
        queue = self.scripts.get(path)
        if queue:
            answer = queue.pop(0)
            return answer.status, answer.body if answer.body is not None else {"error": {"message": "scripted"}}, \
                answer.headers
        if self.outage_after_pages is not None and self.pages_served >= self.outage_after_pages:
            return 503, {"error": {"message": "service unavailable"}}, {}
        group_by = params.get("group_by[]", []) + params.get("group_by", [])
        unknown = set(group_by) - _GROUP_BY[path]
        if unknown:
            return 400, _invalid(anthropic, f"invalid group_by {sorted(unknown)}"), {}
        if path in ANALYTICS_PATHS:
            return self._analytics(path, params, headers, group_by)
        start = _parse_time(params[("starting_at" if anthropic else "start_time")][0])
        end_values = params.get("ending_at" if anthropic else "end_time")
        end = _parse_time(end_values[0]) if end_values else None
        limit = int(params.get("limit", ["7"])[0])
        buckets = [b for b in self.datasets[path]
                   if _bucket_start(b) >= start and (end is None or _bucket_start(b) < end)]
        offset = self._offset(params)
        if offset is None:
            return 400, _invalid(anthropic, "Invalid page token"), {}
        page = [{**b, "results": project_results(path, b.get("results") or [], group_by)}
                for b in buckets[offset:offset + limit]]
        more = offset + limit < len(buckets)
        self.pages_served += 1
        token = _token(self.generation, offset + limit) if more else None
        body: dict[str, Any] = {"data": page, "has_more": more, "next_page": token}
        if not anthropic:
            body = {"object": "page", **body}
        return 200, body, {}


    def _offset(self, params: dict[str, list[str]]) -> int | None:
        """Where the page token points (0 without one); None for a refused token."""
        if "page" not in params:
            return 0
        try:
            generation, offset = _read_token(params["page"][0])
        except ValueError:
            return None
        return offset if generation == self.generation else None

    def _analytics(self, path: str, params: dict[str, list[str]], headers: Any,
                   group_by: list[str]) -> tuple[int, Any, dict[str, str]]:
        """Rows of the analytics API: aggregated by `group_by[]`, in time order, `limit` rows a page."""
        if ANALYTICS_BETA not in (headers.get("anthropic-beta") or ""):
            return 400, _invalid(True, f"this endpoint requires the anthropic-beta header {ANALYTICS_BETA}"), {}
        if len(group_by) > 5:
            return 400, _invalid(True, "group_by[] takes at most 5 dimensions"), {}
        width = params.get("time_bucket_width", [None])[0]
        if width not in ("1d", "1h", "1m") or "ending_at" not in params:
            return 400, _invalid(True, "time_bucket_width and ending_at are required here"), {}
        start, end = _parse_time(params["starting_at"][0]), _parse_time(params["ending_at"][0])
        if end - start > (timedelta(hours=24) if width == "1m" else timedelta(days=31)):
            return 400, _invalid(True, "the range may span at most 31 days"), {}
        if params.get("order_by", [""])[0] != "time" or params.get("order", ["desc"])[0] != "asc":
            return 400, _invalid(True, "this stand-in serves order_by=time&order=asc only"), {}
        rows = _aggregate([r for r in self.datasets[path] if start <= _parse_time(r["starting_at"]) < end],
                          group_by, cost=path == ANALYTICS_COST)
        offset = self._offset(params)
        if offset is None:
            return 400, _invalid(True, "Invalid page token"), {}
        limit = int(params.get("limit", ["20"])[0])
        more = offset + limit < len(rows)
        self.pages_served += 1
        return 200, {"data": rows[offset:offset + limit], "has_more": more,
                     "next_page": _token(self.generation, offset + limit) if more else None,
                     "data_refreshed_at": "2025-12-01T00:00:00Z"}, {}


def _aggregate(rows: list[dict[str, Any]], group_by: list[str], *, cost: bool) -> list[dict[str, Any]]:
    """Rows summed per time bucket and requested dimensions (the others null), ascending in time."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        group = {k: (v if k in group_by else None) for k, v in row["group"].items()}
        key = (row["starting_at"], json.dumps(group, sort_keys=True))
        if key not in out:
            out[key] = {"starting_at": row["starting_at"], "ending_at": row["ending_at"], "group": group,
                        **({"cost": dict(row["cost"])} if cost else {"usage": json.loads(json.dumps(row["usage"]))})}
            continue
        into = out[key]
        if cost:
            into["cost"]["amount"] = str(Decimal(into["cost"]["amount"]) + Decimal(row["cost"]["amount"]))
            into["cost"]["list_amount"] = str(Decimal(into["cost"]["list_amount"]) + Decimal(row["cost"]["list_amount"]))
        else:
            _add_into(into["usage"], row["usage"])
    return sorted(out.values(), key=lambda r: r["starting_at"])


def _add_into(into: dict[str, Any], more: dict[str, Any]) -> None:
    for k, v in more.items():
        if isinstance(v, dict):
            _add_into(into.setdefault(k, {}), v)
        elif isinstance(v, int):
            into[k] = (into.get(k) or 0) + v


def analytics_rows(legacy: list[dict[str, Any]], *, cost: bool) -> list[dict[str, Any]]:
    """The analytics API's rows for the usage (or cost) of legacy report buckets: one row per result,
    its dimensions under `group`, its figures under `usage` (with a request count) or `cost`."""
    rows = []
    for bucket in legacy:
        for n, r in enumerate(bucket.get("results") or []):
            dims = ("workspace_id", "model", "service_tier", "context_window") + \
                (("cost_type", "token_type") if cost else ("api_key_id",))
            group = {k: r.get(k) for k in dims}
            if cost:
                group["api_key_id"] = None
                figures = {"cost": {"amount": r["amount"], "currency": r.get("currency") or "USD",
                                    "list_amount": r["amount"], "requests": None}}
            else:
                group["actor"] = {"type": "user_actor", "user_id": f"user_{r.get('api_key_id')}", "deleted": False,
                                  "email_address": None, "name": None}
                figures = {"usage": {k: r[k] for k in ("uncached_input_tokens", "cache_read_input_tokens",
                                                       "cache_creation", "output_tokens", "server_tool_use")}}
                figures["usage"]["requests"] = 10 + n
                figures["usage"]["total_tokens"] = r["uncached_input_tokens"] + r["cache_read_input_tokens"] + \
                    sum(r["cache_creation"].values()) + r["output_tokens"]
            rows.append({"starting_at": bucket["starting_at"], "ending_at": bucket["ending_at"], "group": group,
                         **figures})
    return rows


def _invalid(anthropic: bool, message: str) -> dict[str, Any]:
    if anthropic:
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error"}}


def _token(generation: int, offset: int) -> str:
    return "page_" + base64.b64encode(f"{generation}:{offset}".encode()).decode()


def _read_token(token: str) -> tuple[int, int]:
    generation, offset = base64.b64decode(token.removeprefix("page_")).decode().split(":")
    return int(generation), int(offset)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _bucket_start(bucket: dict[str, Any]) -> datetime:
    return _parse_time(bucket["start_time"] if "start_time" in bucket else bucket["starting_at"])


def load_datasets() -> dict[str, list[dict[str, Any]]]:
    """The recorded buckets of every provider endpoint (tests/fixtures/collectors/…)."""
    files = {
        "/v1/organization/usage/completions": "openai/usage_completions.json",
        "/v1/organization/costs": "openai/costs.json",
        "/v1/organizations/usage_report/messages": "anthropic/usage_messages.json",
        "/v1/organizations/cost_report": "anthropic/cost_report.json",
    }
    datasets = {path: json.loads((FIXTURES / name).read_text())["data"] for path, name in files.items()}
    datasets[ANALYTICS_USAGE] = analytics_rows(datasets["/v1/organizations/usage_report/messages"], cost=False)
    datasets[ANALYTICS_COST] = analytics_rows(datasets["/v1/organizations/cost_report"], cost=True)
    return datasets


@contextmanager
def provider_server() -> Iterator[ProviderServer]:
    """A running ProviderServer over the recorded fixtures."""
    server = ProviderServer(load_datasets()).start()
    try:
        yield server
    finally:
        server.stop()


class MetricsServer:
    """Serves Prometheus text at any path: `bodies[path]` is a list, one body per scrape (the last
    one repeats); `fail[path]` makes that path answer 500."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[str]] = {}
        self.fail: set[str] = set()
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path = urlparse(self.path).path
                n = server.hits.get(path, 0)
                server.hits[path] = n + 1
                bodies = server.bodies.get(path)
                if path in server.fail or not bodies:
                    self.send_response(500 if path in server.fail else 404)
                    self.end_headers()
                    return
                payload = bodies[min(n, len(bodies) - 1)].encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
