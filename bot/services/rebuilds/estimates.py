"""How long each planned item's build will take, from the bot's own history, and the plan order
that follows: longest first within a priority class.

An item's estimate is the median of its latest successful builds on the same server (warm ones
preferred: a warm-up build may have filled a cold cache, which takes several times longer). An
item the bot never built gets the median of the others. With no history at all there are no
estimates, and the plan keeps Connect's order (newest deployment first).

Starting the longest builds first keeps a long build from starting last and running alone while
the other slots are idle (longest-processing-time-first list scheduling).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from statistics import median

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from bot.store import Rebuild, RebuildItem

HISTORY_BUILDS = 5  # the latest builds of an item its estimate reads
HISTORY_REBUILDS = 8  # the latest rebuilds on the server that are read
WARMUP = 0  # the warm-up wave: planning.WARMUP (that module imports this one)


class Estimates:
    """Seconds per GUID for the items of one plan: known ones, and the typical one for the rest."""

    def __init__(self, known: Mapping[str, float], *, typical: float | None = None) -> None:
        self.known = dict(known)
        if typical is None:
            typical = median(self.known.values()) if self.known else 0.0
        self.typical = typical  # the estimate of an item not known

    def __bool__(self) -> bool:
        return bool(self.known)

    def __call__(self, guid: str) -> float:
        return self.known.get(guid, self.typical)


def estimate(session: Session, rebuild_id: int) -> Estimates:
    """Estimates for the items of `rebuild_id` from the earlier rebuilds on its server."""
    rows = session.execute(
        _history(rebuild_id)
        .order_by(RebuildItem.finished_at.desc())
        .execution_options(yield_per=2000)  # streamed: 10,000 items x 8 rebuilds stay small
    )
    warm: dict[str, list[float]] = {}
    any_build: dict[str, list[float]] = {}
    for guid, wave, started, finished in rows:
        if started is None or finished is None:  # excluded by the query; for the type checker
            continue
        seconds = max(0.0, (finished - started).total_seconds())
        for found in (any_build, warm) if wave != WARMUP else (any_build,):
            durations = found.setdefault(guid, [])
            if len(durations) < HISTORY_BUILDS:
                durations.append(seconds)
    return Estimates(
        {guid: median(warm.get(guid) or durations) for guid, durations in any_build.items()}
    )


def has_history(session: Session, rebuild_id: int) -> bool:
    """Would `estimate` know any of the plan's items? (One row asked, not the history.)"""
    return session.execute(_history(rebuild_id).limit(1)).first() is not None


def _history(rebuild_id: int) -> Select[str, int, datetime | None, datetime | None]:
    """The successful builds of the plan's items in the latest earlier rebuilds on its server."""
    server = select(Rebuild.server).where(Rebuild.id == rebuild_id).scalar_subquery()
    earlier = (
        select(Rebuild.id)
        .where(Rebuild.id != rebuild_id, Rebuild.server.is_not_distinct_from(server))
        .order_by(Rebuild.id.desc())
        .limit(HISTORY_REBUILDS)
    )
    planned = select(RebuildItem.guid).where(RebuildItem.rebuild_id == rebuild_id)
    return select(
        RebuildItem.guid, RebuildItem.wave, RebuildItem.started_at, RebuildItem.finished_at
    ).where(
        RebuildItem.rebuild_id.in_(earlier),
        RebuildItem.guid.in_(planned),
        RebuildItem.state == "succeeded",
        RebuildItem.started_at.is_not(None),
        RebuildItem.finished_at.is_not(None),
    )


def longest_first(session: Session, rebuild_id: int, estimates: Estimates) -> None:
    """Renumber the plan's positions: longest estimate first, then the current order. The
    driver dispatches by (wave, position), so within each priority class the longest go first."""
    if not estimates:
        return
    rows = session.execute(
        select(RebuildItem.id, RebuildItem.guid, RebuildItem.position).where(
            RebuildItem.rebuild_id == rebuild_id
        )
    ).all()
    ordered = sorted(rows, key=lambda row: (-estimates(row.guid), row.position))
    moved = [
        {"id": row.id, "position": position}
        for position, row in enumerate(ordered)
        if row.position != position
    ]
    if moved:
        session.execute(update(RebuildItem), moved)  # ORM bulk UPDATE by primary key
