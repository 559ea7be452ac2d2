"""A local stand-in for Slack speaking the Web API and incoming-webhook shapes of formats.md §9:
`POST /api/chat.postMessage` → `{"ok": true, "channel": …, "ts": …, "message": …}` (or a scripted
429 with Retry-After, a 5xx, or an `{"ok": false, "error": …}`), `POST /hooks/…` → `ok`.
It records every request it accepted, so tests can assert on what people would see.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class SlackStandIn:
    """State of the stand-in: scripted failures and the messages it accepted."""

    script: deque[tuple[int, dict[str, Any] | str, dict[str, str]]] = field(default_factory=deque)
    down: bool = False  # answer every call with 503
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    auth: list[str] = field(default_factory=list)
    port: int = 0
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/xyz"

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"


def _handler(state: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
            raw = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            state.requests += 1
            if state.down:
                self._reply(503, {"ok": False, "error": "service_unavailable"})
                return
            if state.script:
                status, body, headers = state.script.popleft()
                self._reply(status, body, headers)
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
            ts = state.next_ts()
            message = {"ts": ts, **payload}
            state.messages.append(message)
            self._reply(200, {"ok": True, "channel": payload.get("channel"), "ts": ts,
                              "message": {"text": payload.get("text"), "ts": ts}})

    return Handler


@contextmanager
def slack_stand_in() -> Iterator[SlackStandIn]:
    """Run the stand-in on a free local port for the duration of the block."""
    state = SlackStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
