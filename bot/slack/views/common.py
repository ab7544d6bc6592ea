"""What every view shares: the message type, action ids, block limits and small block helpers.

Views are pure: data in, `Message` out; no I/O and no clock (the caller passes `now`). Every
string from Connect or a user goes through `esc`/`code`/`link` (mrkdwn) or into plain_text.
Every mrkdwn object is `verbatim: true` (no auto-linking of bare URLs, channel names or
mentions); our own `<url|label>`, `<@U1>`, `<#C1>` and `<!date^…>` tokens still work with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.parser import ParseError
from bot.slack.text import clip, code, esc, mute

MAX_BLOCKS = 50
MAX_TEXT = 3000  # section and context text


class Actions:
    """action_id values: the contract between views and listeners."""

    CACHE_DELETE_START = "cache_delete_start"
    CACHE_SELECT = "cache_select"
    CACHE_DELETE_SELECTED = "cache_delete_selected"
    CACHE_DELETE_CONFIRM = "cache_delete_confirm"
    CACHE_DELETE_CANCEL = "cache_delete_cancel"
    CACHE_DELETE_RETRY = "cache_delete_retry"
    SEARCH_PAGE = "content_search_page"
    REBUILD_AFFECTED = "rebuild_affected"
    REBUILD_START = "rebuild_start"
    REBUILD_DISCARD = "rebuild_discard"
    REBUILD_CANCEL = "rebuild_cancel"
    # "Delete the caches of these runtimes…" under a summary whose items built but fail to start
    REBUILD_DELETE_CACHES = "rebuild_delete_caches"
    REBUILD_SCHEDULE = "rebuild_schedule"  # "Schedule for …" (the time given with the plan)
    REBUILD_SCHEDULE_OPEN = "rebuild_schedule_open"  # "Schedule…": the modal with a picker
    SCHEDULE_MODAL = "rebuild_schedule_modal"  # the modal's callback_id


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[Block] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # slack_sdk validates while serialising, which is slow; a message renders once.
        # The fallback is escaped by each view; `mute` is a safety net (it is idempotent).
        return {"text": clip(mute(self.text), MAX_TEXT), "blocks": self._blocks_json}

    @cached_property
    def _blocks_json(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]


# --- block and text helpers ------------------------------------------------------------------


def mrkdwn(text: str, limit: int = MAX_TEXT) -> MarkdownTextObject:
    """A verbatim mrkdwn text object; `text` must already be escaped. Clipped safely."""
    return MarkdownTextObject(text=clip(mute(text), limit), verbatim=True)


def md(text: str) -> SectionBlock:
    """A mrkdwn section; `text` must already be escaped."""
    return SectionBlock(text=mrkdwn(text))


def context(text: str) -> ContextBlock:
    """A one-element mrkdwn context block; `text` must already be escaped."""
    return ContextBlock(elements=[mrkdwn(text)])


def is_slack_id(value: str | None) -> bool:
    """A user or channel ID (`U123`, `C123`): ASCII letters and digits only."""
    return value is not None and value.isascii() and value.isalnum()


def who(user_id: str | None) -> str:
    """A user mention. Slack IDs are [UW][A-Z0-9]+; anything else is shown as text."""
    if not user_id:
        return "someone"
    return f"<@{user_id}>" if is_slack_id(user_id) else esc(user_id)


def channel(channel_id: str | None, fallback: str = "") -> str:
    """A channel link `<#C123>`; anything that is not an ID is shown as escaped text."""
    if is_slack_id(channel_id):
        return f"<#{channel_id}>"
    return esc(channel_id) if channel_id else fallback


def on_server(server: str | None) -> str:
    """` on *staging*` when a server is to be named (several servers), else nothing."""
    return f" on *{esc(server)}*" if server else ""


def duration(seconds: float | None) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on; `-` when unknown."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def date(when: datetime, tokens: str = "{date_short_pretty} {time}", fallback: str = "") -> str:
    """A `<!date^...>` that Slack shows in the reader's time zone; the fallback is UTC."""
    text = fallback or f"{when:%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(when.timestamp())}^{tokens}|{text}>"


# --- notices and errors ----------------------------------------------------------------------


def usage_error_view(error: ParseError) -> Message:
    text = f":warning: {esc(error.message)}"
    if error.usage:
        text += f"\nUsage: `{esc(error.usage)}`"
    text += "\nSee `/connect help` for every command."
    return Message(esc(f"{error.message} Usage: {error.usage}"), [md(text)])


def notice_view(text: str, emoji: str = ":information_source:") -> Message:
    return Message(esc(text), [md(f"{emoji} {esc(text)}")])


def denied_view(reason: str) -> Message:
    # The reason is our own text; the `<#C…>` channel links in it are intended, so it is not
    # escaped. `Message.to_dict` and `md` still mute any bare @here/@channel/@everyone.
    return Message(reason, [md(f":no_entry: {reason}")])


def not_in_channel_view(bot_user_id: str | None) -> Message:
    bot = f"<@{bot_user_id}>" if bot_user_id else "the connect-bot app"
    text = (
        f":wave: I can't post in this channel yet. Invite me with `/invite {bot}` "
        "(or add the app from the channel's settings, Integrations), then try again."
    )
    return Message("Invite connect-bot to this channel, then try again.", [md(text)])


def error_view(what: str, reason: str) -> Message:
    return Message(
        esc(f"{what} failed: {clip(reason, 1500)}"),
        [md(f":x: {esc(what)} failed: {esc(clip(reason, 1500))}")],
    )


def unknown_server_view(name: str, names: Sequence[str]) -> Message:
    known = ", ".join(code(n) for n in names)
    text = (
        f"There is no Connect server named {code(clip(name, 40))}. Configured: {known}."
        " `/connect servers` lists them."
    )
    return Message(esc(f"No Connect server named {clip(name, 40)}."), [md(f":warning: {text}")])
