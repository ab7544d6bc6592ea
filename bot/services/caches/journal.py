"""The journal of confirmed deletions: what was about to be sent, sent, and answered.

Each row moves forward only: planned -> sent -> running (Connect's task id) -> succeeded or
failed. A row is written before its DELETE leaves and after the answer, so after a crash the
journal says what is known and reconciliation can finish the job without deleting twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from bot.connect import RuntimeCache
from bot.store import Database, DeletionTarget, utcnow

PLANNED, SENT, RUNNING, SUCCEEDED, FAILED = "planned", "sent", "running", "succeeded", "failed"
FINAL = (SUCCEEDED, FAILED)


@dataclass(frozen=True, slots=True)
class JournalRow:
    id: int
    position: int
    cache: RuntimeCache
    state: str
    task_id: str | None
    detail: str
    audit_id: int | None

    @property
    def final(self) -> bool:
        return self.state in FINAL


class JournalStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def plan(self, pending_id: str, caches: Sequence[RuntimeCache]) -> None:
        """Write the targets of a request (all `planned`) when it is created."""
        with self._db.session() as session:
            for position, cache in enumerate(caches):
                session.add(
                    DeletionTarget(
                        pending_id=pending_id,
                        position=position,
                        language=cache.language,
                        version=cache.version,
                        image_name=cache.image_name,
                        state=PLANNED,
                        detail="",
                        updated_at=utcnow(),
                    )
                )

    def rows(self, pending_id: str) -> list[JournalRow]:
        with self._db.session() as session:
            found = session.scalars(
                select(DeletionTarget)
                .where(DeletionTarget.pending_id == pending_id)
                .order_by(DeletionTarget.position)
            ).all()
            return [_row(target) for target in found]

    def sending(self, row_id: int, audit_id: int) -> bool:
        """planned -> sent, just before the DELETE leaves; False if it was not `planned` (a
        second process got there first: never send twice)."""
        return self._move(row_id, (PLANNED,), state=SENT, audit_id=audit_id)

    def running(self, row_id: int, task_id: str) -> None:
        self._move(row_id, (SENT,), state=RUNNING, task_id=task_id)

    def finish(self, row_id: int, *, succeeded: bool, detail: str) -> None:
        state = SUCCEEDED if succeeded else FAILED
        self._move(row_id, (PLANNED, SENT, RUNNING), state=state, detail=detail[:4000])

    def _move(self, row_id: int, sources: tuple[str, ...], **values: object) -> bool:
        with self._db.session() as session:
            moved = session.execute(
                update(DeletionTarget)
                .where(DeletionTarget.id == row_id, DeletionTarget.state.in_(sources))
                .values(updated_at=utcnow(), **values)
            ).rowcount  # type: ignore[attr-defined]  # SQLAlchemy types UPDATE results loosely
        return bool(moved)


def _row(target: DeletionTarget) -> JournalRow:
    return JournalRow(
        id=target.id,
        position=target.position,
        cache=RuntimeCache(target.language, target.version, target.image_name),
        state=target.state,
        task_id=target.task_id,
        detail=target.detail,
        audit_id=target.audit_id,
    )
