"""Rebuild plans and their queries: what to build, in which order, and how far it has got.

Planning streams Connect's content list into `rebuild_items` rows in batches, so a 10,000-item
plan never holds a list of item dicts; the order and the counts the cards show are computed
by SQL over those rows. The driver lives in `bot.services.rebuild_engine`.

Order (the `wave` column, then Connect's order, newest deployment first, within a wave):
0. warm-up: one item per distinct runtime, an interactive one when the runtime has any, so each
   runtime cache is rebuilt once before the parallel waves (rsconnect's docs advise this);
1. interactive apps and APIs (visitors wait on them first);
2. rendered documents and static content.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, text, update

from bot.connect import ConnectClient, ContentFilter, ContentItem, RuntimeCache
from bot.store import Database, Rebuild, RebuildItem, utcnow

if TYPE_CHECKING:
    from bot.services.rebuild_engine import RebuildEngine

log = logging.getLogger(__name__)

START_LOCK = 0x636F6E6E  # advisory lock id for Starts ("conn")
DEFAULT_PARALLELISM = 3  # rsconnect's docs: start at 2-3
MAX_PARALLELISM = 16
WARMUP, INTERACTIVE, RENDERED = 0, 1, 2
ACTIVE = ("running", "cancelling")
FINISHED = ("done", "cancelled")
OPEN_ITEM_STATES = ("queued", "building")
INSERT_BATCH = 500


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
    skipped_titles: list[str]


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

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def done_items(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None until something finished."""
        elapsed = self.elapsed
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


@dataclass(frozen=True, slots=True)
class CancelResult:
    ok: bool
    state: str
    building: int = 0
    queued: int = 0


def runtime_label(item: ContentItem) -> str:
    return " + ".join(r.label for r in item.runtimes)


def wave_of(item: ContentItem) -> int:
    return INTERACTIVE if item.interactive else RENDERED


def affected_by(item: ContentItem, caches: Iterable[RuntimeCache]) -> bool:
    """True when one of the item's runtimes is one of `caches` (language, version and image)."""
    return any(
        cache.matches(runtime.language, runtime.version, runtime.image_name)
        for runtime in item.runtimes
        for cache in caches
    )


def clamp_parallelism(value: int | None) -> int:
    return max(1, min(MAX_PARALLELISM, value or DEFAULT_PARALLELISM))


class RebuildService:
    def __init__(
        self, db: Database, connect: ConnectClient, engine: RebuildEngine | None = None
    ) -> None:
        self.db = db
        self.connect = connect
        self.engine = engine
        self.team_url: str | None = None  # Slack workspace URL, for links to threads
        self._flags_lock = threading.Lock()

    # ---- planning ------------------------------------------------------------------------

    def plan(
        self,
        *,
        requested_by: str,
        channel: str,
        description: str,
        parallelism: int | None = None,
        content_filter: ContentFilter | None = None,
        caches: Iterable[RuntimeCache] | None = None,
    ) -> PlanSummary:
        """Persist a plan (state `planned`) of the published items selected by the filter, or
        affected by `caches`. Raises ConnectError when Connect cannot list its content."""
        selected_caches = tuple(caches) if caches is not None else None
        with self.db.session() as session:
            row = Rebuild(
                state="planned",
                requested_by=requested_by,
                channel=channel,
                parallelism=clamp_parallelism(parallelism),
                description=description,
                progress={},
            )
            session.add(row)
            session.flush()
            rebuild_id = row.id
        try:
            items = self._selected(content_filter, selected_caches)
            self._insert_items(rebuild_id, items)
            with self.db.session() as session:
                _skip_duplicates(session, rebuild_id)
                _choose_warmup(session, rebuild_id)
                _store_totals(session, rebuild_id)
        except BaseException:
            self._drop(rebuild_id)
            raise
        return self.summary(rebuild_id)

    def _selected(
        self, content_filter: ContentFilter | None, caches: tuple[RuntimeCache, ...] | None
    ) -> Iterator[ContentItem]:
        for item in self.connect.content.iter():
            if not item.published:
                continue
            if content_filter is not None and not content_filter.matches(item):
                continue
            if caches is not None and not affected_by(item, caches):
                continue
            yield item

    def _insert_items(self, rebuild_id: int, items: Iterable[ContentItem]) -> None:
        batch: list[dict[str, Any]] = []
        for position, item in enumerate(items):
            batch.append(
                {
                    "rebuild_id": rebuild_id,
                    "position": position,
                    "wave": wave_of(item),
                    "guid": item.guid,
                    "title": item.display_title[:500],
                    "app_mode": item.app_mode[:48],
                    "runtime": runtime_label(item)[:255],
                    "bundle_id": item.bundle_id,
                    "dashboard_url": item.dashboard_url,
                    "state": "queued",
                    "attempts": 0,
                    "notified": False,
                }
            )
            if len(batch) >= INSERT_BATCH:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        with self.db.session() as session:
            session.execute(insert(RebuildItem), batch)

    def _drop(self, rebuild_id: int) -> None:
        with self.db.session() as session:
            session.execute(delete(RebuildItem).where(RebuildItem.rebuild_id == rebuild_id))
            session.execute(delete(Rebuild).where(Rebuild.id == rebuild_id))

    def attach_message(self, rebuild_id: int, ts: str) -> None:
        """The plan card is also the progress message: its thread holds the rebuild's replies."""
        with self.db.session() as session:
            session.execute(update(Rebuild).where(Rebuild.id == rebuild_id).values(thread_ts=ts))

    # ---- state changes -------------------------------------------------------------------

    def start(self, rebuild_id: int, *, started_by: str) -> bool:
        """planned -> running, re-checking duplicates against rebuilds started meanwhile.

        One transaction, serialised with every other Start (SQLite locks the file; PostgreSQL
        takes a transaction-level advisory lock), so of two Starts over the same items the
        second skips what the first queued.
        """
        with self.db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": START_LOCK})
            won = session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.state == "planned")
                .values(state="running", started_by=started_by, started_at=utcnow())
            ).rowcount
            if not won:
                return False
            if _skip_duplicates(session, rebuild_id):
                _choose_warmup(session, rebuild_id)
                _store_totals(session, rebuild_id)
        if self.engine is not None:
            self.engine.launch(rebuild_id)
        return True

    def close_plan(self, rebuild_id: int, state: str) -> bool:
        """A plan nobody started: `discarded` or `expired`."""
        with self.db.session() as session:
            return bool(
                session.execute(
                    update(Rebuild)
                    .where(Rebuild.id == rebuild_id, Rebuild.state == "planned")
                    .values(state=state, finished_at=utcnow())
                ).rowcount
            )

    def cancel(self, rebuild_id: int, *, by: str) -> CancelResult:
        """running -> cancelling; the driver stops dispatching and lets running builds finish."""
        with self._flags_lock, self.db.session() as session:
            row = session.get(Rebuild, rebuild_id)
            if row is None:
                raise RebuildNotFound(rebuild_id)
            if row.state != "running":
                return CancelResult(False, row.state)
            counts = _state_counts(session, rebuild_id)
            flags = {
                **(row.progress or {}),
                "cancelled_by": by,
                "running_at_cancel": counts.get("building", 0),
            }
            won = session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.state == "running")
                .values(state="cancelling", progress=flags)
            ).rowcount
            if not won:
                return CancelResult(False, "cancelling")
        if self.engine is not None:
            self.engine.cancel(rebuild_id)
        return CancelResult(True, "cancelling", counts.get("building", 0), counts.get("queued", 0))

    def set_flags(self, rebuild_id: int, **flags: Any) -> None:
        """Merge into the `progress` JSON (what the Slack thread has already been told)."""
        with self._flags_lock, self.db.session() as session:
            current = session.scalar(select(Rebuild.progress).where(Rebuild.id == rebuild_id))
            merged = {**(current or {}), **flags}
            session.execute(update(Rebuild).where(Rebuild.id == rebuild_id).values(progress=merged))

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
            skipped_titles = session.scalars(
                select(RebuildItem.title)
                .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "skipped")
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
            )

    def progress(self, rebuild_id: int) -> Progress | None:
        with self.db.session() as session:
            row = session.get(Rebuild, rebuild_id)
            if row is None:
                return None
            counts = _state_counts(session, rebuild_id)
            warmup = dict(
                session.execute(
                    select(RebuildItem.state, func.count())
                    .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.wave == WARMUP)
                    .group_by(RebuildItem.state)
                ).all()
            )
            return _progress(row, counts, warmup)

    def latest(self, *, active_only: bool = False) -> Progress | None:
        with self.db.session() as session:
            query = select(Rebuild.id).where(Rebuild.state.not_in(("planned",)))
            if active_only:
                query = query.where(Rebuild.state.in_(ACTIVE))
            rebuild_id = session.scalar(query.order_by(Rebuild.id.desc()).limit(1))
        return self.progress(rebuild_id) if rebuild_id is not None else None

    def history(self, limit: int = 10) -> list[Progress]:
        with self.db.session() as session:
            rows = session.scalars(select(Rebuild).order_by(Rebuild.id.desc()).limit(limit)).all()
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

    def unreported_ids(self) -> list[int]:
        """Finished rebuilds whose final summary was not posted (the bot died in between)."""
        with self.db.session() as session:
            rows = session.execute(
                select(Rebuild.id, Rebuild.progress).where(
                    Rebuild.state.in_(FINISHED), Rebuild.started_at.is_not(None)
                )
            ).all()
        return [rid for rid, flags in rows if not (flags or {}).get("final_reported")]

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


# ---- SQL helpers (inside a caller's transaction) ---------------------------------------------


def _skip_duplicates(session: Any, rebuild_id: int) -> int:
    """Mark `skipped` the queued items another active rebuild is still going to build."""
    others = select(Rebuild.id).where(Rebuild.state.in_(ACTIVE), Rebuild.id != rebuild_id)
    busy = select(RebuildItem.guid).where(
        RebuildItem.rebuild_id.in_(others), RebuildItem.state.in_(OPEN_ITEM_STATES)
    )
    result = session.execute(
        update(RebuildItem)
        .where(
            RebuildItem.rebuild_id == rebuild_id,
            RebuildItem.state == "queued",
            RebuildItem.guid.in_(busy),
        )
        .values(state="skipped", wave=RENDERED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def _choose_warmup(session: Any, rebuild_id: int) -> None:
    """Promote to wave 0 the first queued item of each runtime that has no warm-up item yet,
    preferring an interactive one."""
    mine = (RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "queued")
    warmed = set(
        session.scalars(
            select(RebuildItem.runtime).where(*mine, RebuildItem.wave == WARMUP).distinct()
        ).all()
    )
    chosen: dict[str, int] = {}
    for wave in (INTERACTIVE, RENDERED):
        for runtime, position in session.execute(
            select(RebuildItem.runtime, func.min(RebuildItem.position))
            .where(*mine, RebuildItem.wave == wave, RebuildItem.runtime != "")
            .group_by(RebuildItem.runtime)
        ).all():
            if runtime not in warmed and runtime not in chosen:
                chosen[runtime] = position
    if chosen:
        session.execute(
            update(RebuildItem)
            .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.position.in_(chosen.values()))
            .values(wave=WARMUP)
            .execution_options(synchronize_session=False)
        )


def _store_totals(session: Any, rebuild_id: int) -> None:
    counts = _state_counts(session, rebuild_id)
    skipped = counts.get("skipped", 0)
    session.execute(
        update(Rebuild)
        .where(Rebuild.id == rebuild_id)
        .values(total=sum(counts.values()) - skipped, skipped=skipped)
    )


def _state_counts(session: Any, rebuild_id: int) -> dict[str, int]:
    rows = session.execute(
        select(RebuildItem.state, func.count())
        .where(RebuildItem.rebuild_id == rebuild_id)
        .group_by(RebuildItem.state)
    ).all()
    return {state: int(n) for state, n in rows}


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
    )
