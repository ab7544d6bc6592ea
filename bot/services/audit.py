"""Append-only audit log of destructive acts and refusals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.store import AuditEntry, Database

log = logging.getLogger(__name__)


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


class AuditLog:
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
        log.info(
            "audit",
            extra={
                "event": "audit",
                "action": action,
                "outcome": outcome,
                "user": actor,
                "server": server,
            },
        )
        if self.notify is not None:
            try:
                self.notify(record)
            except Exception:  # the row is written; a Slack hiccup must not undo the act
                log.exception("could not post the audit record to the audit channel")
        return record

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
