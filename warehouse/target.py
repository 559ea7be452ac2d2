"""Where a ClickHouse server is and how to reach it, parsed from one `clickhouse://` URL.

`clickhouse://user:pass@host:8123/db?secure=1&verify=1&ca_cert=/etc/ssl/ch.pem&connect_timeout=10`
`&send_receive_timeout=300&compress=lz4&pool_size=8`. The URL names the connection (host, credentials,
TLS, timeouts, compression, pool); what llmledger does over it (cluster, async inserts, retries) lives
in the `[warehouse]` settings. A password given separately (from the environment) wins over the URL's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_OPTIONS = {
    "secure", "verify", "ca_cert", "client_cert", "client_cert_key", "server_host_name",
    "connect_timeout", "send_receive_timeout", "compress", "pool_size",
}


@dataclass(frozen=True)
class ServerTarget:
    """Connection parameters of a ClickHouse server (or of the load balancer in front of a cluster)."""

    host: str
    port: int
    username: str
    password: str
    database: str | None
    secure: bool
    verify: bool = True
    ca_cert: str | None = None
    client_cert: str | None = None
    client_cert_key: str | None = None
    server_host_name: str | None = None
    connect_timeout_s: float = 10.0
    send_receive_timeout_s: float = 300.0
    compress: str | bool = "lz4"
    pool_size: int = 8

    @classmethod
    def parse(cls, url: str) -> ServerTarget:
        """Parse `clickhouse[s]://user:pass@host:port/db?option=value…` (http/https schemes also accepted).

        Options: `secure`, `verify` (0 disables certificate checks), `ca_cert` (a PEM file, or `certifi`),
        `client_cert`/`client_cert_key` (mutual TLS), `server_host_name` (SNI / certificate name when
        connecting by IP), `connect_timeout` and `send_receive_timeout` (seconds), `compress` (`lz4`,
        `zstd`, `gzip`, `1` for the driver's choice, `0` for none), `pool_size` (HTTP connections kept
        per process; also the most concurrent statements one process sends). Unknown options are an
        error, so a typo does not silently fall back to a default.
        """
        parts = urlparse(url)
        if parts.scheme not in {"clickhouse", "clickhouses", "http", "https"}:
            raise ValueError(f"unsupported warehouse URL scheme {parts.scheme!r}; use clickhouse://host:8123/db")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - _OPTIONS
        if unknown:
            raise ValueError(f"unknown warehouse URL option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}")
        secure = parts.scheme in {"clickhouses", "https"} or _flag(query, "secure", False)
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or None,
            secure=secure,
            verify=_flag(query, "verify", True),
            ca_cert=query.get("ca_cert") or None,
            client_cert=query.get("client_cert") or None,
            client_cert_key=query.get("client_cert_key") or None,
            server_host_name=query.get("server_host_name") or None,
            connect_timeout_s=_positive(query, "connect_timeout", 10.0),
            send_receive_timeout_s=_positive(query, "send_receive_timeout", 300.0),
            compress=_compression(query.get("compress", "lz4")),
            pool_size=int(_positive(query, "pool_size", 8)),
        )

    def with_password(self, password: str | None) -> ServerTarget:
        """This target with `password` instead of the URL's (when one is given)."""
        return replace(self, password=password) if password else self

    def pool_options(self) -> dict[str, Any]:
        """Keyword arguments for clickhouse-connect's `get_pool_manager`: size and TLS."""
        options: dict[str, Any] = {"maxsize": self.pool_size, "block": True}
        if self.secure:
            options["verify"] = self.verify
            if self.ca_cert:
                options["ca_cert"] = self.ca_cert
            if self.client_cert:
                options["client_cert"] = self.client_cert
            if self.client_cert_key:
                options["client_cert_key"] = self.client_cert_key
            if self.server_host_name:
                options["server_hostname"] = self.server_host_name
                if self.verify:
                    options["assert_hostname"] = self.server_host_name
        return options

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `clickhouse_connect.get_client` (without database and pool)."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "secure": self.secure,
            "verify": self.verify,
            "connect_timeout": self.connect_timeout_s,
            "send_receive_timeout": self.send_receive_timeout_s,
            "compress": self.compress,
        }
        if self.client_cert:
            kwargs["client_cert"] = self.client_cert
        if self.server_host_name:
            kwargs["server_host_name"] = self.server_host_name
        return kwargs

    def redacted(self) -> str:
        """The target for logs and errors, without the password."""
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database or ''}"


def _flag(query: dict[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"warehouse URL option {name}={value!r} is not a boolean (use 1 or 0)")


def _positive(query: dict[str, str], name: str, default: float) -> float:
    value = query.get(name)
    if value is None or value == "":
        return default
    number = float(value)
    if number <= 0:
        raise ValueError(f"warehouse URL option {name} must be positive, got {value!r}")
    return number


def _compression(value: str) -> str | bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if lowered not in {"lz4", "zstd", "gzip", "br", "deflate"}:
        raise ValueError(f"warehouse URL option compress={value!r}: use lz4, zstd, gzip, br, 1 or 0")
    return lowered
