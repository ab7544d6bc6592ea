"""Scheduled rebuilds in the database: the `rebuilds` rows in state `scheduled`, and the claims
that make each act happen once whatever the number of processes.

Every state change is one conditional UPDATE (`... WHERE state = 'scheduled'`): of several
replicas whose timers fire together, exactly one moves the row on, the others change nothing.

    planned -> scheduled (schedule) -> starting (claim_start) -> planned -> running (Start's path)
    scheduled -> missed (claim_missed: too late) | cancelled (cancel)
    starting -> discarded (close: nothing matches any more)
    starting | planned (claimed) -> scheduled (release_start: the start raised; retried)

`starting` is held by the process in `claimed_by` since `claimed_at`; if it dies there, or
holds it longer than a few minutes (it hangs), reconciliation takes the claim over and starts
it (re-evaluating the selection is idempotent: the items are replaced in one transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update

from bot.connect import ConnectClient, ContentFilter, RuntimeCache
from bot.services.rebuilds.planning import (
    finish_plan,
    insert_items,
    restore_priors,
    select_items,
)
from bot.services.usage import PlanUsage
from bot.store import Database, Rebuild, RebuildItem

SCHEDULED, STARTING, MISSED = "scheduled", "starting", "missed"


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A rebuild that was scheduled (in any state since)."""

    rebuild_id: int
    state: str
    description: str
    server: str | None
    channel: str
    thread_ts: str | None
    requested_by: str
    scheduled_by: str | None
    scheduled_for: datetime
    reminded: bool
    total: int
    criteria: dict[str, Any] | None
    claimed_by: str | None
    claimed_at: datetime | None = None

    @property
    def target(self) -> str:
        return f"rebuild #{self.rebuild_id}"


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- reading -------------------------------------------------------------------------

    def get(self, rebuild_id: int) -> Scheduled | None:
        with self.db.session() as session:
            row = session.get(Rebuild, rebuild_id)
            return _scheduled(row) if row is not None and row.scheduled_for else None

    def scheduled(self) -> list[Scheduled]:
        """Every rebuild waiting for its start, soonest first."""
        return self._where(Rebuild.state == SCHEDULED)

    def listed(self) -> list[Scheduled]:
        """What `rebuild scheduled` shows: those waiting, and those starting right now."""
        return self._where(Rebuild.state.in_((SCHEDULED, STARTING)))

    def orphans(self) -> list[Scheduled]:
        """Starts claimed but not finished: `starting`, or `planned` again with a claim."""
        return self._where(
            (Rebuild.state == STARTING)
            | ((Rebuild.state == "planned") & Rebuild.claimed_by.is_not(None))
        )

    def planned_titles(self, rebuild_id: int) -> dict[str, str]:
        """GUID -> title of the items the plan will build (not the skipped ones)."""
        with self.db.session() as session:
            rows = session.execute(
                select(RebuildItem.guid, RebuildItem.title).where(
                    RebuildItem.rebuild_id == rebuild_id, RebuildItem.state != "skipped"
                )
            ).all()
        return {guid: title for guid, title in rows}

    def _where(self, condition: Any) -> list[Scheduled]:
        with self.db.session() as session:
            rows = session.scalars(
                select(Rebuild)
                .where(condition, Rebuild.scheduled_for.is_not(None))
                .order_by(Rebuild.scheduled_for, Rebuild.id)
            ).all()
            return [_scheduled(row) for row in rows]

    # ---- claims (one conditional UPDATE each) --------------------------------------------

    def schedule(self, rebuild_id: int, *, at: datetime, by: str, reminded: bool) -> bool:
        """planned -> scheduled for `at` (False: it was not `planned`)."""
        return self._move(
            rebuild_id,
            "planned",
            state=SCHEDULED,
            scheduled_for=at,
            scheduled_by=by,
            reminded=reminded,
        )

    def claim_reminder(self, rebuild_id: int) -> bool:
        return self._move(rebuild_id, SCHEDULED, Rebuild.reminded.is_(False), reminded=True)

    def claim_start(self, rebuild_id: int, instance_id: str, now: datetime) -> bool:
        return self._move(
            rebuild_id, SCHEDULED, state=STARTING, claimed_by=instance_id, claimed_at=now
        )

    def claim_missed(self, rebuild_id: int, now: datetime) -> bool:
        return self._move(rebuild_id, SCHEDULED, state=MISSED, finished_at=now)

    def cancel(self, rebuild_id: int, now: datetime) -> bool:
        return self._move(rebuild_id, SCHEDULED, state="cancelled", finished_at=now)

    def take_over(self, item: Scheduled, instance_id: str, now: datetime) -> bool:
        """Become the starter of an orphan, unless another process just did."""
        return self._move(
            item.rebuild_id,
            item.state,
            Rebuild.claimed_by == item.claimed_by,
            claimed_by=instance_id,
            claimed_at=now,
        )

    def release_start(self, rebuild_id: int, instance_id: str) -> bool:
        """A start that raised goes back to `scheduled`, to be tried again (False: the claim
        is no longer `instance_id`'s, or the rebuild started)."""
        with self.db.session() as session:
            return _won(
                session.execute(
                    update(Rebuild)
                    .where(
                        Rebuild.id == rebuild_id,
                        Rebuild.state.in_((STARTING, "planned")),
                        Rebuild.claimed_by == instance_id,
                    )
                    .values(state=SCHEDULED, claimed_by=None, claimed_at=None)
                )
            )

    @staticmethod
    def stale(item: Scheduled, now: datetime, after: timedelta) -> bool:
        """Claimed longer ago than `after` (or before claims had a time)."""
        return item.claimed_at is None or now - item.claimed_at > after

    def to_planned(self, rebuild_id: int, instance_id: str) -> bool:
        """starting -> planned, just before the usual start (planned -> running)."""
        return self._move(rebuild_id, STARTING, Rebuild.claimed_by == instance_id, state="planned")

    def close(self, rebuild_id: int, state: str, now: datetime) -> bool:
        """starting -> `state` (discarded: nothing matches any more)."""
        return self._move(rebuild_id, STARTING, state=state, finished_at=now)

    def _move(
        self, rebuild_id: int, from_state: str, *also: ColumnElement[bool], **values: Any
    ) -> bool:
        """One conditional UPDATE from `from_state` (and `also`): True if this call won it."""
        with self.db.session() as session:
            return _won(
                session.execute(
                    update(Rebuild)
                    .where(Rebuild.id == rebuild_id, Rebuild.state == from_state, *also)
                    .values(**values)
                )
            )

    # ---- the items -----------------------------------------------------------------------

    def replace_items(
        self,
        client: ConnectClient,
        rebuild_id: int,
        content_filter: ContentFilter | None,
        caches: Iterable[RuntimeCache] | None,
        usage: PlanUsage | None = None,
    ) -> None:
        """The plan's items become what the selection matches now (raises ConnectError, then
        the items planned are kept). The listing is read in full before the old items go, so
        a Connect failure half-way leaves the plan as it was (slimmed items: a few MB at most
        for 10,000); the swap is one transaction, so a crash or an error leaves it as it was
        too, and two starters at once cannot double the items (unique rebuild_id, guid)."""
        chosen = tuple(caches) if caches is not None else None
        fresh = list(select_items(client, content_filter, chosen))
        priors = restore_priors(self.db, client, rebuild_id)  # of the items planned before
        with self.db.session() as session:
            session.execute(delete(RebuildItem).where(RebuildItem.rebuild_id == rebuild_id))
            if usage is not None:  # fresh usage: the order is made again with it
                session.execute(
                    update(Rebuild).where(Rebuild.id == rebuild_id).values(usage=usage.to_json())
                )
            insert_items(self.db, rebuild_id, fresh, session=session, usage=usage)
            finish_plan(session, rebuild_id, priors)


def _won(result: Any) -> bool:
    return bool(result.rowcount)


def _scheduled(row: Rebuild) -> Scheduled:
    assert row.scheduled_for is not None
    return Scheduled(
        rebuild_id=row.id,
        state=row.state,
        description=row.description,
        server=row.server,
        channel=row.channel,
        thread_ts=row.thread_ts,
        requested_by=row.requested_by,
        scheduled_by=row.scheduled_by,
        scheduled_for=row.scheduled_for,
        reminded=bool(row.reminded),
        total=row.total,
        criteria=dict(row.criteria) if row.criteria else None,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
    )
