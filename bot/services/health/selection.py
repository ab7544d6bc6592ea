"""Which items a health check requests, and how; pure (no I/O).

Interactive items are visited; rendered ones are rendered again only when asked (a render
replaces what viewers see); static, locked and unpublished items are never requested, nor, with
`--visited-within`, the items nobody visited in that window. An item whose R or Python version,
on its image, Connect no longer lists fails without a request (connect-api-2.md §11.4).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from bot.connect import ContentItem, Installation
from bot.connect.models import sanitised_image
from bot.services.health.outcomes import UNVISITED, FailsToStart, Skipped

LOCKED_NO_MESSAGE = "locked in Connect"


class Probe(Enum):
    VISIT = "visit"  # request the content URL, read the job it started
    RENDER = "render"  # render it again, follow the task and its job


Installed = frozenset[tuple[str, str, str]]  # (language, version, sanitised image)


def installed(installations: Iterable[Installation]) -> Installed:
    return frozenset(
        (found.language, found.version, sanitised_image(found.image_name))
        for found in installations
    )


def classify(
    item: ContentItem,
    runtimes: Installed | None,
    *,
    render: bool,
    visited: frozenset[str] | None = None,
) -> Probe | Skipped | FailsToStart:
    """How to check `item`; `runtimes`: what Connect offers (None: unknown, not checked);
    `visited`: the GUIDs `--visited-within` keeps (None: all)."""
    if not item.published:
        return Skipped("not published")
    if item.locked:
        return Skipped(item.locked_message.strip() or LOCKED_NO_MESSAGE)
    if not item.interactive and not item.rendered:
        return Skipped(f"{item.app_mode} content starts no process")
    if item.rendered and not render:
        return Skipped("rendered content: checked only when rendered again (--render)")
    if visited is not None and item.guid not in visited:
        return UNVISITED
    gone = _missing_runtime(item, runtimes)
    if gone is not None:
        return FailsToStart(gone, stage="runtime")
    return Probe.VISIT if item.interactive else Probe.RENDER


def _missing_runtime(item: ContentItem, runtimes: Installed | None) -> str | None:
    if runtimes is None:
        return None
    for runtime in item.runtimes:
        key = (runtime.language, runtime.version, sanitised_image(runtime.image_name))
        if key not in runtimes:
            return f"{runtime.label} is no longer installed on Connect"
    return None
