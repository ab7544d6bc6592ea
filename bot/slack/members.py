"""Who is in a channel: conversations.members, every page (for BOT_ALLOWED_CHANNELS on Home).

Slack answers at most `limit` (up to 1000) members a page and a `next_cursor` while more
remain. Needs channels:read (public channels) or groups:read (private ones the bot is in).
The Authorizer caches the answer; this only asks.
"""

from __future__ import annotations

from slack_sdk import WebClient

PAGE_SIZE = 1000  # Slack's maximum for conversations.members
MAX_PAGES = 200  # 200 000 members: a guard against a cursor that never ends


class TooManyPages(Exception):
    """conversations.members kept answering with a next cursor."""


def channel_members(client: WebClient, channel: str, *, page_size: int = PAGE_SIZE) -> list[str]:
    """Every member of `channel` (user ids). Raises SlackApiError as the client does."""
    members: list[str] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        response = client.conversations_members(channel=channel, limit=page_size, cursor=cursor)
        members += [m for m in response.get("members") or [] if isinstance(m, str)]
        metadata = response.get("response_metadata") or {}
        cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
        if not cursor:
            return members
    raise TooManyPages(f"conversations.members for {channel} did not end after {MAX_PAGES} pages")
