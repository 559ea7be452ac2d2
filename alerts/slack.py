"""Slack delivery through slack-sdk: a bot token (`chat.postMessage`, threads) or an incoming
webhook (no threads). Every failure becomes a `DeliveryFailed` for the outbox to handle; a 429
is not retried inside the send by default (`slack.rate_limit_retries`), so the outbox can end the
pass for the workspace until Retry-After. Secrets come from the environment only.

Each bot-token post carries message metadata naming its outbox row (`event_type`
`llmledger_notification`, `event_payload.outbox_id`), so after a crash mid-send `find_posted` can
ask Slack (`conversations.history` / `conversations.replies` with `include_all_metadata`) whether
the message is already there before posting it again. That needs the `channels:history` (and
`groups:history` for private channels) and `channels:read` / `groups:read` scopes beside
`chat:write`; webhooks cannot be asked, so webhook delivery stays at-least-once after a crash.
"""

from __future__ import annotations

import os
import re
import urllib.error
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from alerts.errors import DeliveryFailed
from alerts.settings import SlackSettings

# Errors no retry fixes: the token, the channel or the message itself is wrong.
PERMANENT = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
    "channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "msg_too_long", "no_text",
    "restricted_action", "invalid_token", "no_service", "no_active_hooks", "action_prohibited",
    "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large",
})
EVENT_TYPE = "llmledger_notification"
RATE_LIMITED = "Slack rate limit"  # the start of a 429's DeliveryFailed detail (the outbox keys on it)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_PAGES = 10  # history pages (200 messages each) searched for a lost post


class SlackClient:
    """Posts messages to Slack and finds them again; one instance per delivery pass."""

    def __init__(self, settings: SlackSettings, *, token: str | None = None, webhook_url: str | None = None) -> None:
        if not token and not webhook_url:
            raise ValueError("a Slack bot token or webhook URL is required")
        self.settings = settings
        self.web: WebClient | None = None
        self.hook: WebhookClient | None = None
        self._channel_ids: dict[str, str] = {}
        timeout = int(max(1, settings.timeout_s))
        handlers = [RateLimitErrorRetryHandler(max_retry_count=settings.rate_limit_retries)] \
            if settings.rate_limit_retries else []
        if token:
            # no connection-error retry inside a post: a reset after Slack accepted it would post it
            # twice; the outbox retries instead, looking the message up first
            self.web = WebClient(token=token, base_url=settings.base_url, timeout=timeout, retry_handlers=handlers)
        else:
            self.hook = WebhookClient(webhook_url or "", timeout=timeout,
                                      retry_handlers=[ConnectionErrorRetryHandler(), *handlers])

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

    @property
    def can_look_up(self) -> bool:
        """Whether `find_posted` can tell if a message is already in Slack (bot token mode only)."""
        return self.web is not None

    @property
    def request_budget_s(self) -> float:
        """The longest one request can take (a fencing check must leave at least this much)."""
        return float(max(1, int(self.settings.timeout_s))) + 1.0

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]], *, thread_ts: str | None = None,
             broadcast: bool = False, outbox_id: str | None = None) -> str:
        """Post a message (a thread reply when `thread_ts`); returns its ts ('' for webhooks).
        `outbox_id` goes into the message's metadata, for `find_posted`."""
        try:
            if self.web is not None:
                metadata = {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": outbox_id}} if outbox_id else None
                response = self.web.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
                    reply_broadcast=broadcast if thread_ts else None, unfurl_links=False, unfurl_media=False,
                    metadata=metadata)
                if response.get("channel"):
                    self._channel_ids[channel] = str(response["channel"])
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

    def find_posted(self, channel: str, outbox_id: str, *, thread_ts: str | None, since: datetime) -> str | None:
        """The ts of a message posted since `since` whose metadata names `outbox_id`, or None when
        Slack does not have it: the thread's replies when `thread_ts`, else the channel's history."""
        if self.web is None:
            return None
        oldest = f"{since.timestamp():.6f}"
        try:
            channel_id = self.channel_id(channel)
            cursor = None
            for _ in range(_PAGES):
                if thread_ts:
                    page = self.web.conversations_replies(channel=channel_id, ts=thread_ts, oldest=oldest, limit=200,
                                                          include_all_metadata=True, cursor=cursor)
                else:
                    page = self.web.conversations_history(channel=channel_id, oldest=oldest, limit=200,
                                                          include_all_metadata=True, cursor=cursor)
                for message in page.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == EVENT_TYPE and \
                            (meta.get("event_payload") or {}).get("outbox_id") == outbox_id:
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    return None
        except SlackApiError as err:
            raise _translate(err.response.status_code, err.response.get("error", ""), err.response.headers) from err
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DeliveryFailed(f"Slack unreachable: {err}") from err
        raise DeliveryFailed(f"Slack history of {channel} too long to search for {outbox_id}", permanent=True)

    def channel_id(self, channel: str) -> str:
        """A channel's id (history reads need it; posts accept names): from an earlier post's answer
        or `conversations.list`."""
        if _CHANNEL_ID.match(channel):
            return channel
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        assert self.web is not None
        name = channel.lstrip("#")
        cursor = None
        while True:
            page = self.web.conversations_list(types="public_channel,private_channel", limit=1000,
                                               exclude_archived=True, cursor=cursor)
            for found in page.get("channels") or []:
                if found.get("name") == name:
                    self._channel_ids[channel] = str(found["id"])
                    return self._channel_ids[channel]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise DeliveryFailed(f"Slack has no channel named {channel}", permanent=True)


def _translate(status: int, error: str, headers: Any) -> DeliveryFailed:
    if status == 429:
        retry = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or "1"
        first = retry[0] if isinstance(retry, list) else retry
        return DeliveryFailed(f"{RATE_LIMITED} (HTTP 429, error {error or 'ratelimited'})",
                              retry_after_s=float(first))
    return DeliveryFailed(f"Slack HTTP {status}: {error or 'error'}", permanent=error in PERMANENT)
