"""Hand a message to the configured SMTP server: STARTTLS, implicit TLS or plain; login when a
username is set (password from the environment only). Failures become `SendFailed` subclasses;
a server that cannot be reached or answers 4xx is retried with jittered exponential back-off
(tenacity), refused credentials or recipients are not.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from alerts.report.errors import (
    AuthRefused,
    ConfigMissing,
    RecipientsRefused,
    SendFailed,
    ServerUnavailable,
)
from alerts.settings import SmtpSettings


class SmtpSender:
    """Sends messages through one SMTP server, `attempts` tries each."""

    def __init__(self, cfg: SmtpSettings) -> None:
        self.cfg = cfg
        self.attempts = cfg.attempts
        self.backoff_s = cfg.backoff_s

    def send(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Deliver `msg` to its To recipients; returns the recipients the server refused while
        accepting the others. Raises a `SendFailed` subclass when nothing was accepted."""
        try:
            password = self.cfg.password()
        except ValueError as err:
            raise ConfigMissing(str(err)) from err
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_s * 16) + wait_random(0, self.backoff_s),
            retry=retry_if_exception(lambda e: isinstance(e, SendFailed) and e.retryable),
            reraise=True,
        )
        return retrying(self._send_once, msg, password)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        if cfg.security == "ssl":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
        client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        if cfg.security == "starttls":
            client.ehlo()
            if not client.has_extn("starttls"):
                client.close()
                raise SendFailed(f"{cfg.host}:{cfg.port} does not offer STARTTLS (smtp.security = 'starttls')",
                                 kind="tls", retryable=False)
            client.starttls(context=context)
            client.ehlo()
        return client

    def _send_once(self, msg: EmailMessage, password: str | None) -> dict[str, tuple[int, bytes]]:
        cfg = self.cfg
        where = f"{cfg.host}:{cfg.port}"
        try:
            client = self._connect()
            try:
                if cfg.username is not None:
                    client.login(cfg.username, password or "")
                refused = client.send_message(msg)
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
            return dict(refused)
        except smtplib.SMTPAuthenticationError as err:
            raise AuthRefused(f"{where} refused the login of {cfg.username!r}: {err.smtp_code}") from err
        except smtplib.SMTPRecipientsRefused as err:
            raise RecipientsRefused(f"{where} refused every recipient: {sorted(err.recipients)}") from err
        except smtplib.SMTPSenderRefused as err:
            raise RecipientsRefused(f"{where} refused the sender {err.sender!r}: {err.smtp_code}") from err
        except smtplib.SMTPResponseException as err:
            text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else err.smtp_error
            if 400 <= err.smtp_code < 500:
                raise ServerUnavailable(f"{where} answered {err.smtp_code} (temporary): {text}") from err
            raise SendFailed(f"{where} answered {err.smtp_code}: {text}", kind="refused", retryable=False) from err
        except ssl.SSLError as err:
            raise SendFailed(f"TLS with {where} failed: {err}", kind="tls", retryable=False) from err
        except (smtplib.SMTPException, OSError) as err:
            raise ServerUnavailable(f"{where} unavailable: {err.__class__.__name__}: {err}") from err
