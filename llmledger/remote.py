"""The CLI's client of a running llmledger service.

`ServiceClient(url, token)` sends one request and returns its JSON, or raises `UserError` with a
message a person can act on (cannot reach, key missing or refused, not found, invalid input, the
service's own error). `run()` reads a streamed answer — progress events, then the result — into a
local progress feed; `upload()` streams a file as a request body; `download()` streams an answer
to a file. The key comes from `LLMLEDGER_API_KEY`, else (for the service holding this machine's
store) the per-run token it left in the store's lock file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.query import query_pairs
from llmledger.errors import UserError
from llmledger.progress import SILENT, Feed, ProgressEvents

API_KEY_ENV = "LLMLEDGER_API_KEY"
NDJSON = "application/x-ndjson"
CHUNK = 1 << 20


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:300].strip()
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


@dataclass(frozen=True)
class ServiceClient:
    """A service at `url`; `token` is sent as the bearer key; `found`: located through the lock file."""

    url: str
    token: str | None = None
    found: bool = False
    timeout: float = 60.0

    def _client(self, *, long: bool = False) -> Any:
        """An HTTP client; `long`: no read timeout (an operation streams progress for as long as it runs)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url.rstrip("/"), headers=headers,
                            timeout=httpx.Timeout(self.timeout, read=None if long else 300))

    def _check(self, response: Any, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        if hasattr(response, "read"):
            response.read()
        detail = _detail(response)
        if status == 401 and self.token and not self.found:
            raise UserError(f"the llmledger service at {self.url} refused the API key in {API_KEY_ENV}",
                            "use a key `llmledger keys list` shows as active")
        if status == 401:
            raise UserError(f"the llmledger service at {self.url} needs an API key",
                            f"set {API_KEY_ENV} to a key with the right scope (`llmledger keys create`)")
        if status == 403:
            raise UserError(f"the service at {self.url} refused: {detail}",
                            f"use a key with that scope in {API_KEY_ENV}")
        if status == 404 and detail in ("Not Found", ""):
            raise UserError(f"the service at {self.url} has no {path}",
                            "it runs an older llmledger: upgrade it, or stop it and run the command here")
        if status >= 500:
            raise UserError(f"the service at {self.url} failed: {detail}", "its log says more")
        raise UserError(detail or f"the service answered {status} to {path}")

    def _unreachable(self, err: Exception) -> UserError:
        import httpx

        if isinstance(err, httpx.TimeoutException):
            return UserError(f"the llmledger service at {self.url} did not answer in time")
        hint = ("it holds the store but does not answer: it may be shutting down; try again in a moment"
                if self.found else "is `llmledger up` running there? (--api URL, or LLMLEDGER_SERVICE__PORT)")
        return UserError(f"cannot reach the llmledger service at {self.url} ({type(err).__name__})", hint)

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                content: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """One request; the JSON answer (None for 204)."""
        import httpx

        try:
            with self._client() as client:
                response = client.request(method, path, params=query_pairs(params or {}), json=body,
                                          content=content, headers=dict(headers or {}))
        except httpx.HTTPError as err:
            raise self._unreachable(err) from err
        self._check(response, path)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, params=params, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def rows(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """A `{columns, rows}` table endpoint as a list of row dicts."""
        return list((self.get(path, **params) or {}).get("rows") or [])

    def run(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
            content: Any = None, feed: Feed = SILENT) -> Any:
        """A long operation: its progress events drawn on `feed` while it runs, then its result."""
        import httpx

        events = ProgressEvents(feed)
        try:
            with self._client(long=True) as client, client.stream(
                method, path, params=query_pairs(params or {}), json=body, content=content,
                headers={"Accept": NDJSON},
            ) as response:
                self._check(response, path)
                if not response.headers.get("content-type", "").startswith(NDJSON):
                    response.read()
                    return response.json()
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if "result" in event:
                        return event["result"]
                    if "error" in event:
                        error = event["error"]
                        raise UserError(str(error.get("detail") or "the operation failed"),
                                        error.get("hint") or None)
                    events.apply(event)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from err
        raise UserError(f"the service at {self.url} stopped answering before {path} finished", "its log says why")

    def download(self, path: str, target: Path, **params: Any) -> int:
        """Stream an answer into `target`; returns its size in bytes."""
        import httpx

        size = 0
        try:
            with self._client(long=True) as client, client.stream("GET", path, params=query_pairs(params)) as response:
                self._check(response, path)
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        size += len(chunk)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from err
        return size


def file_chunks(path: Path, feed: Feed, description: str) -> Iterator[bytes]:
    """A file's bytes for an upload, advancing an upload bar on `feed`."""
    advance = feed.task(description, path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            advance(len(chunk))
            yield chunk
