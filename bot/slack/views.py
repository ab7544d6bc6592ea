"""Block Kit messages. Pure functions: data in, message dict out, no I/O.

Every string from Connect or a user goes through `esc`/`code` (mrkdwn) or into plain_text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
)

from bot.connect import ContentItem, RuntimeCache
from bot.services.audit import AuditRecord
from bot.services.caches import DeletionResult, PlannedDeletion, Rejection
from bot.slack.parser import HELP, ParseError
from bot.slack.text import clip, code, esc, link, plain

MAX_BLOCKS = 50


class Actions:
    """action_id values: the contract between views and listeners."""

    CACHE_DELETE_START = "cache_delete_start"
    CACHE_SELECT = "cache_select"
    CACHE_DELETE_SELECTED = "cache_delete_selected"
    CACHE_DELETE_CONFIRM = "cache_delete_confirm"
    CACHE_DELETE_CANCEL = "cache_delete_cancel"
    SEARCH_PAGE = "content_search_page"
    REBUILD_AFFECTED = "rebuild_affected"
    REBUILD_START = "rebuild_start"
    REBUILD_DISCARD = "rebuild_discard"
    REBUILD_CANCEL = "rebuild_cancel"


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[Block] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # slack_sdk validates while serialising, which is slow; a message renders once.
        return {"text": clip(self.text, 3000), "blocks": self._blocks_json}

    @cached_property
    def _blocks_json(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, 3000))])


def _who(user_id: str) -> str:
    # Slack IDs are [UW][A-Z0-9]+; anything else is shown as text, not as a mention.
    return f"<@{user_id}>" if user_id.isalnum() else esc(user_id)


# --- help and errors -------------------------------------------------------------------------


@lru_cache(maxsize=32)
def help_view(topic: str | None = None) -> Message:
    entries = [e for e in HELP if topic is None or e.usage.startswith(topic.lower())] or list(HELP)
    lines = [
        f"*{esc(e.usage)}*{' (admins)' if e.admin else ''}: {esc(e.what)}\n    `{esc(e.example)}`"
        for e in entries
    ]
    return Message(
        "connect-bot commands",
        [
            HeaderBlock(text="connect-bot: Posit Connect from Slack"),
            _md("\n".join(lines)),
            _context(
                "After a system change (R/Python rebuilt, GDAL/BLAS upgraded, a move to"
                " containers), delete the affected runtime caches, then rebuild published content."
            ),
        ],
    )


def usage_error_view(error: ParseError) -> Message:
    text = f":warning: {esc(error.message)}"
    if error.usage:
        text += f"\nUsage: `{esc(error.usage)}`"
    text += "\nSee `/connect help` for every command."
    return Message(f"{error.message} Usage: {error.usage}", [_md(text)])


def notice_view(text: str, emoji: str = ":information_source:") -> Message:
    return Message(text, [_md(f"{emoji} {esc(text)}")])


def denied_view(reason: str) -> Message:
    # The reason is our own text; channel mentions in it are intended.
    return Message(reason, [_md(f":no_entry: {reason}")])


def not_in_channel_view(bot_user_id: str | None) -> Message:
    who = f"<@{bot_user_id}>" if bot_user_id else "the connect-bot app"
    text = (
        f":wave: I can't post in this channel yet. Invite me with `/invite {who}` "
        "(or add the app from the channel's settings, Integrations), then try again."
    )
    return Message("Invite connect-bot to this channel, then try again.", [_md(text)])


def error_view(what: str, reason: str) -> Message:
    return Message(
        f"{what} failed: {reason}", [_md(f":x: {esc(what)} failed: {esc(clip(reason, 1500))}")]
    )


# --- caches ----------------------------------------------------------------------------------


def cache_value(cache: RuntimeCache) -> str:
    return json.dumps([cache.language, cache.version, cache.image_name], separators=(",", ":"))


def parse_cache_value(value: str) -> RuntimeCache | None:
    try:
        language, version, image = json.loads(value)
    except (ValueError, TypeError):
        return None
    if not all(isinstance(v, str) for v in (language, version, image)):
        return None
    return RuntimeCache(language, version, image)


def caches_list_view(caches: Sequence[RuntimeCache], server: str) -> Message:
    return _caches_list_view(tuple(caches), server)


@lru_cache(maxsize=16)
def _caches_list_view(caches: tuple[RuntimeCache, ...], server: str) -> Message:
    if not caches:
        return Message(
            "Connect has no runtime caches.",
            [_md(f":package: {link(server, 'Connect')} has no runtime caches.")],
        )
    blocks: list[Block] = [HeaderBlock(text=f"Runtime caches on Connect ({len(caches)})")]
    per_cache_rows = len(caches) <= 40
    for cache in caches if per_cache_rows else ():
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*{esc(cache.language)} {esc(cache.version)}*"
                    f"  ·  image {code(cache.image_name)}"
                ),
                accessory=ButtonElement(
                    text="Delete…",
                    action_id=Actions.CACHE_DELETE_START,
                    value=clip(cache_value(cache), 2000),
                    accessibility_label=clip(f"Delete the {cache.label} cache", 75),
                ),
            )
        )
    if not per_cache_rows:
        lines = [f"• {esc(c.language)} {esc(c.version)} · {code(c.image_name)}" for c in caches]
        blocks.append(_md(clip("\n".join(lines), 3000)))
    options = [
        Option(text=clip(f"{c.language} {c.version} ({c.image_name})", 75), value=cache_value(c))
        for c in caches[:100]
        if len(cache_value(c)) <= 150
    ]
    blocks.append(DividerBlock())
    blocks.append(
        ActionsBlock(
            block_id="cache_selection",
            elements=[
                StaticMultiSelectElement(
                    placeholder="Choose caches to delete together",
                    action_id=Actions.CACHE_SELECT,
                    options=options,
                ),
                ButtonElement(
                    text="Delete selected…",
                    action_id=Actions.CACHE_DELETE_SELECTED,
                    value="selected",
                ),
            ],
        )
    )
    blocks.append(
        _context("Deleting starts with a dry run and a confirmation card; nothing is deleted yet.")
    )
    summary = ", ".join(c.label for c in caches[:20])
    return Message(f"Runtime caches on Connect: {esc(summary)}", blocks[:MAX_BLOCKS])


@dataclass(frozen=True)
class DeletionCard:
    pending_id: str
    requested_by: str
    deletions: Sequence[PlannedDeletion]
    state: str = "pending"  # pending | running | done | cancelled | expired
    decided_by: str | None = None
    results: Sequence[DeletionResult] = ()
    expires_at: datetime | None = None
    two_person: bool = False
    rebuild_candidates: int = 0


def _deletion_lines(card: DeletionCard) -> str:
    results = {
        (r.cache.language.lower(), r.cache.version, r.cache.image_name): r for r in card.results
    }
    lines = []
    for planned in card.deletions:
        cache = planned.cache
        usage = f"{planned.published_items} published item(s) use it"
        if planned.interactive_items:
            usage += f", {planned.interactive_items} interactive"
        name = f"*{esc(cache.language)} {esc(cache.version)}*"
        line = f"• {name} · image {code(cache.image_name)} · {usage}"
        result = results.get((cache.language.lower(), cache.version, cache.image_name))
        if result is not None:
            mark = ":white_check_mark: deleted" if result.succeeded else ":x: *failed*"
            line += f"\n    {mark}: {esc(clip(result.detail, 500))}"
        lines.append(line)
    return "\n".join(lines)


def deletion_card_view(card: DeletionCard) -> Message:
    count = len(card.deletions)
    noun = "cache" if count == 1 else "caches"
    title = {
        "pending": f"Delete {count} runtime {noun}?",
        "running": f"Deleting {count} runtime {noun}…",
        "done": f"Runtime {noun} deletion finished",
        "cancelled": f"Deletion of {count} runtime {noun} cancelled",
        "expired": f"Deletion request for {count} runtime {noun} expired",
    }[card.state]
    blocks: list[Block] = [HeaderBlock(text=clip(title, 150))]
    blocks.append(_md(f"Requested by {_who(card.requested_by)}:\n{_deletion_lines(card)}"))
    if card.state == "pending":
        consequence = (
            "*What happens:* Connect removes these caches. Content that uses them cannot run until"
            " its environment is rebuilt; without a rebuild, the first visitor of each item waits"
            " for a slow automatic rebuild. Interactive apps and APIs feel it most."
        )
        blocks.append(_md(consequence))
        if card.expires_at is not None:
            expiry = int(card.expires_at.timestamp())
            rule = " Another administrator must confirm." if card.two_person else ""
            blocks.append(
                _context(
                    f"Dry run passed. Admins only. Expires <!date^{expiry}^{{time}}|soon>.{rule}"
                )
            )
        blocks.append(
            ActionsBlock(
                block_id=f"deletion_{card.pending_id}",
                elements=[
                    ButtonElement(
                        text="Confirm",
                        action_id=Actions.CACHE_DELETE_CONFIRM,
                        value=card.pending_id,
                        style="danger",
                        confirm=ConfirmObject(
                            title="Delete runtime caches?",
                            text=clip(
                                f"Delete {count} {noun} on Connect. Affected content must be"
                                " rebuilt. This cannot be undone.",
                                300,
                            ),
                            confirm="Delete",
                            deny="Keep them",
                            style="danger",
                        ),
                    ),
                    ButtonElement(
                        text="Cancel", action_id=Actions.CACHE_DELETE_CANCEL, value=card.pending_id
                    ),
                ],
            )
        )
    elif card.state == "running":
        blocks.append(
            _context(f":hourglass_flowing_sand: Confirmed by {_who(card.decided_by or '')}.")
        )
    elif card.state == "cancelled":
        blocks.append(_context(f"Cancelled by {_who(card.decided_by or '')}. Nothing was deleted."))
    elif card.state == "expired":
        blocks.append(
            _context("Nobody confirmed in time. Nothing was deleted; ask again if needed.")
        )
    else:
        failed = sum(1 for r in card.results if not r.succeeded)
        summary = (
            f":white_check_mark: All {count} deleted"
            if not failed
            else f":x: {failed} of {count} failed"
        )
        blocks.append(_context(f"{summary}. Confirmed by {_who(card.decided_by or '')}."))
        if card.rebuild_candidates:
            blocks.append(
                ActionsBlock(
                    block_id=f"rebuild_affected_{card.pending_id}",
                    elements=[
                        ButtonElement(
                            text=f"Rebuild affected content ({card.rebuild_candidates})",
                            action_id=Actions.REBUILD_AFFECTED,
                            value=card.pending_id,
                            style="primary",
                        )
                    ],
                )
            )
    labels = ", ".join(p.cache.label for p in card.deletions)
    return Message(f"{title}: {esc(labels)}", blocks)


def rejections_view(rejections: Sequence[Rejection], planned_any: bool) -> Message:
    lines = [f"• {esc(r.target.label)}: {esc(r.reason)}" for r in rejections]
    tail = (
        "The other caches are on the confirmation card."
        if planned_any
        else "Nothing to confirm. `/connect caches list` shows what exists."
    )
    return Message(
        "Some caches cannot be deleted: "
        + "; ".join(f"{r.target.label}: {r.reason}" for r in rejections),
        [_md(":warning: Connect's dry run refused:\n" + "\n".join(lines) + f"\n{tail}")],
    )


# --- content search --------------------------------------------------------------------------

PAGE_SIZE = 10


def content_search_view(
    items: Sequence[ContentItem], *, page: int, args: str, description: str
) -> Message:
    total = len(items)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    what = f" ({esc(description)})" if description else ""
    blocks: list[Block] = [
        _md(f":mag: *{total}* content item(s) match{what}. Page {page} of {pages}.")
    ]
    for item in shown:
        runtimes = ", ".join(f"{r.language} {r.version}" for r in item.runtimes) or "no R/Python"
        state = "published" if item.published else "unpublished"
        blocks.append(
            _context(
                f"*{link(item.dashboard_url, clip(item.display_title, 200))}*"
                f"  ·  {code(item.app_mode)}  ·  {esc(runtimes)}  ·  {esc(item.image)}  ·  {state}"
            )
        )
    buttons = []
    if page > 1:
        buttons.append(
            ButtonElement(
                text="< Previous",
                action_id=f"{Actions.SEARCH_PAGE}_prev",
                value=clip(json.dumps({"args": args, "page": page - 1}), 2000),
            )
        )
    if page < pages:
        buttons.append(
            ButtonElement(
                text="Next >",
                action_id=f"{Actions.SEARCH_PAGE}_next",
                value=clip(json.dumps({"args": args, "page": page + 1}), 2000),
            )
        )
    if buttons and len(json.dumps({"args": args, "page": page})) < 2000:
        blocks.append(ActionsBlock(elements=buttons))
    return Message(f"{total} content item(s) match. Page {page} of {pages}.", blocks)


# --- audit -----------------------------------------------------------------------------------


def audit_view(records: Sequence[AuditRecord]) -> Message:
    if not records:
        return notice_view("The audit log is empty.")
    lines = []
    for r in records:
        stamp = int(r.at.timestamp())
        when = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{r.at:%Y-%m-%d %H:%M} UTC>"
        target = f" · {esc(clip(r.target, 200))}" if r.target else ""
        lines.append(f"• {when} · {_who(r.actor)} · `{esc(r.action)}` → *{esc(r.outcome)}*{target}")
    return Message(
        f"Last {len(records)} audit entries",
        [HeaderBlock(text=f"Audit log: last {len(records)}"), _md(clip("\n".join(lines), 3000))],
    )


def audit_notice_view(record: AuditRecord) -> Message:
    target = f" {esc(clip(record.target, 500))}" if record.target else ""
    detail = f"\n> {esc(clip(record.detail, 500))}" if record.detail else ""
    where = f" in <#{record.channel}>" if record.channel and record.channel.isalnum() else ""
    act = f"`{esc(record.action)}` → *{esc(record.outcome)}*"
    text = f":scroll: {_who(record.actor)} {act}{target}{where}{detail}"
    return Message(f"audit: {record.actor} {record.action} {record.outcome}", [_md(text)])


__all__ = [
    "Actions",
    "DeletionCard",
    "Message",
    "PlainTextObject",
    "plain",
]
