"""PostgreSQL coordination: advisory locks scoped to the schema, leadership asked of the
database, and re-locking that gives up after a deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import fresh_schema, needs_postgres
from sqlalchemy import text

from bot.store import Database
from bot.store.coordination import Coordinator

pytestmark = needs_postgres


@pytest.fixture
def other_schema_url(postgres_url: str) -> Iterator[str]:
    """A second deployment's schema in the same database."""
    with fresh_schema() as url:
        yield url


def _terminate(db: Database, coordinator: Coordinator) -> None:
    """Kill the coordinator's lock connection on the server, as a network cut would."""
    pid = coordinator._conn.execute(text("SELECT pg_backend_pid()")).scalar()
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    # pg_terminate_backend only signals: await the backend's locks going, as they do on a cut.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.engine.begin() as conn:
            held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE pid = :p"), {"p": pid})
            if not held.scalar():
                return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} still holds locks 10 s after it was terminated")


def test_two_deployments_in_one_database_each_have_a_leader(
    postgres_url: str, other_schema_url: str
) -> None:
    dbs = [Database(postgres_url), Database(postgres_url), Database(other_schema_url)]
    a, b, other = (Coordinator(db).start() for db in dbs)
    try:
        assert a.is_leader() and not b.is_leader()
        assert other.is_leader()  # its own schema: not a's follower
        assert a.is_alive(b.instance_id) and not other.is_alive(a.instance_id)
    finally:
        for coordinator, db in zip((a, b, other), dbs, strict=True):
            coordinator.close()
            db.dispose()


def test_a_leader_whose_lock_connection_dropped_leads_no_more(postgres_url: str) -> None:
    dbs = [Database(postgres_url), Database(postgres_url)]
    a, b = (Coordinator(db).start() for db in dbs)
    try:
        assert a.is_leader()
        _terminate(dbs[1], a)
        assert b.is_leader()  # the lock went with the connection
        assert not a.is_leader()  # asked of the database, not remembered
        a.keep_alive()  # a new connection, locked again: alive, following
        assert b.is_alive(a.instance_id) and not a.is_leader() and b.is_leader()
    finally:
        for coordinator, db in zip((a, b), dbs, strict=True):
            coordinator.close()
            db.dispose()


def test_locking_again_gives_up_while_the_old_session_holds_the_lock(postgres_url: str) -> None:
    db = Database(postgres_url)
    a = Coordinator(db).start()
    old = a._conn
    a._conn = None  # as if the connection were lost while its session lives on
    try:
        a.keep_alive(relock_seconds=0.3)
        assert a._conn is None  # gave up: the next keep-alive tries again
        old.invalidate()  # the old session ends (not back to the pool): its lock goes
        a.keep_alive(relock_seconds=0.3)
        assert a._conn is not None and a.is_alive(a.instance_id)
    finally:
        a.close()
        db.dispose()
