"""A real SMTP server for tests: aiosmtpd's Controller on a free localhost port, keeping every
message it accepts. It can refuse chosen recipients, refuse logins, answer DATA with a
temporary failure, and speak STARTTLS with the self-signed certificate in fixtures/smtp/.
"""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.service_support import free_port

CERT_DIR = Path(__file__).resolve().parent / "fixtures" / "smtp"
CERT, KEY = CERT_DIR / "localhost.pem", CERT_DIR / "localhost.key"


@dataclass
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Handler:
    """aiosmtpd handler: stores messages; refuses `refuse_rcpt` addresses; fails DATA with 451
    while `fail_data` is set."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)
    fail_data: bool = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_data:
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted"


def _authenticator(user: str, password: str):  # noqa: ANN202
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)
    return check


@contextmanager
def smtp_server(*, starttls: bool = False, user: str | None = None, password: str | None = None,
                ) -> Iterator[tuple[Controller, Handler]]:
    """A running server on 127.0.0.1 (stopped on exit). With `user`, AUTH is required (over
    STARTTLS when `starttls`, else allowed in the clear for the test)."""
    handler = Handler()
    kwargs: dict[str, Any] = {}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(CERT, KEY)
        kwargs.update(tls_context=context, require_starttls=True)
    if user is not None:
        kwargs.update(authenticator=_authenticator(user, password or ""), auth_required=True,
                      auth_require_tls=starttls)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="localhost", **kwargs)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()
