"""This process among the bot's processes on one database: identity, liveness, leadership.

Each process has a random instance id. On PostgreSQL it holds a session-level advisory lock
keyed by that id on a connection of its own for as long as it lives; PostgreSQL drops the lock
the moment the process (or its connection) dies, so "is instance X alive?" is answered by the
database itself, without hostname or pid guesses. The leader, which runs the timed jobs, is
whoever holds one more advisory lock. Migrations run under an advisory lock too, so replicas
that start together on an empty database do not race.

SQLite is for one process: an exclusive lock on a file next to the database refuses a second
process on the same file, and every holder other than this process is dead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import secrets
import threading
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.store.db import Database

log = logging.getLogger(__name__)

LEADER_KEY = 0x636F6E6E656374  # "connect": who runs the timed jobs
MIGRATION_KEY = 0x6D696772617465  # "migrate": one schema change at a time


class AnotherProcess(RuntimeError):
    """A second process on a SQLite database: the message says what to do."""


def lock_key(instance_id: str) -> int:
    """A signed 64-bit advisory lock key for an instance id."""
    return int.from_bytes(hashlib.sha256(instance_id.encode()).digest()[:8], "big", signed=True)


class Coordinator:
    def __init__(self, db: Database, instance_id: str | None = None) -> None:
        self.db = db
        self.instance_id = instance_id or secrets.token_hex(8)
        self._postgres = db.dialect == "postgresql"
        self._conn: Any = None  # PostgreSQL: the connection that holds our locks
        self._lock_file: IO[str] | None = None
        self._leader = False
        self._guard = threading.Lock()

    @property
    def several_allowed(self) -> bool:
        """Whether other replicas may share this database (PostgreSQL only)."""
        return self._postgres

    # ---- life ----------------------------------------------------------------------------

    def start(self) -> Coordinator:
        if self._postgres:
            self._conn = self.db.engine.connect()
            self._conn.execute(
                text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(self.instance_id)}
            )
            self._conn.commit()
        else:
            self._lock_sqlite()
        log.info("instance %s started", self.instance_id)
        return self

    def close(self) -> None:
        """Release everything at once: others see this instance gone immediately."""
        with self._guard:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
                    self._conn.commit()
                finally:
                    self._conn.close()
                    self._conn = None
            self._leader = False
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    def keep_alive(self) -> None:
        """Check the lock-holding connection (a scheduler job, every few seconds). If it died,
        the locks went with it: take a new connection and lock again, and lead no more."""
        if not self._postgres:
            return
        with self._guard:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return
            except Exception:
                log.warning(
                    "instance %s lost its database connection; locking again", self.instance_id
                )
                self._leader = False
                with contextlib.suppress(Exception):  # it is dead already
                    self._conn.close()
            self._conn = self.db.engine.connect()
            self._conn.execute(
                text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(self.instance_id)}
            )
            self._conn.commit()

    # ---- questions -----------------------------------------------------------------------

    def is_alive(self, instance_id: str | None) -> bool:
        """Whether the process with that id still runs (for a lease or a claim it holds)."""
        if not instance_id:
            return False
        if instance_id == self.instance_id:
            return self._conn is not None or self._lock_file is not None
        if not self._postgres:
            return False  # one process per SQLite file: any other holder is gone
        key = lock_key(instance_id)
        with self.db.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            if got:  # nobody holds it: that instance is gone; give the lock straight back
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
        return not got

    def is_leader(self) -> bool:
        """Whether this process runs the timed jobs now (taking the lead if it is free)."""
        if not self._postgres:
            return self._lock_file is not None
        with self._guard:
            if self._conn is None:
                return False
            if not self._leader:
                got = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_KEY}
                ).scalar()
                self._conn.commit()
                self._leader = bool(got)
                if self._leader:
                    log.info("instance %s leads the timed jobs", self.instance_id)
            return self._leader

    # ---- SQLite --------------------------------------------------------------------------

    def _lock_sqlite(self) -> None:
        database = make_url(self.db.url).database or ""
        if not database or database == ":memory:":
            self._lock_file = open(  # noqa: SIM115 -- held open for the process's life
                Path("/dev/null"), "a", encoding="utf-8"
            )
            return
        path = Path(database).expanduser().with_name(Path(database).name + ".lock")
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AnotherProcess(
                f"Another connect-bot process is using the SQLite database {database}. SQLite is"
                " for one process; to run several replicas, set BOT_DATABASE_URL to a PostgreSQL"
                " database (postgresql://user:pass@host/db)."
            ) from None
        self._lock_file = handle


def migrate_serialised(db: Database) -> None:
    """Migrate under an advisory lock on PostgreSQL, so replicas starting together on an empty
    or older database apply each migration once (the others wait, then find nothing to do)."""
    if db.dialect != "postgresql":
        db.migrate()
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_KEY})
        conn.commit()
        try:
            db.migrate()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_KEY})
            conn.commit()
