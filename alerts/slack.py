"""Slack delivery through slack-sdk: a bot token (`chat.postMessage`, threads) or an incoming
webhook (no threads). HTTP 429 is retried inside the send by slack-sdk's
`RateLimitErrorRetryHandler` (honouring Retry-After); every other failure becomes a
`DeliveryFailed` for the outbox to retry in a later pass. Secrets come from the environment only.
"""

from __future__ import annotations

import os
import urllib.error
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from alerts.errors import DeliveryFailed
from llmledger.settings import SlackSettings

# Errors no retry fixes: the token, the channel or the message itself is wrong.
PERMANENT = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "msg_too_long", "no_text",
    "restricted_action", "invalid_token", "no_service", "no_active_hooks", "action_prohibited",
})


class SlackClient:
    """Posts messages to Slack; one instance per process."""

    def __init__(self, settings: SlackSettings, *, token: str | None = None, webhook_url: str | None = None) -> None:
        if not token and not webhook_url:
            raise ValueError("a Slack bot token or webhook URL is required")
        self.settings = settings
        self.web: WebClient | None = None
        self.hook: WebhookClient | None = None
        timeout = int(max(1, settings.timeout_s))
        rate_limited = RateLimitErrorRetryHandler(max_retry_count=settings.rate_limit_retries)
        if token:
            self.web = WebClient(token=token, base_url=settings.base_url, timeout=timeout)
            self.web.retry_handlers.append(rate_limited)
        else:
            self.hook = WebhookClient(webhook_url or "", timeout=timeout,
                                      retry_handlers=[ConnectionErrorRetryHandler(), rate_limited])

    @classmethod
    def from_settings(cls, settings: SlackSettings) -> SlackClient | None:
        """The client the environment configures (`$SLACK_BOT_TOKEN` or `$SLACK_WEBHOOK_URL` by
        default), or None when Slack is not configured."""
        token = os.environ.get(settings.token_env, "").strip()
        webhook = os.environ.get(settings.webhook_env, "").strip()
        if not token and not webhook:
            return None
        return cls(settings, token=token or None, webhook_url=None if token else webhook)

    @property
    def threads(self) -> bool:
        """Whether replies can go into a thread (bot token mode only)."""
        return self.web is not None

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]], *, thread_ts: str | None = None,
             broadcast: bool = False) -> str:
        """Post a message (a thread reply when `thread_ts`); returns its ts ('' for webhooks)."""
        try:
            if self.web is not None:
                response = self.web.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
                    reply_broadcast=broadcast if thread_ts else None, unfurl_links=False, unfurl_media=False)
                return str(response["ts"])
            assert self.hook is not None
            result = self.hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except SlackApiError as err:
            raise _translate(err.response.status_code, err.response.get("error", ""), err.response.headers) from err
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DeliveryFailed(f"Slack unreachable: {err}") from err
        if result.status_code != 200:
            raise _translate(result.status_code, str(result.body or ""), result.headers)
        return ""


def _translate(status: int, error: str, headers: Any) -> DeliveryFailed:
    if status == 429:
        retry = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or "1"
        first = retry[0] if isinstance(retry, list) else retry
        return DeliveryFailed(f"Slack rate limit (HTTP 429, error {error or 'ratelimited'})",
                              retry_after_s=float(first))
    return DeliveryFailed(f"Slack HTTP {status}: {error or 'error'}", permanent=error in PERMANENT)
