"""Health checks in the database (`health_checks`, `health_items`), so that a check runs once
across replicas and survives the death of the process probing it.

The lease is the check row's `driver`, `heartbeat_at` (the database's clock) and `lease_token`,
as a rebuild's (`bot.services.rebuilds.leases`). Every write of the holder is fenced: it checks
the token on the check row, locked FOR SHARE, in the same transaction, and raises `LeaseLost`
when the lease moved, so a process that lost its lease writes nothing more.

Items: a row is claimed (no verdict) before the probe's request leaves, with `before` (the job
keys Connect listed just before it), and gets its verdict after; so the next holder can tell a
probe that reached Connect from one that did not. (The listing before the claim is read-only.)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.connect import ContentItem
from bot.services.health.outcomes import (
    UNVISITED,
    CouldNotCheck,
    Counts,
    FailsToStart,
    ItemHealth,
    Skipped,
    Starts,
    Verdict,
)
from bot.store import Database, HealthCheck, HealthItem
from bot.store.dbtime import DbClock, WallClock
from bot.store.models import utcnow

RUNNING = "running"
DONE = "done"
FAILED = "failed"  # the check could not run to its end (Connect unreachable, ...)
FINISHED = (DONE, FAILED)


class LeaseLost(Exception):
    """Another process holds the check now: this one stops and writes nothing more."""


@dataclass(frozen=True, slots=True)
class CheckRow:
    id: int
    server: str | None
    requested_by: str
    channel: str
    card_ts: str | None
    state: str
    description: str
    criteria: dict[str, Any] | None
    render: bool
    total: int | None
    counts: Counts
    summary: dict[str, Any]
    error: str | None
    reported: bool
    driver: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True, slots=True)
class Claims:
    """What earlier holders of a check left: items with a verdict, and items claimed without
    one (guid -> the job keys listed before its request; None: the request never left)."""

    done: frozenset[str]
    open: dict[str, frozenset[str] | None]


def _row(check: HealthCheck) -> CheckRow:
    return CheckRow(
        id=check.id,
        server=check.server,
        requested_by=check.requested_by,
        channel=check.channel,
        card_ts=check.card_ts,
        state=check.state,
        description=check.description,
        criteria=check.criteria,
        render=check.render,
        total=check.total,
        counts=Counts(
            check.starts,
            check.fails,
            check.unchecked,
            check.skipped,
            unvisited=int((check.summary or {}).get("unvisited") or 0),
        ),
        summary=check.summary or {},
        error=check.error,
        reported=check.reported,
        driver=check.driver,
        created_at=check.created_at,
        finished_at=check.finished_at,
    )


class HealthStore:
    def __init__(self, db: Database, wall_clock: WallClock = utcnow) -> None:
        self.db = db
        self.wall_clock = wall_clock
        self.db_clock = DbClock(db, wall_clock)

    # ---- checks --------------------------------------------------------------------------

    def create(
        self,
        *,
        server: str,
        requested_by: str,
        channel: str,
        card_ts: str | None,
        description: str,
        criteria: dict[str, Any],
        render: bool,
    ) -> int:
        with self.db.session() as session:
            check = HealthCheck(
                server=server,
                requested_by=requested_by,
                channel=channel,
                card_ts=card_ts,
                state=RUNNING,
                description=description,
                criteria=criteria,
                render=render,
                starts=0,
                fails=0,
                unchecked=0,
                skipped=0,
                created_at=self.wall_clock(),
            )
            session.add(check)
            session.flush()
            return check.id

    def get(self, check_id: int) -> CheckRow | None:
        with self.db.session() as session:
            check = session.get(HealthCheck, check_id)
            return None if check is None else _row(check)

    def unfinished(self) -> list[tuple[int, str, bool, str | None]]:
        """(id, state, reported, driver) of checks running, or ended and not yet reported."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    HealthCheck.id, HealthCheck.state, HealthCheck.reported, HealthCheck.driver
                ).where((HealthCheck.state == RUNNING) | HealthCheck.reported.is_(False))
            ).all()
        return [(row.id, row.state, row.reported, row.driver) for row in rows]

    def history(self, limit: int = 10, server: str | None = None) -> list[CheckRow]:
        with self.db.session() as session:
            query = select(HealthCheck).order_by(HealthCheck.id.desc()).limit(limit)
            if server is not None:
                query = query.where(HealthCheck.server == server)
            return [_row(check) for check in session.scalars(query)]

    def latest_per_server(self) -> list[CheckRow]:
        """The newest finished check of each server, by server name."""
        with self.db.session() as session:
            newest = (
                select(func.max(HealthCheck.id))
                .where(HealthCheck.state == DONE)
                .group_by(HealthCheck.server)
            )
            checks = session.scalars(
                select(HealthCheck).where(HealthCheck.id.in_(newest)).order_by(HealthCheck.server)
            )
            return [_row(check) for check in checks]

    # ---- lease ---------------------------------------------------------------------------

    def acquire(
        self,
        check_id: int,
        instance_id: str,
        *,
        is_alive: Callable[[str], bool],
        ttl_seconds: float,
        finished: bool = False,
    ) -> str | None:
        """Take the lease when it is free, ours, or stale (holder dead, or no heartbeat for
        `ttl_seconds` by the database's clock); the new token, or None. `finished`: a check
        that ended and is not reported (its card is updated by the new holder)."""
        with self.db.session() as session:
            columns = (
                HealthCheck.state,
                HealthCheck.reported,
                HealthCheck.driver,
                HealthCheck.heartbeat_at,
                self.db_clock.sql().label("now"),
            )
            for lock in (False, True):
                query = select(*columns).where(HealthCheck.id == check_id)
                row = session.execute(query.with_for_update() if lock else query).first()
                if row is None:
                    return None
                wanted = (
                    (row.state in FINISHED and not row.reported)
                    if finished
                    else (row.state == RUNNING)
                )
                if not wanted or not _free(row, instance_id, is_alive, ttl_seconds):
                    return None
            token = secrets.token_hex(16)
            session.execute(
                update(HealthCheck)
                .where(HealthCheck.id == check_id)
                .values(driver=instance_id, lease_token=token, heartbeat_at=self.db_clock.sql())
            )
            return token

    def renew(self, check_id: int, token: str) -> bool:
        with self.db.session() as session:
            won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(HealthCheck)
                .where(HealthCheck.id == check_id, HealthCheck.lease_token == token)
                .values(heartbeat_at=self.db_clock.sql())
            ).rowcount
        return bool(won)

    def release(
        self, check_id: int, token: str | None = None, *, instance_id: str | None = None
    ) -> None:
        """Give the lease back (by token, or every lease of instance `instance_id`)."""
        with self.db.session() as session:
            query = update(HealthCheck).values(driver=None, lease_token=None, heartbeat_at=None)
            if token is not None:
                query = query.where(HealthCheck.id == check_id, HealthCheck.lease_token == token)
            else:
                query = query.where(HealthCheck.driver == instance_id)
            session.execute(query)

    def release_all(self, instance_id: str) -> None:
        self.release(0, instance_id=instance_id)

    def _fence(self, session: Session, check_id: int, token: str) -> None:
        held = session.scalar(
            select(HealthCheck.id)
            .where(HealthCheck.id == check_id, HealthCheck.lease_token == token)
            .with_for_update(read=True)
        )
        if held is None:
            raise LeaseLost(f"health check {check_id}: the lease moved")

    # ---- the holder's writes (fenced) ----------------------------------------------------

    def set_total(self, check_id: int, token: str, total: int) -> None:
        with self.db.session() as session:
            self._fence(session, check_id, token)
            session.execute(
                update(HealthCheck).where(HealthCheck.id == check_id).values(total=total)
            )

    def claims(self, check_id: int) -> Claims:
        with self.db.session() as session:
            rows = session.execute(
                select(HealthItem.guid, HealthItem.verdict, HealthItem.detail).where(
                    HealthItem.check_id == check_id
                )
            ).all()
        done = frozenset(row.guid for row in rows if row.verdict is not None)
        pending: dict[str, frozenset[str] | None] = {}
        for row in rows:
            if row.verdict is None:
                before = (row.detail or {}).get("before")
                pending[row.guid] = frozenset(before) if isinstance(before, list) else None
        return Claims(done, pending)

    def claim(self, check_id: int, token: str, item: ContentItem, before: Iterable[str]) -> None:
        """Record that `item` is being requested, with the job keys Connect listed just before
        (one transaction, before the request leaves; a retry's listing replaces them)."""
        detail = {"item": _item_json(item), "before": sorted(before)}
        with self.db.session() as session:
            self._fence(session, check_id, token)
            row = session.scalar(
                select(HealthItem).where(
                    HealthItem.check_id == check_id, HealthItem.guid == item.guid
                )
            )
            if row is None:
                session.add(
                    HealthItem(
                        check_id=check_id,
                        guid=item.guid,
                        title=item.display_title,
                        runtime=_runtime(item),
                        verdict=None,
                        reason="",
                        attempts=0,
                        detail=detail,
                        claimed_by=token,
                        claimed_at=self.wall_clock(),
                    )
                )
            elif row.verdict is None:
                row.detail = detail
                row.claimed_by = token
                row.claimed_at = self.wall_clock()

    def record(self, check_id: int, token: str, results: Sequence[ItemHealth]) -> None:
        """The verdicts of `results` (an item without a row gets one)."""
        if not results:
            return
        now = self.wall_clock()
        with self.db.session() as session:
            self._fence(session, check_id, token)
            guids = [result.guid for result in results]
            existing = {
                row.guid: row
                for row in session.scalars(
                    select(HealthItem).where(
                        HealthItem.check_id == check_id, HealthItem.guid.in_(guids)
                    )
                )
            }
            for result in results:
                kind, reason, extra = _verdict_json(result.verdict)
                detail = {"item": _item_json(result.item), "packages": result.packages, **extra}
                row = existing.get(result.guid)
                if row is None:
                    row = HealthItem(check_id=check_id, guid=result.guid)
                    session.add(row)
                elif row.detail and "before" in row.detail:
                    detail["before"] = row.detail["before"]
                row.title = result.title
                row.runtime = _runtime(result.item)
                row.verdict = kind
                row.reason = reason
                row.attempts = result.attempts
                row.detail = detail
                row.finished_at = now

    def finish(
        self,
        check_id: int,
        token: str,
        *,
        counts: Counts | None,
        summary: dict[str, Any],
        error: str | None = None,
    ) -> None:
        with self.db.session() as session:
            self._fence(session, check_id, token)
            values: dict[str, Any] = {
                "state": DONE if error is None else FAILED,
                "summary": summary,
                "error": error,
                "finished_at": self.wall_clock(),
                "heartbeat_at": self.db_clock.sql(),
            }
            if counts is not None:
                values.update(
                    starts=counts.starts,
                    fails=counts.fails,
                    unchecked=counts.unchecked,
                    skipped=counts.skipped,
                    total=counts.total,
                )
            session.execute(update(HealthCheck).where(HealthCheck.id == check_id).values(values))

    def set_card(self, check_id: int, ts: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(HealthCheck).where(HealthCheck.id == check_id).values(card_ts=ts)
            )

    def mark_summary(self, check_id: int, **flags: Any) -> None:
        """Flags kept with the final report (`thread_posted`)."""
        with self.db.session() as session:
            check = session.get(HealthCheck, check_id)
            if check is not None:
                check.summary = {**(check.summary or {}), **flags}

    def reported_final(self, check_id: int, instance_id: str) -> None:
        """The final card is shown: nobody needs the lease any more."""
        with self.db.session() as session:
            session.execute(
                update(HealthCheck)
                .where(HealthCheck.id == check_id, HealthCheck.driver == instance_id)
                .values(reported=True, driver=None, lease_token=None, heartbeat_at=None)
            )

    # ---- reading -------------------------------------------------------------------------

    def progress(self, check_id: int) -> tuple[Counts, int]:
        """The verdicts so far, and how many items are being probed."""
        with self.db.session() as session:
            rows = dict(
                session.execute(
                    select(HealthItem.verdict, func.count())
                    .where(HealthItem.check_id == check_id)
                    .group_by(HealthItem.verdict)
                ).all()
            )
            unvisited = session.scalar(
                select(func.count()).where(
                    HealthItem.check_id == check_id,
                    HealthItem.verdict == "skipped",
                    HealthItem.reason == UNVISITED.reason,
                )
            )
        counts = Counts(
            rows.get("starts", 0),
            rows.get("fails", 0),
            rows.get("unchecked", 0),
            rows.get("skipped", 0),
            unvisited=unvisited or 0,
        )
        return counts, rows.get(None, 0)

    def results(self, check_id: int) -> list[ItemHealth]:
        """Every item with a verdict, as the report shows it."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    HealthItem.verdict, HealthItem.reason, HealthItem.attempts, HealthItem.detail
                )
                .where(HealthItem.check_id == check_id, HealthItem.verdict.is_not(None))
                .order_by(HealthItem.id)
            ).all()
        found = []
        for row in rows:
            detail = row.detail or {}
            item = ContentItem.from_json(detail.get("item") or {"guid": "?"})
            packages = detail.get("packages")
            verdict = _verdict(row.verdict, row.reason, detail)
            found.append(
                ItemHealth(
                    item,
                    verdict,
                    attempts=row.attempts,
                    packages=tuple(packages) if isinstance(packages, list) else None,
                )
            )
        return found

    def probes_of(self, check_id: int) -> dict[str, int]:
        """guid -> attempts, of the items probed (for tests and the bench)."""
        with self.db.session() as session:
            rows = session.execute(
                select(HealthItem.guid, HealthItem.attempts).where(
                    HealthItem.check_id == check_id, HealthItem.attempts > 0
                )
            ).all()
        return {row.guid: row.attempts for row in rows}


def _free(row: Any, instance_id: str, is_alive: Callable[[str], bool], ttl_seconds: float) -> bool:
    holder = row.driver
    if holder is None or holder == instance_id:
        return True
    if row.heartbeat_at is None or (row.now - row.heartbeat_at).total_seconds() > ttl_seconds:
        return True
    return not is_alive(holder)


def _runtime(item: ContentItem) -> str:
    return ", ".join(runtime.label for runtime in item.runtimes)[:255]


def _item_json(item: ContentItem) -> dict[str, Any]:
    """What a report shows of an item, and what its grouping needs."""
    return {
        "guid": item.guid,
        "name": item.name,
        "title": item.title,
        "app_mode": item.app_mode,
        "bundle_id": item.bundle_id,
        "r_version": item.r_version,
        "py_version": item.py_version,
        "image_name": item.image_name,
        "dashboard_url": item.dashboard_url,
        "owner_guid": item.owner_guid,
    }


def _verdict_json(verdict: Verdict) -> tuple[str, str, dict[str, Any]]:
    if isinstance(verdict, Starts):
        return "starts", verdict.how, {}
    if isinstance(verdict, FailsToStart):
        extra = {"stage": verdict.stage, "summary": verdict.summary, "job_key": verdict.job_key}
        return "fails", verdict.reason, extra
    if isinstance(verdict, CouldNotCheck):
        return "unchecked", verdict.reason, {}
    return "skipped", verdict.reason, {}


def _verdict(kind: str, reason: str, detail: dict[str, Any]) -> Verdict:
    if kind == "starts":
        return Starts(reason or "started")
    if kind == "fails":
        stage = detail.get("stage")
        return FailsToStart(
            reason,
            stage=stage if stage in ("start", "render", "runtime") else "start",
            summary=str(detail.get("summary") or ""),
            job_key=detail.get("job_key"),
        )
    if kind == "unchecked":
        return CouldNotCheck(reason)
    return Skipped(reason)
