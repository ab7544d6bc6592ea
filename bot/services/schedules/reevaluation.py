"""A scheduled rebuild at its start: its selection asked of Connect again, the plan's items
replaced by what matches now, and what changed, for the thread."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.connect import ConnectClient, ConnectError, ContentFilter
from bot.services.outcomes import Actor
from bot.services.queries import ContentUsing, Impact
from bot.services.rebuilds import Criteria
from bot.services.schedules.outcomes import Reevaluated
from bot.services.schedules.store import Scheduled, ScheduleStore
from bot.services.usage import UsageCounter

NOTICE_TITLES = 10  # titles listed per kind of change in the thread
TOLD_LATE = timedelta(minutes=1)  # a start later than this says so in the thread


class _Unresolved(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reevaluate(
    store: ScheduleStore,
    client: ConnectClient,
    impact: Impact | None,
    item: Scheduled,
    late: timedelta,
    *,
    usage: UsageCounter | None = None,
) -> Reevaluated | None:
    """Replace the plan's items by what the selection matches now, ordered by fresh usage
    (`usage`); None: nothing does. When Connect cannot say, the items planned are kept (and
    the notice says why)."""
    before = store.planned_titles(item.rebuild_id)
    told_late = late if late > TOLD_LATE else None
    kept = Reevaluated(item, len(before), len(before), late=told_late)
    criteria = Criteria.from_json(item.criteria)
    if criteria is None:
        return replace(kept, error="the plan predates scheduling; built as planned")
    try:
        content_filter = _resolve(impact, item, criteria)
        if content_filter is None and criteria.packages:
            return None
        fresh = (
            usage.count(client, within_days=criteria.visited_within) if usage is not None else None
        )
        store.replace_items(client, item.rebuild_id, content_filter, criteria.caches, fresh)
    except _Unresolved as exc:
        return replace(kept, error=exc.reason)
    except ConnectError as exc:
        return replace(kept, error=f"Connect could not list its content: {exc.reason}")
    after = store.planned_titles(item.rebuild_id)
    if not after:
        return None
    added = [after[g] for g in after if g not in before]
    removed = [before[g] for g in before if g not in after]
    return Reevaluated(
        item,
        planned=len(before),
        matching=len(after),
        added=sorted(added)[:NOTICE_TITLES],
        added_count=len(added),
        removed=sorted(removed)[:NOTICE_TITLES],
        removed_count=len(removed),
        late=told_late,
    )


def _resolve(impact: Impact | None, item: Scheduled, criteria: Criteria) -> ContentFilter | None:
    """The content filter to apply now: `--uses-package` names become today's items (None: no
    item uses them now)."""
    if not criteria.packages:
        return criteria.content_filter
    if impact is None:
        raise _Unresolved("package lookups are not set up; built as planned")
    actor = Actor(item.scheduled_by or item.requested_by, item.channel)
    found = impact.content_using(actor, item.server, criteria.packages)
    if not isinstance(found, ContentUsing):
        raise _Unresolved("Connect could not say which content uses the packages")
    base = criteria.content_filter
    wanted = base.guids if base is not None else frozenset()
    guids = found.guids & wanted if wanted else found.guids
    if not guids or base is None:
        return None
    return replace(base, guids=guids)
