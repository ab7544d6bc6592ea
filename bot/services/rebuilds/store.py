"""Rebuilds in the database: plans (made by `bot.services.rebuilds.planning`), their state
changes, and how far each has got. The store never calls the engine: the use case
(`bot.services.rebuilds.service`) launches or cancels the driver after a state change here.

The `progress` JSON (what the Slack thread was told, who cancelled) is changed by one UPDATE
that merges in the database (`jsonb ||` on PostgreSQL, `json_patch` on SQLite), never by a
read-modify-write, so processes and threads setting flags at once lose none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update

from bot.connect import ConnectClient, ContentFilter, RuntimeCache
from bot.services.rebuilds import planning
from bot.services.rebuilds.planning import (
    ACTIVE,
    DEFAULT_PARALLELISM,
    FINISHED,
    INTERACTIVE,
    MAX_PARALLELISM,
    OPEN_ITEM_STATES,
    RENDERED,
    WARMUP,
    affected_by,
    clamp_parallelism,
    item_runtime_keys,
    merged_progress,
    runtime_label,
    state_counts,
    wave_of,
)
from bot.services.rebuilds.usage import UNVISITED
from bot.services.usage import PlanUsage
from bot.store import Database, DeletionTarget, Rebuild, RebuildItem, utcnow

# A cache deleted this long before a rebuild was planned counts as deleted "just before" it.
DELETED_BEFORE = timedelta(hours=24)
_LABEL = re.compile(r"^(\S+) (\S+) \((.*)\)$")

__all__ = [
    "ACTIVE",
    "DEFAULT_PARALLELISM",
    "FINISHED",
    "INTERACTIVE",
    "MAX_PARALLELISM",
    "OPEN_ITEM_STATES",
    "RENDERED",
    "WARMUP",
    "CancelResult",
    "ItemView",
    "PlanSummary",
    "Progress",
    "RebuildNotFound",
    "RebuildStore",
    "affected_by",
    "clamp_parallelism",
    "runtime_label",
    "wave_of",
]


class RebuildNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class PlanSummary:
    rebuild_id: int
    state: str
    description: str
    requested_by: str
    channel: str
    parallelism: int
    total: int
    skipped: int
    by_type: list[tuple[str, int]]
    by_runtime: list[tuple[str, int]]
    waves: dict[int, int]
    warmup: list[tuple[str, str]]  # (runtime, title) of the warm-up items
    skipped_titles: list[str]  # items skipped as already in another running rebuild
    server: str | None = None  # the Connect server's name (None: made before names)
    resent: int = 0  # build requests re-sent after one may have reached Connect
    locked: int = 0  # of `skipped`: items locked in Connect (no Rebuild button there)
    locked_items: list[tuple[str, str]] = field(default_factory=list)  # (title, locked message)
    usage: dict[str, Any] | None = None  # what the order was made with (`PlanUsage.to_json`)
    unvisited: int = 0  # of `skipped`: items `--visited-within` left to build on first visit
    unvisited_titles: list[str] = field(default_factory=list)  # at most 10


@dataclass(frozen=True, slots=True)
class Progress:
    rebuild_id: int
    state: str
    description: str
    requested_by: str
    started_by: str | None
    channel: str
    thread_ts: str | None
    parallelism: int
    total: int
    skipped: int
    counts: dict[str, int]
    warmup_total: int
    warmup_open: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    flags: dict[str, Any] = field(default_factory=dict)
    server: str | None = None  # the Connect server's name (None: made before names)
    resent: int = 0  # build requests re-sent after one may have reached Connect
    instance_id: str | None = None  # the process holding the lease (the `driver` column)
    lease_token: str | None = None  # that lease's fencing token (`claim_post`)
    visitors: int | None = None  # the visits waiting on the plan's builds (None: no usage)
    visitors_served: int = 0  # of those, the visits to items already rebuilt

    @property
    def visitors_share(self) -> float | None:
        """The share of the visits waiting whose items are rebuilt (None: no usage)."""
        if not self.visitors:
            return None
        return self.visitors_served / self.visitors

    # Interactive items that built, by their verification (`verified`: pending, starts, fails,
    # unchecked); empty when nothing was verified.
    verify: dict[str, int] = field(default_factory=dict)

    @property
    def verify_off(self) -> bool:
        """`--no-verify`: built items were not probed."""
        return bool(self.flags.get("no_verify"))

    @property
    def fails_to_start(self) -> int:
        """Items that built but fail to start."""
        return self.verify.get("fails", 0)

    @property
    def verifying(self) -> int:
        return self.verify.get("pending", 0)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def done_items(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))

    def elapsed(self, now: datetime) -> float | None:
        """Seconds since the start, up to the finish (or `now` while it runs)."""
        if self.started_at is None:
            return None
        end = self.finished_at or now
        return max(0.0, (end - self.started_at).total_seconds())

    def eta(self, now: datetime) -> float | None:
        """Seconds left at the rate so far; None until something finished."""
        elapsed = self.elapsed(now)
        finished = self.counts.get("succeeded", 0) + self.counts.get("failed", 0)
        if self.finished or not elapsed or not finished:
            return None
        remaining = self.counts.get("queued", 0) + self.counts.get("building", 0)
        return remaining * elapsed / finished


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    guid: str
    title: str
    app_mode: str
    runtime: str
    wave: int
    state: str
    error: str | None
    dashboard_url: str | None
    task_id: str | None
    resent: int = 0  # build requests re-sent after one may have reached Connect
    owner_guid: str | None = None  # the Connect user owning the item (None: planned before)
    verified: str | None = None  # after the build: pending, starts, fails, unchecked
    verify_error: str | None = None
    runtimes: tuple[str, ...] = ()  # its runtime caches' keys (`RuntimeCache.label`)


@dataclass(frozen=True, slots=True)
class CancelResult:
    ok: bool
    state: str
    building: int = 0
    queued: int = 0


class RebuildStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- planning ------------------------------------------------------------------------

    def plan(
        self,
        client: ConnectClient,
        *,
        server: str | None,
        requested_by: str,
        channel: str,
        description: str,
        parallelism: int | None = None,
        content_filter: ContentFilter | None = None,
        caches: Iterable[RuntimeCache] | None = None,
        usage: PlanUsage | None = None,
    ) -> PlanSummary:
        """Persist a plan (state `planned`) on `server`, whose Connect is `client`, of the
        published items selected by the filter, or affected by `caches`, ordered by `usage`.
        Raises ConnectError when Connect cannot list its content."""
        rebuild_id = planning.plan(
            self.db,
            client,
            server=server,
            requested_by=requested_by,
            channel=channel,
            description=description,
            parallelism=parallelism,
            content_filter=content_filter,
            caches=caches,
            usage=usage,
        )
        return self.summary(rebuild_id)

    def attach_message(self, rebuild_id: int, ts: str) -> None:
        """The plan card is also the progress message: its thread holds the rebuild's replies."""
        with self.db.session() as session:
            session.execute(update(Rebuild).where(Rebuild.id == rebuild_id).values(thread_ts=ts))

    def set_criteria(self, rebuild_id: int, criteria: dict[str, Any]) -> None:
        """What the plan selects, to ask Connect again at a scheduled start."""
        with self.db.session() as session:
            session.execute(
                update(Rebuild).where(Rebuild.id == rebuild_id).values(criteria=criteria)
            )

    # ---- state changes (the use case launches or cancels the driver afterwards) -------------

    def start(self, rebuild_id: int, *, started_by: str) -> bool:
        """planned -> running (False: it was not `planned`); see `planning.start`."""
        return planning.start(self.db, rebuild_id, started_by=started_by)

    def close_plan(self, rebuild_id: int, state: str) -> bool:
        """A plan nobody started: `discarded` or `expired`."""
        with self.db.session() as session:
            return bool(
                session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                    update(Rebuild)
                    .where(Rebuild.id == rebuild_id, Rebuild.state == "planned")
                    .values(state=state, finished_at=utcnow())
                ).rowcount
            )

    def cancel(self, rebuild_id: int, *, by: str) -> CancelResult:
        """running -> cancelling; then the caller tells the engine (running builds finish)."""
        with self.db.session() as session:
            row = session.get(Rebuild, rebuild_id, with_for_update=True)
            if row is None:
                raise RebuildNotFound(rebuild_id)
            if row.state != "running":
                return CancelResult(False, row.state)
            counts = state_counts(session, rebuild_id)
            flags = {"cancelled_by": by, "running_at_cancel": counts.get("building", 0)}
            won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.state == "running")
                .values(state="cancelling", progress=merged_progress(self.db.dialect, flags))
            ).rowcount
            if not won:
                return CancelResult(False, "cancelling")
        return CancelResult(True, "cancelling", counts.get("building", 0), counts.get("queued", 0))

    def set_flags(self, rebuild_id: int, **flags: Any) -> None:
        """Merge into the `progress` JSON (what the Slack thread has already been told)."""
        with self.db.session() as session:
            session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id)
                .values(progress=merged_progress(self.db.dialect, flags))
            )

    def claim_post(self, rebuild_id: int, token: str | None, key: str) -> bool:
        """Before a message that must be posted once (`key`: summary, start) leaves: record
        `<key>_claimed`, fenced by the lease token. False: the lease moved, and its new holder
        posts it. A holder that finds the claim already made (by itself before a failed post,
        or by a process that died) looks for the message in Slack before posting again."""
        return self.set_flags_fenced(rebuild_id, token, **{f"{key}_claimed": True})

    def set_flags_fenced(self, rebuild_id: int, token: str | None, **flags: Any) -> bool:
        """`set_flags` if the lease is still `token`'s (False: it moved, nothing was set)."""
        if token is None:
            return False
        with self.db.session() as session:
            return bool(
                session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                    update(Rebuild)
                    .where(Rebuild.id == rebuild_id, Rebuild.lease_token == token)
                    .values(progress=merged_progress(self.db.dialect, flags))
                ).rowcount
            )

    def report_final(self, rebuild_id: int, instance_id: str) -> None:
        """The final summary is posted: record it, and release the lease if `instance_id` has it."""
        with self.db.session() as session:
            session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id)
                .values(progress=merged_progress(self.db.dialect, {"final_reported": True}))
            )
            session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.driver == instance_id)
                .values(driver=None, lease_token=None, heartbeat_at=None)
            )

    # ---- queries -------------------------------------------------------------------------

    def summary(self, rebuild_id: int) -> PlanSummary:
        with self.db.session() as session:
            row = session.get(Rebuild, rebuild_id)
            if row is None:
                raise RebuildNotFound(rebuild_id)
            planned = (RebuildItem.rebuild_id == rebuild_id, RebuildItem.state != "skipped")

            def grouped(column: Any) -> list[tuple[Any, int]]:
                rows = session.execute(
                    select(column, func.count()).where(*planned).group_by(column)
                ).all()
                return sorted(((key, int(n)) for key, n in rows), key=lambda kv: (-kv[1], kv[0]))

            warmup = session.execute(
                select(RebuildItem.runtime, RebuildItem.title)
                .where(*planned, RebuildItem.wave == WARMUP)
                .order_by(RebuildItem.position)
            ).all()
            all_skipped = (RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "skipped")
            unvisited = (*all_skipped, RebuildItem.error == UNVISITED)
            unvisited_count = session.scalar(select(func.count()).where(*unvisited))
            unvisited_titles = session.scalars(
                select(RebuildItem.title).where(*unvisited).order_by(RebuildItem.title).limit(10)
            ).all()
            skipped = (*all_skipped, RebuildItem.error.is_distinct_from(UNVISITED))
            # Locked items are skipped with their locked message; duplicates without an error.
            skipped_titles = session.scalars(
                select(RebuildItem.title)
                .where(*skipped, RebuildItem.error.is_(None))
                .order_by(RebuildItem.position)
                .limit(10)
            ).all()
            locked_count = session.scalar(
                select(func.count()).where(*skipped, RebuildItem.error.is_not(None))
            )
            locked_items = session.execute(
                select(RebuildItem.title, RebuildItem.error)
                .where(*skipped, RebuildItem.error.is_not(None))
                .order_by(RebuildItem.position)
                .limit(10)
            ).all()
            return PlanSummary(
                rebuild_id=row.id,
                state=row.state,
                description=row.description,
                requested_by=row.requested_by,
                channel=row.channel,
                parallelism=row.parallelism,
                total=row.total,
                skipped=row.skipped,
                by_type=grouped(RebuildItem.app_mode),
                by_runtime=grouped(RebuildItem.runtime),
                waves=dict(grouped(RebuildItem.wave)),
                warmup=[(r, t) for r, t in warmup],
                skipped_titles=list(skipped_titles),
                server=row.server,
                locked=int(locked_count or 0),
                locked_items=[(title, str(error)) for title, error in locked_items],
                usage=dict(row.usage) if row.usage else None,
                unvisited=int(unvisited_count or 0),
                unvisited_titles=list(unvisited_titles),
            )

    def progress(self, rebuild_id: int) -> Progress | None:
        with self.db.session() as session:
            row = session.get(Rebuild, rebuild_id)
            if row is None:
                return None
            counts = state_counts(session, rebuild_id)
            warmup = dict(
                session.execute(
                    select(RebuildItem.state, func.count())
                    .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.wave == WARMUP)
                    .group_by(RebuildItem.state)
                ).all()
            )
            resent = session.scalar(
                select(func.coalesce(func.sum(RebuildItem.resent), 0)).where(
                    RebuildItem.rebuild_id == rebuild_id
                )
            )
            visitors = session.execute(
                select(
                    func.sum(RebuildItem.visitors),
                    func.sum(
                        case((RebuildItem.state == "succeeded", RebuildItem.visitors), else_=0)
                    ),
                ).where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.state != "skipped")
            ).one()
            verify = dict(
                session.execute(
                    select(RebuildItem.verified, func.count())
                    .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.verified.is_not(None))
                    .group_by(RebuildItem.verified)
                ).all()
            )
            return replace(
                _progress(row, counts, warmup),
                resent=int(resent or 0),
                visitors=int(visitors[0]) if visitors[0] is not None else None,
                visitors_served=int(visitors[1] or 0),
                verify={str(k): int(n) for k, n in verify.items()},
            )

    def latest(self, *, active_only: bool = False) -> Progress | None:
        with self.db.session() as session:
            query = select(Rebuild.id).where(Rebuild.state.not_in(("planned",)))
            if active_only:
                query = query.where(Rebuild.state.in_(ACTIVE))
            rebuild_id = session.scalar(query.order_by(Rebuild.id.desc()).limit(1))
        return self.progress(rebuild_id) if rebuild_id is not None else None

    def history(
        self, limit: int = 10, server: str | None = None, *, unnamed: bool = False
    ) -> list[Progress]:
        """The last rebuilds, newest first; of `server` only when given (`unnamed`: with the
        rebuilds from before servers had names, which ran on the default server)."""
        with self.db.session() as session:
            query = select(Rebuild).order_by(Rebuild.id.desc()).limit(limit)
            if server is not None:
                named = Rebuild.server == server
                query = query.where(named | Rebuild.server.is_(None) if unnamed else named)
            rows = session.scalars(query).all()
            ids = [row.id for row in rows]
            counts: dict[int, dict[str, int]] = {i: {} for i in ids}
            for rebuild_id, state, n in session.execute(
                select(RebuildItem.rebuild_id, RebuildItem.state, func.count())
                .where(RebuildItem.rebuild_id.in_(ids))
                .group_by(RebuildItem.rebuild_id, RebuildItem.state)
            ).all():
                counts[rebuild_id][state] = int(n)
            return [_progress(row, counts[row.id], {}) for row in rows]

    def active_ids(self) -> list[int]:
        with self.db.session() as session:
            return list(session.scalars(select(Rebuild.id).where(Rebuild.state.in_(ACTIVE))).all())

    def failures_to_report(self, rebuild_id: int, limit: int = 10) -> list[ItemView]:
        with self.db.session() as session:
            rows = session.scalars(
                select(RebuildItem)
                .where(
                    RebuildItem.rebuild_id == rebuild_id,
                    RebuildItem.state == "failed",
                    RebuildItem.notified.is_(False),
                )
                .order_by(RebuildItem.finished_at, RebuildItem.id)
                .limit(limit)
            ).all()
            return [_item_view(row) for row in rows]

    def verify_failures(self, rebuild_id: int, limit: int = 20) -> list[ItemView]:
        """Items that built but fail to start (or could not be checked: after those), in plan
        order, with why."""
        with self.db.session() as session:
            rows = session.scalars(
                select(RebuildItem)
                .where(
                    RebuildItem.rebuild_id == rebuild_id,
                    RebuildItem.verified.in_(("fails", "unchecked")),
                )
                .order_by(RebuildItem.verified, RebuildItem.wave, RebuildItem.position)
                .limit(limit)
            ).all()
            return [_item_view(row) for row in rows]

    def undeleted_caches(self, rebuild_id: int) -> list[RuntimeCache]:
        """The runtime caches of items that built but fail to start whose cache was not deleted
        in this rebuild or just before it (the deletion journal: no deletion of it succeeded
        since DELETED_BEFORE before the plan). Such a build re-used the old cache, which
        probably still holds packages built for the old system."""
        with self.db.session() as session:
            row = session.get(Rebuild, rebuild_id)
            if row is None:
                return []
            keys: dict[str, None] = {}
            for runtimes, runtime in session.execute(
                select(RebuildItem.runtimes, RebuildItem.runtime).where(
                    RebuildItem.rebuild_id == rebuild_id, RebuildItem.verified == "fails"
                )
            ).all():
                for key in item_runtime_keys(runtimes, runtime):
                    keys.setdefault(key, None)
            if not keys:
                return []
            since = row.created_at - DELETED_BEFORE
            deleted = {
                (language.lower(), version, image)
                for language, version, image in session.execute(
                    select(
                        DeletionTarget.language, DeletionTarget.version, DeletionTarget.image_name
                    ).where(DeletionTarget.state == "succeeded", DeletionTarget.updated_at >= since)
                ).all()
            }
        caches = []
        for key in keys:
            found = _LABEL.match(key)
            if found is None:
                continue
            cache = RuntimeCache(found[1], found[2], found[3])
            if (cache.language.lower(), cache.version, cache.image_name) not in deleted:
                caches.append(cache)
        return caches

    def mark_reported(self, item_ids: Iterable[int]) -> None:
        ids = list(item_ids)
        if not ids:
            return
        with self.db.session() as session:
            session.execute(
                update(RebuildItem).where(RebuildItem.id.in_(ids)).values(notified=True)
            )

    def items(
        self, rebuild_id: int, *, state: str | None = None, wave: int | None = None
    ) -> list[ItemView]:
        """Items of a rebuild in plan order (the warm-up wave, tests; not for 10,000 rows)."""
        with self.db.session() as session:
            query = select(RebuildItem).where(RebuildItem.rebuild_id == rebuild_id)
            if state is not None:
                query = query.where(RebuildItem.state == state)
            if wave is not None:
                query = query.where(RebuildItem.wave == wave)
            rows = session.scalars(query.order_by(RebuildItem.wave, RebuildItem.position)).all()
            return [_item_view(row) for row in rows]


def _progress(row: Rebuild, counts: dict[str, int], warmup: dict[str, int]) -> Progress:
    return Progress(
        rebuild_id=row.id,
        state=row.state,
        description=row.description,
        requested_by=row.requested_by,
        started_by=row.started_by,
        channel=row.channel,
        thread_ts=row.thread_ts,
        parallelism=row.parallelism,
        total=row.total,
        skipped=row.skipped,
        counts=counts,
        warmup_total=sum(n for s, n in warmup.items() if s != "skipped"),
        warmup_open=sum(warmup.get(s, 0) for s in OPEN_ITEM_STATES),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        flags=dict(row.progress or {}),
        server=row.server,
        instance_id=row.driver,
        lease_token=row.lease_token,
    )


def _item_view(row: RebuildItem) -> ItemView:
    return ItemView(
        id=row.id,
        guid=row.guid,
        title=row.title,
        app_mode=row.app_mode,
        runtime=row.runtime,
        wave=row.wave,
        state=row.state,
        error=row.error,
        dashboard_url=row.dashboard_url,
        task_id=row.task_id,
        resent=row.resent or 0,
        owner_guid=row.owner_guid,
        verified=row.verified,
        verify_error=row.verify_error,
        runtimes=item_runtime_keys(row.runtimes, row.runtime),
    )
