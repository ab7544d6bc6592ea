"""This process among the bot's processes on one database: identity, liveness, leadership.

Each process has a random instance id. On PostgreSQL it holds a session-level advisory lock
keyed by that id on a connection of its own for as long as it lives; PostgreSQL drops the lock
the moment the process (or its connection) dies, so "is instance X alive?" is answered by the
database itself, without hostname or pid guesses. The leader, which runs the timed jobs, is
whoever holds one more advisory lock; `is_leader()` asks the database each time, so a leader
whose lock connection dropped stops leading at once. Migrations run under an advisory lock too,
so replicas that start together on an empty database do not race.

Advisory locks belong to the whole PostgreSQL database, not to a schema: every key is derived
from the database and schema name too (`namespace`), so two deployments (or two test runs)
sharing one database in different schemas have a leader each and never see each other's
instances as alive.

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
import time
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.store.db import Database

log = logging.getLogger(__name__)

LEADER = "leader"  # who runs the timed jobs
MIGRATION = "migrate"  # one schema change at a time
RELOCK_SECONDS = 10.0  # how long keep_alive tries to lock again before it gives up for now
RELOCK_POLL = 0.2


class AnotherProcess(RuntimeError):
    """A second process on a SQLite database: the message says what to do."""


def lock_key(name: str, namespace: str = "") -> int:
    """A signed 64-bit advisory lock key for a name (an instance id, LEADER, MIGRATION) within
    a namespace (`database.schema`)."""
    digest = hashlib.sha256(f"{namespace}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def namespace_of(conn: Any) -> str:
    """`database.schema` of a PostgreSQL connection: what the advisory-lock keys are scoped to."""
    return str(
        conn.execute(
            text("SELECT current_database() || '.' || coalesce(current_schema(), '')")
        ).scalar()
    )


class Coordinator:
    def __init__(self, db: Database, instance_id: str | None = None) -> None:
        self.db = db
        self.instance_id = instance_id or secrets.token_hex(8)
        self._postgres = db.dialect == "postgresql"
        self._conn: Any = None  # PostgreSQL: the connection that holds our locks
        self._lock_file: IO[str] | None = None
        self._leader = False
        self._guard = threading.Lock()
        self.namespace = ""  # PostgreSQL: `database.schema`, read when started

    def key(self, name: str) -> int:
        return lock_key(name, self.namespace)

    @property
    def several_allowed(self) -> bool:
        """Whether other replicas may share this database (PostgreSQL only)."""
        return self._postgres

    # ---- life ----------------------------------------------------------------------------

    def start(self) -> Coordinator:
        if self._postgres:
            self._conn = self.db.engine.connect()
            self.namespace = namespace_of(self._conn)
            self._conn.execute(
                text("SELECT pg_advisory_lock(:k)"), {"k": self.key(self.instance_id)}
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

    def keep_alive(self, relock_seconds: float = RELOCK_SECONDS) -> None:
        """Check the lock-holding connection (a scheduler job, every few seconds). If it died,
        the locks went with it: lead no more, take a new connection and lock again, for at most
        `relock_seconds` (the old session may linger on the server until PostgreSQL notices it
        is gone); the next run tries again."""
        if not self._postgres:
            return
        with self._guard:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    self._conn.commit()
                    return
                except Exception:
                    log.warning(
                        "instance %s lost its database connection; locking again",
                        self.instance_id,
                    )
                    self._drop_connection()
            self._conn = self._relock(relock_seconds)

    def _drop_connection(self) -> None:
        self._leader = False
        with contextlib.suppress(Exception):  # it is dead already
            self._conn.close()
        self._conn = None

    def _relock(self, seconds: float) -> Any:
        """A new connection holding this instance's lock, or None when it stayed taken."""
        conn = self.db.engine.connect()
        deadline = time.monotonic() + seconds
        try:
            while True:
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key(self.instance_id)}
                ).scalar()
                conn.commit()
                if got:
                    return conn
                if time.monotonic() >= deadline:
                    break
                time.sleep(RELOCK_POLL)
        except Exception:
            conn.close()
            raise
        conn.close()
        log.warning(
            "instance %s could not lock again within %.0f s; trying at the next keep-alive",
            self.instance_id,
            seconds,
        )
        return None

    # ---- questions -----------------------------------------------------------------------

    def is_alive(self, instance_id: str | None) -> bool:
        """Whether the process with that id still runs (for a lease or a claim it holds)."""
        if not instance_id:
            return False
        if instance_id == self.instance_id:
            return self._conn is not None or self._lock_file is not None
        if not self._postgres:
            return False  # one process per SQLite file: any other holder is gone
        key = self.key(instance_id)
        with self.db.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            if got:  # nobody holds it: that instance is gone; give the lock straight back
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
        return not got

    def is_leader(self) -> bool:
        """Whether this process runs the timed jobs now (taking the lead if it is free). Asked
        of the database on the lock connection each time: a session lock lasts exactly as long
        as its session, so a dropped connection means no lead, whatever we thought before."""
        if not self._postgres:
            return self._lock_file is not None
        with self._guard:
            if self._conn is None:
                return False
            try:
                leading = (
                    self._holds(LEADER)
                    or self._conn.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key(LEADER)}
                    ).scalar()
                )
                self._conn.commit()
            except Exception:
                log.warning("instance %s: the lock connection failed", self.instance_id)
                self._drop_connection()  # keep_alive connects and locks again
                return False
            if leading and not self._leader:
                log.info("instance %s leads the timed jobs", self.instance_id)
            self._leader = bool(leading)
            return self._leader

    def _holds(self, name: str) -> bool:
        """Whether the lock connection's session holds that advisory lock (guard held)."""
        key = self.key(name) & 0xFFFFFFFFFFFFFFFF  # pg_locks shows a bigint key as two oids
        return bool(
            self._conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND granted AND objsubid = 1"
                    " AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid))"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            ).scalar()
        )

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
        key = lock_key(MIGRATION, namespace_of(conn))
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            db.migrate()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
