"""Time as the database tells it: the one clock that every replica reads the same.

Leases (`heartbeat_at`) and the journal of build requests (`requested_at`) are written with the
database's `now()` and judged against it, so a replica whose own clock is off cannot take over a
live lease or re-send a build too early. SQLite serves one process: its clock is the only one,
so the process's (injectable) wall clock stands in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal, select

from bot.store.db import Database
from bot.store.models import UtcDateTime, utcnow

WallClock = Callable[[], datetime]


class DbClock:
    def __init__(self, db: Database, wall: WallClock = utcnow) -> None:
        self.db = db
        self.wall = wall  # SQLite only

    def sql(self) -> ColumnElement[datetime]:
        """The current time, as an expression evaluated by the database (PostgreSQL: the
        transaction's start; our transactions are short)."""
        if self.db.dialect == "postgresql":
            return func.now(type_=UtcDateTime())
        return literal(self.wall(), UtcDateTime())

    def now(self) -> datetime:
        with self.db.session() as session:
            value: datetime | None = session.scalar(select(self.sql()))
        assert value is not None
        return value
