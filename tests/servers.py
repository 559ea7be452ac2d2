"""Small local HTTP servers that speak the documented shapes of outside systems (formats.md §1, §2,
§7, §8), so the real httpx client runs end to end against them.

`ProviderServer` serves OpenAI's organization usage/costs API and Anthropic's usage/cost
reports from recorded buckets: time filtering, grouping (fields of groupings not asked for are
null and alike results summed, as the APIs answer), bucket-count pagination with page tokens, auth
headers, and fault injection (scripted 429/500 answers, token invalidation, an outage after N
pages, revised buckets). `MetricsServer` serves Prometheus text bodies, one per scrape.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "collectors"

OPENAI_KEY = "sk-admin-test-openai-secret"
ANTHROPIC_KEY = "sk-ant-admin-test-secret"

OPENAI_PATHS = {"/v1/organization/usage/completions", "/v1/organization/costs"}
ANTHROPIC_PATHS = {"/v1/organizations/usage_report/messages", "/v1/organizations/cost_report"}
_GROUP_BY = {
    "/v1/organization/usage/completions": {"project_id", "user_id", "api_key_id", "model", "batch", "service_tier"},
    "/v1/organization/costs": {"project_id", "line_item", "api_key_id"},
    "/v1/organizations/usage_report/messages": {"api_key_id", "workspace_id", "model", "service_tier",
                                                "context_window", "inference_geo"},
    "/v1/organizations/cost_report": {"workspace_id", "description"},
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
        start = _parse_time(params[("starting_at" if anthropic else "start_time")][0])
        end_values = params.get("ending_at" if anthropic else "end_time")
        end = _parse_time(end_values[0]) if end_values else None
        limit = int(params.get("limit", ["7"])[0])
        buckets = [b for b in self.datasets[path]
                   if _bucket_start(b) >= start and (end is None or _bucket_start(b) < end)]
        offset = 0
        if "page" in params:
            try:
                generation, offset = _read_token(params["page"][0])
            except ValueError:
                generation = -1
            if generation != self.generation:
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
    return {path: json.loads((FIXTURES / name).read_text())["data"] for path, name in files.items()}


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
