"""Single-use, expiring confirmations for destructive acts, stored server-side."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from bot.store import Database, PendingAction, utcnow


class Claim(StrEnum):
    """Why a click on Confirm/Cancel did or did not take the pending action."""

    OK = "ok"
    MISSING = "missing"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    kind: str
    state: str
    requested_by: str
    channel: str
    message_ts: str | None
    payload: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    result: dict[str, Any] | None = None
    decided_at: datetime | None = None
    instance_id: str | None = None  # the process carrying the act out (the `holder` column)

    @property
    def expired(self) -> bool:
        return utcnow() >= self.expires_at


class PendingStore:
    def __init__(
        self, db: Database, ttl_seconds: int, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self.ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    def create(
        self, *, kind: str, requested_by: str, channel: str, payload: dict[str, Any]
    ) -> Pending:
        now = self._clock()
        row = PendingAction(
            id=secrets.token_urlsafe(12),
            kind=kind,
            state="pending",
            requested_by=requested_by,
            channel=channel,
            payload=payload,
            created_at=now,
            expires_at=now + self.ttl,
        )
        with self._db.session() as session:
            session.add(row)
        return _to_pending(row)

    def get(self, pending_id: str) -> Pending | None:
        with self._db.session() as session:
            row = session.get(PendingAction, pending_id)
            return _to_pending(row) if row else None

    def attach_message(self, pending_id: str, message_ts: str) -> None:
        with self._db.session() as session:
            session.execute(
                update(PendingAction)
                .where(PendingAction.id == pending_id)
                .values(message_ts=message_ts)
            )

    def claim(
        self, pending_id: str, *, user_id: str, new_state: str, instance_id: str | None = None
    ) -> tuple[Claim, Pending | None]:
        """Atomically move pending -> new_state. Exactly one of many concurrent clicks wins.

        The conditional UPDATE is the lock: the database serialises it on every backend.
        """
        now = self._clock()
        with self._db.session() as session:
            result = session.execute(
                update(PendingAction)
                .where(
                    PendingAction.id == pending_id,
                    PendingAction.state == "pending",
                    PendingAction.expires_at > now,
                )
                .values(state=new_state, decided_by=user_id, decided_at=now, holder=instance_id)
                .execution_options(synchronize_session=False)
            )
            won = result.rowcount == 1  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
        current = self.get(pending_id)
        if won:
            return Claim.OK, current
        if current is None:
            return Claim.MISSING, None
        if current.state == "pending":
            self._expire(pending_id)
            return Claim.EXPIRED, current
        if current.state == "expired":
            return Claim.EXPIRED, current
        return Claim.USED, current

    def orphans(
        self,
        kind: str,
        *,
        is_alive: Callable[[str | None], bool],
        stale_after: timedelta,
        state: str = "confirmed",
    ) -> list[Pending]:
        """Requests claimed (`state`) whose act never finished and whose holder process is
        gone, or was claimed longer ago than `stale_after` (a process that hangs)."""
        cutoff = self._clock() - stale_after
        with self._db.session() as session:
            rows = session.scalars(
                select(PendingAction).where(
                    PendingAction.kind == kind, PendingAction.state == state
                )
            ).all()
            found = [_to_pending(row) for row in rows]
        return [
            p
            for p in found
            if not is_alive(p.instance_id) or (p.decided_at or p.created_at) < cutoff
        ]

    def take_over(self, pending: Pending, instance_id: str) -> Pending | None:
        """Make `instance_id` carry out an orphan, unless another process just did."""
        with self._db.session() as session:
            won = session.execute(
                update(PendingAction)
                .where(
                    PendingAction.id == pending.id,
                    PendingAction.state == pending.state,
                    PendingAction.holder.is_(None)
                    if pending.instance_id is None
                    else PendingAction.holder == pending.instance_id,
                )
                .values(holder=instance_id)
            ).rowcount  # type: ignore[attr-defined]  # SQLAlchemy types UPDATE results loosely
        return self.get(pending.id) if won else None

    def finish(self, pending_id: str, *, state: str, result: dict[str, Any]) -> None:
        with self._db.session() as session:
            session.execute(
                update(PendingAction)
                .where(PendingAction.id == pending_id)
                .values(state=state, result=result)
            )

    def expire_overdue(self, kind: str) -> list[Pending]:
        """Mark every overdue pending action of `kind` expired; returns those this call expired."""
        now = self._clock()
        with self._db.session() as session:
            ids = session.scalars(
                select(PendingAction.id).where(
                    PendingAction.kind == kind,
                    PendingAction.state == "pending",
                    PendingAction.expires_at <= now,
                )
            ).all()
        expired: list[Pending] = []
        for pending_id in ids:
            with self._db.session() as session:
                won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                    update(PendingAction)
                    .where(PendingAction.id == pending_id, PendingAction.state == "pending")
                    .values(state="expired")
                ).rowcount
            row = self.get(pending_id) if won else None
            if row is not None:
                expired.append(row)
        return expired

    def _expire(self, pending_id: str) -> None:
        with self._db.session() as session:
            session.execute(
                update(PendingAction)
                .where(PendingAction.id == pending_id, PendingAction.state == "pending")
                .values(state="expired")
            )


def _to_pending(row: PendingAction) -> Pending:
    return Pending(
        id=row.id,
        kind=row.kind,
        state=row.state,
        requested_by=row.requested_by,
        channel=row.channel,
        message_ts=row.message_ts,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        result=dict(row.result) if row.result else None,
        decided_at=row.decided_at,
        instance_id=row.holder,
    )
