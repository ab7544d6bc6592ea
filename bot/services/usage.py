"""Visits per item, asked of Connect: what a rebuild plan is ordered by (over the last
`BOT_USAGE_DAYS`, once per plan and again when a scheduled rebuild is re-evaluated at its start,
kept with the plan: `rebuilds.usage`, `rebuild_items.visitors`), and which items
`--visited-within` keeps, for `rebuild` and `health`. Shared by the features.

Usage never stops a plan or a check: when Connect has none (404, 403) or cannot answer, the
plan is made in the usual order, a check checks every item, and the card says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.connect import ConnectClient, ConnectError, NoUsage
from bot.store import utcnow

DEFAULT_USAGE_DAYS = 7


@dataclass(frozen=True, slots=True)
class PlanUsage:
    """Visits per GUID over the last `days` (None: no usage, and `reason` says why);
    `visited`: the GUIDs visited within `within_days` (`--visited-within`), or None."""

    days: int
    visits: dict[str, int] | None
    reason: str | None = None
    source: str | None = None
    visited: frozenset[str] | None = None
    within_days: int | None = None

    @property
    def known(self) -> bool:
        return self.visits is not None

    def to_json(self) -> dict[str, Any]:
        """What the plan keeps on its row (the per-item visits go on the items)."""
        return {
            "known": self.known,
            "days": self.days,
            "reason": self.reason,
            "source": self.source,
            "within_days": self.within_days if self.visited is not None else None,
        }


class UsageCounter:
    """Asks a server's Connect for the usage of a plan; `clock`: the current time (UTC)."""

    def __init__(self, days: int = DEFAULT_USAGE_DAYS, clock: Callable[[], datetime] = utcnow):
        self.days = max(1, days)
        self.clock = clock

    def count(self, client: ConnectClient, *, within_days: int | None = None) -> PlanUsage:
        """The plan's usage; `within_days`: also which items were visited in that window."""
        until = self.clock()
        try:
            version = client.server_settings().version
            usage = client.usage.visits(until - timedelta(days=self.days), until, version=version)
            if isinstance(usage, NoUsage):
                return PlanUsage(self.days, None, reason=usage.reason)
            visited = None
            if within_days is not None:
                if within_days == self.days:
                    visited = frozenset(g for g, n in usage.visits.items() if n > 0)
                else:
                    since = until - timedelta(days=within_days)
                    wider = client.usage.visits(since, until, version=version)
                    if isinstance(wider, NoUsage):
                        return PlanUsage(self.days, None, reason=wider.reason)
                    visited = frozenset(g for g, n in wider.visits.items() if n > 0)
        except ConnectError as exc:
            return PlanUsage(self.days, None, reason=f"Connect could not say: {exc.reason}")
        return PlanUsage(
            self.days,
            usage.visits,
            source=usage.source,
            visited=visited,
            within_days=within_days,
        )


def visited_within(
    client: ConnectClient, days: int, clock: Callable[[], datetime] = utcnow
) -> frozenset[str] | str:
    """The GUIDs visited in the last `days` days (`--visited-within`), or why Connect could
    not say (then nothing is left out)."""
    usage = UsageCounter(days, clock).count(client, within_days=days)
    if usage.visited is None:
        return usage.reason or "Connect gave no usage"
    return usage.visited
