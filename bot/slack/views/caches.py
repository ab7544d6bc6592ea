"""Runtime caches: the list, the deletion card (pending → running → done, or cancelled/expired)
and the dry run's refusals."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
    HeaderBlock,
    Option,
    SectionBlock,
    StaticMultiSelectElement,
)

from bot.connect import RuntimeCache
from bot.services.caches import DeletionState, Rejection
from bot.slack.text import clip, code, esc, link, plain
from bot.slack.views.common import (
    MAX_BLOCKS,
    Actions,
    Message,
    context,
    date,
    md,
    mrkdwn,
    on_server,
    who,
)

ROWS_WITH_BUTTONS = 40  # above this, one compact list instead of a row (and button) per cache


def cache_value(cache: RuntimeCache, server: str | None = None) -> str:
    """A button's value: the cache, and the server of the list it is on."""
    fields = [cache.language, cache.version, cache.image_name]
    return json.dumps([*fields, server] if server else fields, separators=(",", ":"))


def parse_cache_value(value: str) -> tuple[str | None, RuntimeCache] | None:
    """(server, cache) from a button's value; None for anything malformed."""
    try:
        fields = json.loads(value)
    except ValueError:
        return None
    if not isinstance(fields, list) or len(fields) not in (3, 4):
        return None
    if not all(isinstance(v, str) for v in fields):
        return None
    server = fields[3] if len(fields) == 4 else None
    return server, RuntimeCache(fields[0], fields[1], fields[2])


def caches_list_view(
    caches: Sequence[RuntimeCache], url: str, *, server: str | None = None
) -> Message:
    """`server`: the server's name, shown (and carried by the buttons) with several servers."""
    return _caches_list_view(tuple(caches), url, server)


@lru_cache(maxsize=16)
def _caches_list_view(caches: tuple[RuntimeCache, ...], url: str, server: str | None) -> Message:
    where = f"Connect {server}" if server else "Connect"
    if not caches:
        return Message(
            f"{esc(where)} has no runtime caches.",
            [md(f":package: {link(url, where)} has no runtime caches.")],
        )
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"Runtime caches on {where} ({len(caches)})", 150))
    ]
    per_cache_rows = len(caches) <= ROWS_WITH_BUTTONS
    for cache in caches if per_cache_rows else ():
        blocks.append(
            SectionBlock(
                text=mrkdwn(
                    f"*{esc(cache.language)} {esc(cache.version)}*"
                    f"  ·  image {code(cache.image_name)}"
                ),
                accessory=ButtonElement(
                    text="Delete…",
                    action_id=Actions.CACHE_DELETE_START,
                    value=clip(cache_value(cache, server), 2000),
                    accessibility_label=plain(f"Delete the {cache.label} cache", 75),
                ),
            )
        )
    if not per_cache_rows:
        lines = [f"• {esc(c.language)} {esc(c.version)} · {code(c.image_name)}" for c in caches]
        blocks.append(md("\n".join(lines)))
    options = [
        Option(
            text=plain(f"{c.language} {c.version} ({c.image_name})", 75),
            value=cache_value(c, server),
        )
        for c in caches[:100]
        if len(cache_value(c, server)) <= 150
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
        context("Deleting starts with a dry run and a confirmation card; nothing is deleted yet.")
    )
    summary = ", ".join(c.label for c in caches[:20])
    return Message(f"Runtime caches on {esc(where)}: {esc(summary)}", blocks[:MAX_BLOCKS])


# --- the deletion card -----------------------------------------------------------------------


def _deletion_lines(card: DeletionState) -> str:
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


def _confirm_buttons(card: DeletionState, count: int, noun: str) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"deletion_{card.id}",
        elements=[
            ButtonElement(
                text="Confirm",
                action_id=Actions.CACHE_DELETE_CONFIRM,
                value=card.id,
                style="danger",
                confirm=ConfirmObject(
                    title="Delete runtime caches?",
                    text=mrkdwn(
                        f"Delete {count} {noun} on Connect. Affected content must be"
                        " rebuilt. This cannot be undone.",
                        300,
                    ),
                    confirm="Delete",
                    deny="Keep them",
                    style="danger",
                ),
            ),
            ButtonElement(text="Cancel", action_id=Actions.CACHE_DELETE_CANCEL, value=card.id),
        ],
    )


def deletion_card_view(card: DeletionState, *, server: str | None = None) -> Message:
    """`server`: the server's name, shown with several servers."""
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
    on = on_server(server)
    blocks.append(md(f"Requested by {who(card.requested_by)}{on}:\n{_deletion_lines(card)}"))
    if card.state == "pending":
        consequence = (
            "*What happens:* Connect removes these caches. Content that uses them cannot run until"
            " its environment is rebuilt; without a rebuild, the first visitor of each item waits"
            " for a slow automatic rebuild. Interactive apps and APIs feel it most."
        )
        blocks.append(md(consequence))
        if card.expires_at is not None:
            expiry = date(card.expires_at, "{time}", "soon")
            rule = " Another administrator must confirm." if card.two_person else ""
            blocks.append(context(f"Dry run passed. Admins only. Expires {expiry}.{rule}"))
        blocks.append(_confirm_buttons(card, count, noun))
    elif card.state == "running":
        blocks.append(context(f":hourglass_flowing_sand: Confirmed by {who(card.decided_by)}."))
    elif card.state == "cancelled":
        blocks.append(context(f"Cancelled by {who(card.decided_by)}. Nothing was deleted."))
    elif card.state == "expired":
        blocks.append(
            context("Nobody confirmed in time. Nothing was deleted; ask again if needed.")
        )
    else:
        failed = sum(1 for r in card.results if not r.succeeded)
        summary = (
            f":white_check_mark: All {count} deleted"
            if not failed
            else f":x: {failed} of {count} failed"
        )
        blocks.append(context(f"{summary}. Confirmed by {who(card.decided_by)}."))
        if card.note:
            blocks.append(context(f":warning: {esc(card.note)}"))
        buttons = []
        if card.rebuild_candidates:
            buttons.append(
                ButtonElement(
                    text=f"Rebuild affected content ({card.rebuild_candidates})",
                    action_id=Actions.REBUILD_AFFECTED,
                    value=card.id,
                    style="primary",
                )
            )
        if card.retry:
            buttons.append(
                ButtonElement(
                    text=f"Retry the failed ({failed})…",
                    action_id=Actions.CACHE_DELETE_RETRY,
                    value=card.id,
                )
            )
        if buttons:
            blocks.append(ActionsBlock(block_id=f"deletion_done_{card.id}", elements=buttons))
    on = f" on {server}" if server else ""
    return Message(f"{title}{esc(on)}: {esc(card.labels)}", blocks)


def rejections_view(rejections: Sequence[Rejection], planned_any: bool) -> Message:
    lines = [f"• {esc(r.target.label)}: {esc(r.reason)}" for r in rejections]
    tail = (
        "The other caches are on the confirmation card."
        if planned_any
        else "Nothing to confirm. `/connect caches list` shows what exists."
    )
    return Message(
        "Some caches cannot be deleted: "
        + esc("; ".join(f"{r.target.label}: {r.reason}" for r in rejections)),
        [md(":warning: Connect's dry run refused:\n" + "\n".join(lines) + f"\n{tail}")],
    )
