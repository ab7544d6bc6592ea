"""`/connect content search`: one page of matches, with Previous/Next buttons."""

from __future__ import annotations

import json
from collections.abc import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.connect import ContentItem
from bot.slack.text import clip, code, esc, link
from bot.slack.views.common import Actions, Message, context, md, on_server

PAGE_SIZE = 10


def _page_value(args: str, page: int, server: str | None) -> str:
    """What a page button carries: the search's words, the page and the server searched."""
    return json.dumps({"args": args, "page": page, "server": server})


def _page_button(text: str, suffix: str, value: str) -> ButtonElement:
    return ButtonElement(
        text=text, action_id=f"{Actions.SEARCH_PAGE}_{suffix}", value=clip(value, 2000)
    )


def content_search_view(
    items: Sequence[ContentItem],
    *,
    page: int,
    args: str,
    description: str,
    server: str | None = None,
    server_label: str | None = None,
) -> Message:
    """`server`: carried by the page buttons; `server_label`: shown, with several servers."""
    total = len(items)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    what = f" ({esc(description)})" if description else ""
    what += on_server(server_label)
    blocks: list[Block] = [
        md(f":mag: *{total}* content item(s) match{what}. Page {page} of {pages}.")
    ]
    for item in shown:
        runtimes = ", ".join(f"{r.language} {r.version}" for r in item.runtimes) or "no R/Python"
        state = "published" if item.published else "unpublished"
        blocks.append(
            context(
                f"*{link(item.dashboard_url, clip(item.display_title, 200))}*"
                f"  ·  {code(item.app_mode)}  ·  {esc(runtimes)}  ·  {esc(item.image)}  ·  {state}"
            )
        )
    buttons = []
    if page > 1:
        buttons.append(_page_button("< Previous", "prev", _page_value(args, page - 1, server)))
    if page < pages:
        buttons.append(_page_button("Next >", "next", _page_value(args, page + 1, server)))
    if buttons and len(_page_value(args, pages, server)) < 2000:
        blocks.append(ActionsBlock(elements=buttons))
    return Message(f"{total} content item(s) match. Page {page} of {pages}.", blocks)
