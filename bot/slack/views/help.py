"""`/connect help`."""

from __future__ import annotations

from functools import lru_cache

from slack_sdk.models.blocks import HeaderBlock

from bot.slack.parser import HELP, SERVER_HINT
from bot.slack.text import esc
from bot.slack.views.common import Message, context, md


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
            md("\n".join(lines)),
            context(
                "After a system change (R/Python rebuilt, GDAL/BLAS upgraded, a move to"
                " containers), delete the affected runtime caches, then rebuild published content."
                f" {SERVER_HINT}"
            ),
        ],
    )
