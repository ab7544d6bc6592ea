"""The audit log of destructive acts and refusals.

Records are never deleted. A destructive act is recorded before it happens (`begin`, outcome
`in_progress`) and completed once with its outcome (`complete`), so a crash in between leaves a
record of the attempt, which reconciliation completes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from bot.store import AuditEntry, Database

log = logging.getLogger(__name__)

STARTED = "in_progress"  # a destructive act recorded before it happens, not yet completed


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    outcome: str
    target: str
    channel: str | None
    reference: str | None
    detail: str
    server: str | None = None


class AuditStore:
    def __init__(self, db: Database, notify: Callable[[AuditRecord], None] | None = None) -> None:
        self._db = db
        self.notify = notify

    def record(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        target: str = "",
        channel: str | None = None,
        reference: str | None = None,
        detail: str = "",
        server: str | None = None,
    ) -> AuditRecord:
        with self._db.session() as session:
            entry = AuditEntry(
                actor=actor,
                action=action,
                outcome=outcome,
                target=target,
                channel=channel,
                reference=reference,
                detail=detail[:4000],
                server=server,
            )
            session.add(entry)
            session.flush()
            record = _to_record(entry)
        self._announce(record)
        return record

    def _announce(self, record: AuditRecord) -> None:
        log.info(
            "audit",
            extra={
                "event": "audit",
                "action": record.action,
                "outcome": record.outcome,
                "user": record.actor,
                "server": record.server,
            },
        )
        if self.notify is not None:
            try:
                self.notify(record)
            except Exception:  # the row is written; a Slack hiccup must not undo the act
                log.exception("could not post the audit record to the audit channel")

    def begin(
        self,
        *,
        actor: str,
        action: str,
        target: str = "",
        channel: str | None = None,
        reference: str | None = None,
        server: str | None = None,
    ) -> int:
        """Record an act about to happen (outcome `in_progress`); its id, for `complete`."""
        with self._db.session() as session:
            entry = AuditEntry(
                actor=actor,
                action=action,
                outcome=STARTED,
                target=target,
                channel=channel,
                reference=reference,
                detail="",
                server=server,
            )
            session.add(entry)
            session.flush()
            return entry.id

    def complete(self, record_id: int, outcome: str, detail: str = "") -> AuditRecord | None:
        """Give a started record its outcome, once (a second completion changes nothing)."""
        with self._db.session() as session:
            won = session.execute(
                update(AuditEntry)
                .where(AuditEntry.id == record_id, AuditEntry.outcome == STARTED)
                .values(outcome=outcome, detail=detail[:4000])
            ).rowcount  # type: ignore[attr-defined]  # SQLAlchemy types UPDATE results loosely
            entry = session.get(AuditEntry, record_id)
            record = _to_record(entry) if entry is not None and won else None
        if record is not None:
            self._announce(record)
        return record

    def open_record(self, reference: str, action: str) -> int | None:
        """The id of a started, not yet completed record of `action` for `reference`."""
        with self._db.session() as session:
            return session.scalar(
                select(AuditEntry.id)
                .where(
                    AuditEntry.reference == reference,
                    AuditEntry.action == action,
                    AuditEntry.outcome == STARTED,
                )
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )

    def recent(self, limit: int = 20) -> list[AuditRecord]:
        with self._db.session() as session:
            rows = session.scalars(
                select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            ).all()
            return [_to_record(row) for row in rows]


def _to_record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        outcome=entry.outcome,
        target=entry.target,
        channel=entry.channel,
        reference=entry.reference,
        detail=entry.detail,
        server=entry.server,
    )
