"""Talking to Slack from background work: post, update, respond, with logging and 429 handling."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit
from urllib.request import proxy_bypass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.slack.views import Message

log = logging.getLogger("bot.slack")

CHANNEL_ACCESS_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
FIND_PAGE = 200  # conversations.replies / history: messages per page
FIND_MAX_PAGES = 25  # a thread of 5,000 replies (a 10,000-item rebuild has fewer)


class SlackUnavailable(Exception):
    """A Slack call failed; `error` is Slack's error code (e.g. `not_in_channel`)."""

    def __init__(
        self, method: str, error: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error
        self.status = status
        self.retry_after = retry_after  # seconds, from a 429's Retry-After

    @property
    def cannot_post_here(self) -> bool:
        return self.error in CHANNEL_ACCESS_ERRORS


def bypasses_proxy(url: str) -> bool:
    """slack_sdk takes HTTPS_PROXY from the environment but ignores NO_PROXY; we honour it
    (and never send loopback traffic, e.g. to a local fake, through a proxy)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1") or bool(proxy_bypass(host))


def make_web_client(token: str, base_url: str, *, rate_limit_retries: int = 3) -> WebClient:
    # Retries sleep in the calling thread: fine here, this client is never used before an ack.
    client = WebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ],
    )
    if bypasses_proxy(base_url):
        client.proxy = None
    return client


class SlackPoster:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def without_rate_limit_retries(self) -> SlackPoster:
        """The same poster, but a 429 raises (with `retry_after`) instead of sleeping in the
        calling thread: for posts that must not leave after their caller stopped (SIGTERM)."""
        client = self.client
        quick = WebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            retry_handlers=[
                h for h in client.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)
            ],
        )
        # Set after construction: WebClient(proxy=None) would read HTTPS_PROXY again, and
        # make_web_client's "no proxy for this URL" would be lost.
        quick.proxy = client.proxy
        return SlackPoster(quick)

    def post(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """chat.postMessage; `metadata` ({event_type, event_payload}) lets a later process find
        the message again (`find_posted`)."""
        args: dict[str, Any] = {"channel": channel, **message.to_dict()}
        if thread_ts:
            args["thread_ts"] = thread_ts
            if reply_broadcast:
                args["reply_broadcast"] = True
        if metadata is not None:
            args["metadata"] = metadata
        response = self._call("chat.postMessage", self.client.chat_postMessage, **args)
        return str(response["ts"])

    def find_posted(
        self,
        channel: str,
        metadata: dict[str, Any],
        *,
        thread_ts: str | None = None,
        max_pages: int = FIND_MAX_PAGES,
    ) -> str | None:
        """The ts of a message posted with this `metadata` (same event_type, and its payload
        includes this one's): in the thread of `thread_ts` (conversations.replies), or else
        among the channel's latest messages (conversations.history, newest first)."""
        wanted = metadata.get("event_payload") or {}
        cursor: str | None = None
        for _ in range(max_pages):
            args: dict[str, Any] = {
                "channel": channel,
                "include_all_metadata": True,
                "limit": FIND_PAGE,
            }
            if cursor:
                args["cursor"] = cursor
            if thread_ts:
                response = self._call(
                    "conversations.replies", self.client.conversations_replies, ts=thread_ts, **args
                )
            else:
                response = self._call(
                    "conversations.history", self.client.conversations_history, **args
                )
            for found in response.get("messages") or []:
                meta = found.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == metadata.get("event_type") and all(
                    payload.get(k) == v for k, v in wanted.items()
                ):
                    return str(found["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def update(self, channel: str, ts: str, message: Message) -> None:
        # chat.update defaults to parse=client, which would turn "@channel" into a ping.
        self._call(
            "chat.update",
            self.client.chat_update,
            channel=channel,
            ts=ts,
            parse="none",
            **message.to_dict(),
        )

    def ephemeral(self, channel: str, user: str, message: Message) -> None:
        self._call(
            "chat.postEphemeral",
            self.client.chat_postEphemeral,
            channel=channel,
            user=user,
            **message.to_dict(),
        )

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """views.open (a modal) within 3 s of the click that gave `trigger_id`; its view id."""
        response = self._call(
            "views.open", self.client.views_open, trigger_id=trigger_id, view=view
        )
        return str((response.get("view") or {}).get("id", ""))

    def respond(
        self,
        response_url: str | None,
        message: Message,
        *,
        replace_original: bool = False,
        in_channel: bool = False,
    ) -> bool:
        """Reply through an interaction's response_url (works even where the bot isn't a member)."""
        if not response_url:
            return False
        started = time.perf_counter()
        body: dict[str, Any] = {
            **message.to_dict(),
            "response_type": "in_channel" if in_channel else "ephemeral",
            "replace_original": replace_original,
        }
        try:
            webhook = WebhookClient(response_url, timeout=10)
            if bypasses_proxy(response_url):
                webhook.proxy = None
            response = webhook.send_dict(body)
            status: int | None = response.status_code
        except Exception as exc:  # network trouble: the caller falls back or gives up
            log.warning("response_url post failed: %s", type(exc).__name__)
            status = None
        _log("response_url", status, started)
        return status is not None and 200 <= status < 300

    def _call(self, method: str, function: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = function(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"HTTP {status}")
            _log(method, status, started, error=error, channel=kwargs.get("channel"))
            raise SlackUnavailable(method, error, status, _retry_after(exc)) from None
        except Exception as exc:
            _log(method, None, started, error=type(exc).__name__, channel=kwargs.get("channel"))
            raise SlackUnavailable(method, type(exc).__name__) from None
        _log(method, response.status_code, started, channel=kwargs.get("channel"))
        return response


def _retry_after(exc: SlackApiError) -> float | None:
    headers = exc.response.headers or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _log(
    method: str,
    status: int | None,
    started: float,
    *,
    error: str | None = None,
    channel: str | None = None,
) -> None:
    log.info(
        "slack call",
        extra={
            "event": "slack_call",
            "method": method,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": error,
            "channel": channel,
        },
    )
