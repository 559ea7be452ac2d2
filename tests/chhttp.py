"""Stands for a ClickHouse server in tests: ClickHouse's HTTP interface, as clickhouse-connect uses it,
executed on the embedded engine (chDB, same engine and SQL dialect) in a thread of the test process.
No ClickHouse server binary can be installed here; `ClickHouseHTTP` says what it speaks and where it
differs from a server. Its `log` stands for `system.query_log`.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import ssl
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame

ENGINE_VERSION = "26.9.2.1"

# HTTP parameters the server consumes itself; everything else (bar param_*) is a setting.
TRANSPORT_PARAMS = frozenset(
    {
        "query", "database", "default_format", "session_id", "session_timeout", "session_check",
        "query_id", "quota_key", "user", "password", "compress", "decompress", "buffer_size",
        "wait_end_of_query", "client_protocol_version", "role", "stacktrace",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms", "enable_http_compression",
    }
)

# The server's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by error name.
_STATUS_BY_NAME = {
    **dict.fromkeys(["REQUIRED_PASSWORD"], 401),
    **dict.fromkeys(["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
                     "ACCESS_DENIED"], 403),
    **dict.fromkeys(["BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
                     "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME",
                     "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID",
                     "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST", "THERE_IS_NO_COLUMN",
                     "TOO_DEEP_AST", "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA",
                     "TYPE_MISMATCH", "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"], 400),
    **dict.fromkeys(["UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
                     "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
                     "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
                     "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"], 404),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "TIMEOUT_EXCEEDED": 408,
}

_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z_]+)\)(?: \(version [^)]*\))?\s*\.?\s*(?:\([A-Z_]+\))?\s*$")
_INPUT = re.compile(r"\binput\s*\(\s*('(?:[^'\\]|\\.)*')\s*\)", re.IGNORECASE)
_RESPONSE_ENCODINGS = ("gzip", "deflate", "zstd", "lz4")


class ServerError(Exception):
    """An error the endpoint answers with, in the server's shape."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message

    @classmethod
    def from_engine(cls, err: Exception) -> ServerError:
        text = str(err)
        start = text.rfind("Code: ")
        text = text[start:] if start >= 0 else text
        code = _CODE.search(text)
        name = _NAME.search(text.strip())
        return cls(int(code.group(1)) if code else 1001, name.group(1) if name else "STD_EXCEPTION", text.strip())

    def body(self) -> bytes:
        message = self.message if self.message.startswith("Code: ") else (
            f"Code: {self.code}. DB::Exception: {self.message}. ({self.name})"
        )
        if "(version " not in message:
            message = f"{message} (version {ENGINE_VERSION})"
        return (message + "\n").encode()

    @property
    def status(self) -> int:
        return _STATUS_BY_NAME.get(self.name, 500)


@dataclass
class LoggedQuery:
    """One statement as the endpoint ran it (the stand-in for a `system.query_log` row)."""

    query_id: str
    query: str
    database: str | None
    user: str
    method: str
    settings: dict[str, str]
    params: dict[str, str]
    written_rows: int = 0
    exception_code: int = 0
    request_encoding: str = ""
    response_encoding: str = ""


@dataclass
class _Session:
    conn: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Statement:
    """The request's SQL split into the statement and, for `INSERT … FORMAT x`, its data."""

    sql: str
    fmt: str | None
    data: bytes | None


class ClickHouseHTTP:
    """A threaded ClickHouse HTTP endpoint over one chDB store; `url()` is the address to connect to.

    Speaks: the query in the `query` parameter and/or the body (INSERT data after `FORMAT x`),
    `param_*` bound parameters, `database`, settings as URL parameters (GET is readonly), multipart
    form fields, basic auth and X-ClickHouse-User/Key, sessions (one query at a time per `session_id`,
    else SESSION_IS_LOCKED), request decompression and response compression (gzip, deflate, zstd,
    lz4), the headers the driver reads (`X-ClickHouse-Summary`, `-Format` for result sets only,
    `-Timezone`, `-Query-Id`, `-Exception-Code`) and the server's HTTP status per error code.
    `input()` reads the request body (rewritten to `file()` over a temporary copy); TLS when given a
    context. `fail_next` injects errors; every statement is logged with its settings in `log`.

    Differs from a server: `client_protocol_version` is ignored (clickhouse-connect's probe then
    reads Native without block info, as through a proxy that strips it); results are buffered, not
    streamed; sessions never time out; settings' defaults are chDB's (e.g. enable_http_compression=1).
    """

    def __init__(self, store: Path, *, user: str = "default", password: str = "", tls: ssl.SSLContext | None = None):
        self.store = store
        self.user = user
        self.password = password
        self.log: list[LoggedQuery] = []
        self._log_lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._tmp = Path(tempfile.mkdtemp(prefix="chhttp-"))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, name="chhttp", daemon=True)
        self.fail_next: list[tuple[int, str, str]] = []  # (code, name, message) answered before executing
        self.connections = 0  # TCP connections accepted (to observe client-side pooling)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, database: str | None = None, **query: str) -> str:
        """A `clickhouse://` URL for this endpoint (credentials included)."""
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        path = f"/{database}" if database else ""
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        secure = {"secure": "1"} if self.scheme == "https" and "secure" not in query else {}
        if secure:
            qs = "&".join(filter(None, [qs, "secure=1"]))
        return f"clickhouse://{auth}127.0.0.1:{self.port}{path}{'?' + qs if qs else ''}"

    def start(self) -> ClickHouseHTTP:
        # One connection held for the endpoint's life keeps the engine up between requests (chDB
        # shuts it down when its last connection closes, taking Memory tables with it).
        self._engine = chdb.connect(str(self.store))
        # the server-side default of enable_http_compression, as system.settings reports it
        self.compression_default = self._engine.query(
            "SELECT value FROM system.settings WHERE name = 'enable_http_compression'", "TabSeparated"
        ).bytes().decode().strip() or "0"
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._sessions_lock:
            for session in self._sessions.values():
                session.conn.close()
            self._sessions.clear()
        self._engine.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def queries(self, contains: str = "") -> list[LoggedQuery]:
        """Logged statements whose text contains `contains`."""
        with self._log_lock:
            return [q for q in self.log if contains in q.query]

    # ---- execution ------------------------------------------------------

    def execute(self, request: _Request) -> tuple[bytes, dict[str, str]]:
        """Run one request; returns the body and the response headers, or raises ServerError."""
        if self.fail_next:
            code, name, message = self.fail_next.pop(0)
            raise ServerError(code, name, message)
        statement = _split(request.text)
        params = {k[len("param_"):]: v for k, v in request.params.items() if k.startswith("param_")}
        settings = {k: v for k, v in request.params.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
        if request.method == "GET" and "readonly" not in settings:
            settings["readonly"] = "2"
        entry = LoggedQuery(
            query_id=request.params.get("query_id") or str(uuid.uuid4()),
            query=statement.sql,
            database=request.params.get("database"),
            user=request.user,
            method=request.method,
            settings=settings,
            params=params,
            request_encoding=request.encoding,
        )
        with self._log_lock:
            self.log.append(entry)
        session_id = request.params.get("session_id")
        try:
            if session_id:
                session = self._session(session_id)
                if not session.lock.acquire(blocking=False):
                    raise ServerError(373, "SESSION_IS_LOCKED", f"Code: 373. DB::Exception: Session {session_id} is "
                                      "locked by a concurrent client. (SESSION_IS_LOCKED)")
                try:
                    body, headers = self._run(session.conn, statement, request, settings, params, entry)
                finally:
                    session.lock.release()
            else:
                conn = chdb.connect(str(self.store))
                try:
                    body, headers = self._run(conn, statement, request, settings, params, entry)
                finally:
                    conn.close()
        except ServerError as err:
            entry.exception_code = err.code
            raise
        headers["X-ClickHouse-Query-Id"] = entry.query_id
        return body, headers

    def _session(self, session_id: str) -> _Session:
        with self._sessions_lock:
            if session_id not in self._sessions:
                self._sessions[session_id] = _Session(chdb.connect(str(self.store)))
            return self._sessions[session_id]

    def _run(
        self, conn: Any, statement: _Statement, request: _Request, settings: dict[str, str],
        params: dict[str, str], entry: LoggedQuery,
    ) -> tuple[bytes, dict[str, str]]:
        began = time.perf_counter_ns()
        try:
            database = request.params.get("database")
            if database:
                conn.query(f"USE `{database.replace('`', '')}`")
            for name, value in settings.items():
                if not _SETTING_NAME.match(name):
                    raise ServerError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
                escaped = value.replace("\\", "\\\\").replace("'", "\\'")
                conn.query(f"SET {name} = '{escaped}'")
            result_format: str | None = None
            if statement.data is not None:
                result = self._insert(conn, statement, params)
                body = b""
            elif statement.fmt is not None:
                result = conn.query(statement.sql, statement.fmt, params=params or None)
                body, result_format = result.bytes() or b"", statement.fmt
            else:
                default = request.params.get("default_format") or "TabSeparated"
                result = conn.query(statement.sql, "TabSeparatedWithNames", params=params or None)
                body = result.bytes() or b""
                if body:
                    # A result-producing statement: send it in the default format, as the server does.
                    result_format = default
                    if default in {"TabSeparated", "TSV"}:
                        body = body[body.find(b"\n") + 1:]
                    else:
                        body = conn.query(statement.sql, default, params=params or None).bytes() or b""
        except ServerError:
            raise
        except Exception as err:  # noqa: BLE001 - every engine failure becomes the server's error shape
            raise ServerError.from_engine(err) from err
        entry.written_rows = int(result.rows_written())
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "total_rows_to_read": str(result.rows_read()),
            "result_rows": "0",
            "result_bytes": str(len(body)),
            "elapsed_ns": str(time.perf_counter_ns() - began),
        }
        headers = {"X-ClickHouse-Summary": json.dumps(summary), "X-ClickHouse-Timezone": "UTC"}
        if result_format is not None:
            headers["X-ClickHouse-Format"] = result_format
            headers["Content-Type"] = _CONTENT_TYPES.get(result_format, "application/octet-stream")
        else:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        return body, headers

    def _insert(self, conn: Any, statement: _Statement, params: dict[str, str]) -> Any:
        """`INSERT … FORMAT x` with data: `input()` reads the data (as on the server), else the table gets it."""
        tmp = self._tmp / f"{uuid.uuid4().hex}.{statement.fmt}"
        tmp.write_bytes(statement.data or b"")
        try:
            literal = "'" + str(tmp).replace("'", "\\'") + "'"
            if _INPUT.search(statement.sql):
                sql = _INPUT.sub(lambda m: f"file({literal}, '{statement.fmt}', {m.group(1)})", statement.sql, count=1)
                return conn.query(sql, "TabSeparated", params=params or None)
            return conn.query(f"{statement.sql} FROM INFILE {literal} FORMAT {statement.fmt}", "TabSeparated",
                              params=params or None)
        finally:
            tmp.unlink(missing_ok=True)


@dataclass
class _Request:
    method: str
    params: dict[str, str]
    text: bytes
    user: str
    encoding: str


def _handler_for(endpoint: ClickHouseHTTP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "chhttp"
        disable_nagle_algorithm = True  # headers and body leave in separate writes; don't wait for ACKs

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def setup(self) -> None:
            super().setup()
            with endpoint._log_lock:
                endpoint.connections += 1

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self._handle("POST")

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            if url.path.rstrip("/") == "/ping":
                self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if url.path not in {"", "/"}:
                self._reply(404, b"There is no handle " + url.path.encode() + b"\n", {})
                return
            try:
                request = self._request(method, dict(parse_qsl(url.query, keep_blank_values=True)))
                body, headers = endpoint.execute(request)
            except ServerError as err:
                self._reply(err.status, err.body(), {"X-ClickHouse-Exception-Code": str(err.code),
                                                     "Content-Type": "text/plain; charset=UTF-8"})
                return
            enabled = request.params.get("enable_http_compression", endpoint.compression_default) == "1"
            if enabled and body:
                body, encoding = _compress(body, self.headers.get("Accept-Encoding", ""))
                if encoding:
                    headers["Content-Encoding"] = encoding
                    with endpoint._log_lock:
                        if endpoint.log:
                            endpoint.log[-1].response_encoding = encoding
            self._reply(200, body, headers)

        def _request(self, method: str, params: dict[str, str]) -> _Request:
            raw = self._read_body()
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            body = _decompress(raw, encoding)
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                fields = _form_fields(content_type, body)
                params = {**params, **{k: v.decode() for k, v in fields.items() if k == "query" or k.startswith("param_")}}
                body = b""
            user, password = self._credentials(params)
            if user != endpoint.user or password != endpoint.password:
                raise ServerError(516, "AUTHENTICATION_FAILED", f"Code: 516. DB::Exception: {user}: Authentication "
                                  "failed: password is incorrect, or there is no user with such name. "
                                  "(AUTHENTICATION_FAILED)")
            query = params.get("query", "")
            text = (query.encode() + b"\n" + body) if query and body else (query.encode() or body)
            if not text.strip():
                raise ServerError(62, "SYNTAX_ERROR", "Empty query")
            return _Request(method, params, text, user, encoding)

        def _credentials(self, params: dict[str, str]) -> tuple[str, str]:
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user, password
            if self.headers.get("X-ClickHouse-User"):
                return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
            return params.get("user", "default"), params.get("password", "")

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return b"".join(self._chunks())
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _chunks(self) -> Iterator[bytes]:
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("X-ClickHouse-Server-Display-Name", "chhttp")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Keep-Alive", "timeout=10")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. its read timeout): as a server would

    return Handler


def _split(text: bytes) -> _Statement:
    """Find the top-level `FORMAT name` (outside quotes and comments); for an INSERT the rest is data."""
    head_end = len(text)
    found: tuple[str, int] | None = None
    insert = re.match(rb"\s*(?:--[^\n]*\n\s*)*INSERT\b", text, re.IGNORECASE) is not None
    i, quote = 0, None
    while i < head_end:
        ch = text[i:i + 1]
        if quote:
            if ch == b"\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in (b"'", b'"', b"`"):
            quote = ch
        elif text.startswith(b"--", i):
            nl = text.find(b"\n", i)
            i = head_end if nl < 0 else nl
            continue
        elif text.startswith(b"/*", i):
            end = text.find(b"*/", i)
            i = head_end if end < 0 else end + 2
            continue
        elif ch in b"Ff" and (i == 0 or not (text[i - 1:i].isalnum() or text[i - 1:i] == b"_")):
            match = re.match(rb"FORMAT\s+([A-Za-z0-9_]+)", text[i:i + 64], re.IGNORECASE)
            if match:
                found = (match.group(1).decode(), i)
                if insert:
                    data_start = i + match.end()
                    rest = text[data_start:]
                    skip = re.match(rb"[ \t]*\r?\n?", rest)
                    return _Statement(text[:i].decode().rstrip(), found[0], rest[skip.end() if skip else 0:])
                i += match.end()
                continue
        i += 1
    if found is not None and not insert:
        name, at = found
        tail = text[at:].decode()
        # only a trailing FORMAT clause chooses the output; strip it, the engine gets the name
        if re.fullmatch(r"FORMAT\s+[A-Za-z0-9_]+\s*;?\s*", tail, re.IGNORECASE):
            return _Statement(text[:at].decode().rstrip(), name, None)
    return _Statement(text.decode().rstrip().rstrip(";"), None, None)


def _decompress(data: bytes, encoding: str) -> bytes:
    if not encoding or encoding == "identity" or not data:
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd":
        from clickhouse_connect.driver.compression import _zstd_decompress

        return _zstd_decompress(data)
    if encoding == "lz4":
        out = bytearray()
        while data:  # clickhouse-connect writes one lz4 frame per block
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out += decompressor.decompress(data)
            data = decompressor.unused_data
        return bytes(out)
    raise ServerError(1001, "UNKNOWN_COMPRESSION_METHOD", f"Unknown HTTP compression {encoding!r}")


def _compress(body: bytes, accept: str) -> tuple[bytes, str]:
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    for encoding in offered:
        if encoding == "gzip":
            return gzip.compress(body, compresslevel=3), encoding
        if encoding == "deflate":
            return zlib.compress(body, 3), encoding
        if encoding == "zstd":
            from clickhouse_connect.driver.compression import _zstd_compress

            return _zstd_compress(body), encoding
        if encoding == "lz4":
            return lz4.frame.compress(body), encoding
    return body, ""


def _form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True) or b""
    return fields


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1; returns it and the CA file."""
    import subprocess

    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, env={**os.environ, "OPENSSL_CONF": "/dev/null"},
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert
