"""`/connect servers`: each Connect server, its URL and version, and whether it answers."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import HeaderBlock

from bot.services.servers import ServerStatus
from bot.slack.text import clip, code, esc, link
from bot.slack.views.common import Message, context, md


def servers_view(statuses: Sequence[ServerStatus]) -> Message:
    example = f"/connect caches list -n {statuses[0].name}" if statuses else "/connect caches list"
    lines = []
    for s in statuses:
        default = " (default)" if s.default else ""
        if s.reachable:
            state = f":large_green_circle: Connect {esc(s.version or 'unknown version')}"
        else:
            state = f":red_circle: not reachable: {esc(clip(s.error or 'no answer', 200))}"
        lines.append(f"• *{esc(s.name)}*{default} · {link(s.url, s.url)} · {state}")
    blocks = [
        HeaderBlock(text=f"Connect servers ({len(statuses)})"),
        md("\n".join(lines)),
        context(f"Name one with `-n NAME` in any command, e.g. {code(example)}."),
    ]
    up = sum(1 for s in statuses if s.reachable)
    return Message(f"{len(statuses)} Connect server(s), {up} reachable", blocks)
