"""Signed-in visitors of the dashboard: their API key stays in this process, their browser holds
only a random session id in an HttpOnly cookie, so a sign-in survives reloads and deep links
until it expires (`SESSION_TTL`) or the visitor signs out.

Signing in happens on a page (Streamlit cannot set cookies): the key is checked against the API,
a session is made with a one-time ticket, and the browser is sent to `/sign-in/complete?ticket=…`
(`dashboards/server.py`), which swaps the ticket for the cookie and returns to the page. Sessions
live in memory: restarting the dashboard signs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

COOKIE = "llmledger_session"
SESSION_TTL_S = 12 * 3600
TICKET_TTL_S = 120


@dataclass
class _Session:
    key: str
    expires: float


class Sessions:
    """Session id → API key, with expiry; tickets that turn into a session's cookie once."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._tickets: dict[str, tuple[str, float]] = {}

    def start(self, key: str) -> str:
        """A new session for `key`; returns the one-time ticket that hands its cookie to the browser."""
        now = time.monotonic()
        session_id, ticket = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            self._purge(now)
            self._sessions[session_id] = _Session(key, now + self.ttl_s)
            self._tickets[ticket] = (session_id, now + TICKET_TTL_S)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The session id a ticket was made for (once, before it expires)."""
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def key(self, session_id: str | None) -> str | None:
        """The API key of a live session."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires < time.monotonic():
                self._sessions.pop(session_id, None)
                return None
            return session.key

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _purge(self, now: float) -> None:
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires >= now}
        self._tickets = {k: t for k, t in self._tickets.items() if t[1] >= now}


SESSIONS = Sessions()


def local_path(target: str | None) -> str:
    """`target` when it is a path on this site (no open redirects), else `/`."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
