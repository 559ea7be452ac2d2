"""A local stand-in for Slack speaking the Web API and incoming-webhook shapes of formats.md §9:
`POST /api/chat.postMessage` → `{"ok": true, "channel": <id>, "ts": …, "message": …}` (or a scripted
429 with Retry-After, a 5xx, or an `{"ok": false, "error": …}`), `POST /hooks/…` → `ok`, and the
reads a sender uses to find its own messages again: `conversations.list`, `conversations.history`
and `conversations.replies` (GET; message `metadata` only with `include_all_metadata`, as Slack).

It records every message it accepted with its metadata, so tests can assert on what people would
see. Modes, switchable while it runs: `down` (503 to everything), `error` (500), `rate_limited`
(429 with `retry_after`), `slow_s` (a post is recorded — accepted — and answered only after that
many seconds). Every request's method is kept in `calls` (with the time, for per-pass counts).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def channel_id(name: str) -> str:
    """The stand-in's id of a channel name ('#llm-alerts' → 'C…'); ids pass through."""
    if name[:1] in "CGD" and name[1:].isalnum() and name.isupper():
        return name
    return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:9].upper()


@dataclass
class SlackStandIn:
    """State of the stand-in: scripted failures, modes and the messages it accepted."""

    script: deque[tuple[int, dict[str, Any] | str, dict[str, str]]] = field(default_factory=deque)
    down: bool = False  # answer every call with 503
    error: bool = False  # answer every call with 500
    rate_limited: bool = False  # answer every call with 429
    retry_after: int = 1
    slow_s: float = 0.0  # accept a post, then answer after this long
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    calls: list[tuple[float, str, int]] = field(default_factory=list)  # (monotonic time, method, status)
    auth: list[str] = field(default_factory=list)
    port: int = 0
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/xyz"

    def next_ts(self) -> str:
        """A message ts: the wall clock (as Slack's), strictly increasing."""
        self._last = max(time.time(), getattr(self, "_last", 0.0) + 1e-6)
        return f"{self._last:.6f}"

    def outbox_ids(self) -> list[str]:
        """The outbox id in each accepted message's metadata, in the order accepted."""
        return [((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id", "") for m in self.messages]

    def count(self, method: str, *, status: int | None = None, since: float = 0.0) -> int:
        """Requests to `method` (with that answer status) since a monotonic instant."""
        return sum(1 for t, m, s in list(self.calls) if m == method and t >= since and (status is None or s == status))


def _handler(state: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
            state.calls.append((time.monotonic(), self._method, status))
            raw = (json.dumps(body) if isinstance(body, dict) else body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except OSError:
                pass  # the client went away (killed mid-request): what it sent was still accepted

        def _failure(self) -> bool:
            state.requests += 1
            if state.down:
                self._reply(503, {"ok": False, "error": "service_unavailable"})
            elif state.error:
                self._reply(500, {"ok": False, "error": "internal_error"})
            elif state.rate_limited:
                self._reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(state.retry_after)})
            elif state.script:
                status, body, headers = state.script.popleft()
                self._reply(status, body, headers)
            else:
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            self._method = url.path.removeprefix("/api/")
            if self._failure():
                return
            self._read(dict(parse_qsl(url.query)))

        def _read(self, query: dict[str, str]) -> None:
            if self._method == "conversations.list":
                names = sorted({m["channel"] for m in state.messages if "channel" in m} | {"#llm-alerts"})
                self._reply(200, {"ok": True, "channels": [{"id": channel_id(n), "name": n.lstrip("#")}
                                                           for n in names], "response_metadata": {"next_cursor": ""}})
                return
            if self._method not in ("conversations.history", "conversations.replies"):
                self._reply(404, {"ok": False, "error": "unknown_method"})
                return
            wanted = query.get("channel", "")
            oldest = float(query.get("oldest") or 0)
            with_meta = query.get("include_all_metadata") in ("1", "true", "True")
            with state._lock:  # noqa: SLF001
                found = [m for m in state.messages if not m.get("webhook") and channel_id(m["channel"]) == wanted]
            if self._method == "conversations.history":  # the channel: top-level and broadcast replies
                found = [m for m in found if not m.get("thread_ts") or m.get("reply_broadcast")]
                found = sorted(found, key=lambda m: m["ts"], reverse=True)  # newest first, as Slack
            else:  # the thread: its parent and replies, oldest first
                found = [m for m in found if m["ts"] == query.get("ts") or m.get("thread_ts") == query.get("ts")]
                found = sorted(found, key=lambda m: m["ts"])
            found = [m for m in found if m["ts"] == query.get("ts") or float(m["ts"]) >= oldest]
            start = int(query.get("cursor") or 0)
            limit = int(query.get("limit") or 100)
            page = found[start:start + limit]
            more = start + limit < len(found)
            out = [{"type": "message", "ts": m["ts"], "text": m.get("text"),
                    **({"thread_ts": m["thread_ts"]} if m.get("thread_ts") else {}),
                    **({"metadata": m["metadata"]} if with_meta and m.get("metadata") else {})} for m in page]
            self._reply(200, {"ok": True, "messages": out, "has_more": more,
                              "response_metadata": {"next_cursor": str(start + limit) if more else ""}})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            self._method = self.path.removeprefix("/api/") if self.path.startswith("/api/") else "webhook"
            if self._failure():
                return
            if self._method.startswith("conversations."):  # slack-sdk sends these as form posts
                url = urlsplit(self.path)
                self._method = url.path.removeprefix("/api/")
                self._read({**dict(parse_qsl(url.query)), **dict(parse_qsl(raw.decode()))})
                return
            payload = json.loads(raw or b"{}")
            if self.path.startswith("/hooks/"):
                state.messages.append({"webhook": True, **payload})
                self._reply(200, "ok")
                return
            if self.path != "/api/chat.postMessage":
                self._reply(404, {"ok": False, "error": "unknown_method"})
                return
            state.auth.append(self.headers.get("Authorization", ""))
            with state._lock:  # noqa: SLF001
                ts = state.next_ts()
                message = {"ts": ts, **payload}
                state.messages.append(message)
            if state.slow_s:
                time.sleep(state.slow_s)  # accepted: a sender killed now has posted it
            self._reply(200, {"ok": True, "channel": channel_id(payload.get("channel", "")), "ts": ts,
                              "message": {"text": payload.get("text"), "ts": ts}})

    return Handler


@contextmanager
def slack_stand_in() -> Iterator[SlackStandIn]:
    """Run the stand-in on a free local port for the duration of the block."""
    state = SlackStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
