"""The `error` of a plan's item `--visited-within` left out (usage itself:
`bot.services.usage`, shared with `health`)."""

from __future__ import annotations

UNVISITED = "left to build on first visit"
