"""Slack request signatures seen by any replica (migration 0012): replay protection that holds
when a replayed request reaches another replica than the first.

A row lives for as long as its request could still pass the 5-minute timestamp check, plus a
margin for replicas whose clocks differ: `expires` is the request's own (signed) timestamp plus
both, so no replica's clock decides when a row was written. Expired rows are purged now and
then by whichever replica inserts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import BigInteger, Index, String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import ReturningInsert

from bot.store.db import Database
from bot.store.models import Base

WINDOW_SECONDS = 5 * 60  # Slack's: a request older than this is refused by its timestamp
SKEW_SECONDS = 5 * 60  # replicas' clocks may disagree by this much and still share the check
PURGE_EVERY_SECONDS = 60.0


class SeenSignature(Base):
    __tablename__ = "seen_signatures"
    __table_args__ = (Index("ix_seen_signatures_expires", "expires"),)

    signature: Mapped[str] = mapped_column(String(80), primary_key=True)  # "v0=" + 64 hex
    expires: Mapped[int] = mapped_column(BigInteger)  # Unix seconds


class SeenSignatures:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._next_purge = 0.0
        self._lock = threading.Lock()

    def first_sighting(self, signature: str, sent: int) -> bool:
        """Record `signature`; False if any replica recorded it already. One round trip."""
        row = {"signature": signature, "expires": sent + WINDOW_SECONDS + SKEW_SECONDS}
        statement: ReturningInsert[tuple[str]]
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        statement = (
            dialect.insert(SeenSignature)
            .values(row)
            .on_conflict_do_nothing()
            .returning(SeenSignature.signature)  # a row back only if this insert made it
        )
        with self.db.engine.begin() as conn:
            inserted = conn.execute(statement).first() is not None
        self._purge_if_due()
        return inserted

    def _purge_if_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_EVERY_SECONDS
        with self.db.engine.begin() as conn:
            conn.execute(delete(SeenSignature).where(SeenSignature.expires < int(self.clock())))

    def count(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(SeenSignature)).scalar_one())
