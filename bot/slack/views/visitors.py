"""What the visitors-first order buys, for the plan card and the progress message (issue 20).
Pure: the plan's stored usage (`PlanSummary.usage`) and counts in, text out. Titles and the
reasons Connect gives go through `esc`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bot.slack.text import clip, esc


def span(seconds: float) -> str:
    """`45 seconds`, `12 minutes`, `2.5 hours`: how long the first builds take."""
    if seconds < 90:
        return f"{max(1, round(seconds))} seconds"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{seconds / 3600:.1f} hours"


def window(days: int) -> str:
    return "last week's" if days == 7 else f"the last {days} days'" if days > 1 else "yesterday's"


def percent(share: float) -> str:
    """Rounded down: 79.6 % of the visits is not called 80 %."""
    return f"{math.floor(share * 100 + 1e-9)} %"


def coverage_line(usage: dict[str, Any] | None) -> str | None:
    """The card's line on the order: what it buys, or why there is no usage (None: plans are
    not ordered by usage on this bot)."""
    if not usage:
        return None
    days = int(usage.get("days") or 7)
    if not usage.get("known"):
        reason = esc(clip(str(usage.get("reason") or "Connect gave no usage"), 200))
        return f":bar_chart: {reason}: building in the usual order."
    share = usage.get("coverage_share")
    if share is None:
        return (
            f":bar_chart: No visits to these apps and APIs in {window(days)} usage:"
            " building in the usual order."
        )
    seconds = usage.get("coverage_seconds")
    if seconds is not None:
        first = f"the first {span(float(seconds))}"
    else:
        first = f"the first {int(usage.get('coverage_items') or 0)} build(s)"
    visited = int(usage.get("visited_items") or 0)
    return (
        f":bar_chart: *Visitors first:* {first} cover {percent(float(share))} of {window(days)}"
        f" visits ({visited} visited app(s) and API(s), most visits per build minute first)."
    )


def unvisited_text(
    count: int,
    titles: Sequence[str],
    within_days: int | None,
    *,
    lead: str = "Left to build on first visit",
    why: str = " (Connect rebuilds them when next run)",
) -> str:
    """The items `--visited-within` left out: by default a plan's (Connect rebuilds them when
    next visited); `lead` and `why` say it for a health check."""
    days = f" in the last {within_days} days" if within_days else ""
    names = ", ".join(f"*{esc(clip(title, 60))}*" for title in titles)
    more = f", +{count - len(titles)} more" if count > len(titles) else ""
    return f":zzz: {lead}: {count} item(s) nobody visited{days}{why}: {names}{more}"


def served_text(share: float | None) -> str:
    """The progress message's share of the visits whose items are rebuilt ('' without usage)."""
    return f" · {percent(share)} of visits covered" if share is not None else ""
