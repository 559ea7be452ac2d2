"""API keys: creation, listing, revocation and constant-time verification.

A key is `llk_<key_id>_<secret>`; only SHA-256(secret) is stored (the secret is 256 random bits,
so a slow hash would add nothing). Scopes are `ingest`, `read`, `admin` (admin implies the
others); a key may be bound to one project. Verification reads a cached copy of the table,
refreshed every `cache_s` seconds, so a revocation takes effect within that delay (at once in
the process that revoked it). In the service, `KeyRefresher` re-reads it in the background, so no
request reads the table itself (with sparse traffic, every request would find the copy stale).

Two kinds of key are not in the table: `LocalKeys`, made afresh by each `llmledger up` for the
processes on its own machine (the CLI reads its token from the store's lock file, the dashboard
it starts gets the read one), which die with the process; and a bootstrap key given in the
environment (`KeyStore.ensure`), stored like any other so a fresh deployment has a first key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from warehouse.client import Warehouse

_PREFIX = "llk_"
MIN_SECRET = 32
log = logging.getLogger(__name__)


class KeyScope(StrEnum):
    """What a key may do."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the secret)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    project: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: KeyScope) -> bool:
        """True when the key has `scope` (admin has every scope)."""
        return scope.value in self.scopes or KeyScope.ADMIN.value in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed token, else None."""
    if not token.startswith(_PREFIX):
        return None
    key_id, sep, secret = token[len(_PREFIX):].partition("_")
    if not sep or not key_id or not secret or len(token) > 200:
        return None
    return key_id, secret


class KeyStore:
    """The `api_keys` table with a short-lived in-memory copy for verification."""

    def __init__(self, wh: Warehouse, *, cache_s: float = 2.0) -> None:
        self.wh = wh
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._keys: dict[str, tuple[ApiKey, str]] = {}

    def _refresh(self, force: bool = False) -> dict[str, tuple[ApiKey, str]]:
        # A due refresh is done by one request; the others answer from the copy they have rather
        # than queue behind it (the query may wait for a large flush into the warehouse).
        loaded = self._loaded_at > -1e18
        if not force and loaded and time.monotonic() - self._loaded_at <= self.cache_s:
            return self._keys
        if not self._lock.acquire(blocking=force or not loaded):
            return self._keys
        try:
            if force or time.monotonic() - self._loaded_at > self.cache_s:
                rows = self.wh.query_rows(
                    "SELECT key_id, name, scopes, project, created_at, revoked_at, secret_sha256 "
                    "FROM api_keys FINAL ORDER BY created_at",
                    tag="service:keys",
                )
                self._keys = {
                    r[0]: (ApiKey(r[0], r[1], tuple(r[2]), r[3] or None, r[4], r[5]), r[6]) for r in rows
                }
                self._loaded_at = time.monotonic()
            return self._keys
        finally:
            self._lock.release()

    def reload(self) -> None:
        """Re-read the table now (the background refresh)."""
        self._refresh(force=True)

    @property
    def age_s(self) -> float | None:
        """Seconds since the copy was read (None before the first read)."""
        return None if self._loaded_at <= -1e18 else time.monotonic() - self._loaded_at

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included)."""
        return [key for key, _ in self._refresh(force=True).values()]

    def any_active(self) -> bool:
        """True when at least one unrevoked key exists."""
        return any(key.active for key, _ in self._refresh().values())

    def create(self, scopes: list[KeyScope], *, project: str | None = None, name: str = "") -> tuple[ApiKey, str]:
        """A new key and its token (shown once; only its hash is stored)."""
        if not scopes:
            raise ValueError("a key needs at least one scope")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        key = ApiKey(key_id, name, tuple(sorted({s.value for s in scopes})), project or None, now, None)
        self._write(key, _digest(secret))
        return key, f"{_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key; returns it, or None when no such key exists."""
        entry = self._refresh(force=True).get(key_id)
        if entry is None:
            return None
        key, digest = entry
        if key.active:
            # strictly newer than the creation row, so the replacing engine keeps the revocation
            revoked_at = max(datetime.now(UTC), key.created_at.astimezone(UTC) + timedelta(milliseconds=1))
            key = ApiKey(key.key_id, key.name, key.scopes, key.project, key.created_at, revoked_at)
            self._write(key, digest)
        return key

    def ensure(self, token: str, scopes: list[KeyScope], *, name: str) -> ApiKey:
        """Store the key of a token chosen outside llmledger (a deployment's bootstrap key) unless it
        exists; a revoked one stays revoked. Raises ValueError for a malformed or short token."""
        parsed = parse_token(token)
        if parsed is None or len(parsed[1]) < MIN_SECRET:
            raise ValueError(f"a bootstrap key looks like llk_<id>_<secret> with a secret of at least {MIN_SECRET} "
                             "characters, e.g. from `python -c \"import secrets; print('llk_boot_' + "
                             "secrets.token_urlsafe(32))\"`")
        key_id, secret = parsed
        entry = self._refresh(force=True).get(key_id)
        if entry is not None:
            if not hmac.compare_digest(entry[1], _digest(secret)):
                raise ValueError(f"a different key with id {key_id!r} exists: choose another id for the bootstrap key")
            return entry[0]
        key = ApiKey(key_id, name, tuple(sorted({s.value for s in scopes})), None, datetime.now(UTC), None)
        self._write(key, _digest(secret))
        return key

    def verify(self, token: str) -> ApiKey | None:
        """The active key a token belongs to, or None. The secret is compared in constant time."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        entry = self._refresh().get(key_id)
        if entry is None:
            hmac.compare_digest(_digest(secret), "0" * 64)  # same work whether or not the id exists
            return None
        key, digest = entry
        if not hmac.compare_digest(_digest(secret), digest) or not key.active:
            return None
        return key

    def _write(self, key: ApiKey, digest: str) -> None:
        self.wh.command(
            "INSERT INTO api_keys (key_id, secret_sha256, name, scopes, project, created_at, revoked_at, updated_at) "
            "VALUES ({k:String}, {h:String}, {n:String}, {s:Array(String)}, {p:String}, {c:DateTime64(3, 'UTC')}, "
            "{r:Nullable(DateTime64(3, 'UTC'))}, {u:DateTime64(3, 'UTC')})",
            {"k": key.key_id, "h": digest, "n": key.name, "s": list(key.scopes), "p": key.project or "",
             "c": key.created_at, "r": key.revoked_at, "u": key.revoked_at or key.created_at},
            tag="service:keys",
        )
        self._refresh(force=True)


class KeyRefresher:
    """A service component re-reading the key table every half `cache_s` from a thread of its own,
    so the copy requests verify against is never stale and no request pays the read (~1–2 ms of
    engine time, on the event loop, behind any flush holding the writer's connection). Should it
    fall behind, requests re-read a stale copy themselves, as without it. With `cache_s` 0 (read
    on every request) it does nothing."""

    name = "keys"

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.keys.cache_s > 0:
            self._thread = threading.Thread(target=self._run, name="keys-refresh", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.keys.cache_s / 2):
            try:
                self.keys.reload()
            except Exception:  # noqa: BLE001 - requests re-read a stale copy themselves meanwhile
                log.warning("re-reading the API keys failed; requests will re-read them", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def health(self) -> dict[str, object]:
        age = self.keys.age_s
        return {"state": "running" if self._thread is not None and self._thread.is_alive() else "off",
                "age_s": None if age is None else round(age, 1)}


@dataclass(frozen=True)
class LocalKeys:
    """Per-run keys for processes on the service's own machine: `cli` (admin; commands find it in the
    store's lock file, readable by its owner only) and `dashboard` (read; given to the dashboard the
    service starts). They exist in this process's memory only and die with it."""

    cli: str
    dashboard: str

    @classmethod
    def generate(cls) -> LocalKeys:
        return cls(f"{_PREFIX}local-cli_{secrets.token_urlsafe(32)}",
                   f"{_PREFIX}local-dashboard_{secrets.token_urlsafe(32)}")

    def verify(self, token: str) -> ApiKey | None:
        """The local key a token is, or None (compared in constant time)."""
        for token_of, scopes in ((self.cli, (KeyScope.ADMIN.value,)), (self.dashboard, (KeyScope.READ.value,))):
            if hmac.compare_digest(token.encode(), token_of.encode()):
                key_id = token_of[len(_PREFIX):].partition("_")[0]
                return ApiKey(key_id, key_id, scopes, None, datetime.now(UTC), None)
        return None
