"""The database: reachable, a schema this version can use (read-only: nothing is created), and
whether several replicas may share it."""

from __future__ import annotations

import os
from pathlib import Path

from bot.check.report import Report
from bot.config import Settings

# What bot.store.coordination.Coordinator.several_allowed answers, said before anything starts.
SEVERAL_REPLICAS = "database: PostgreSQL, several replicas may share it"
ONE_PROCESS = (
    "database: SQLite allows one bot process; use PostgreSQL "
    "(BOT_DATABASE_URL=postgresql://…) to run several replicas"
)


def check_database(settings: Settings, report: Report) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = settings.database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        report.fail(
            "BOT_DATABASE_URL is not a database URL: use e.g. sqlite:////data/connect-bot.db "
            "or postgresql://user:password@host/dbname"
        )
        return
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not _sqlite_not_created(parsed.database, report):
            _database_state(url, shown, report)
        # A second process on the same file refuses to start: worth knowing, not wrong.
        report.warn(ONE_PROCESS)
    elif backend == "postgresql":
        # libpq waits indefinitely for an unreachable host; a check should answer.
        os.environ.setdefault("PGCONNECT_TIMEOUT", "10")
        if _database_state(url, shown, report):
            report.ok(SEVERAL_REPLICAS)
    else:
        _database_state(url, shown, report)


def _sqlite_not_created(database: str | None, report: Report) -> bool:
    """Handle a SQLite file that does not exist yet without creating it (the check is read-only)."""
    if not database or database == ":memory:":
        report.warn("BOT_DATABASE_URL is an in-memory database: nothing survives a restart")
        return True
    path = Path(database).expanduser()
    if path.exists():
        return False
    parent = next(p for p in path.absolute().parents if p.exists())
    if os.access(parent, os.W_OK | os.X_OK):
        report.ok(f"database {path} does not exist yet: `connect-bot serve` creates it on start")
    else:
        report.fail(
            f"database {path} cannot be created: {parent} is not writable by this user; "
            "fix its permissions or point BOT_DATABASE_URL elsewhere"
        )
    return True


def _database_state(url: str, shown: str, report: Report) -> bool:
    """The reachability and schema lines; whether the database could be opened."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store import Database
    from bot.store.migrate import current, head

    database = None
    try:
        database = Database(url)
        database.ping()
        at = current(database.engine)
    except ModuleNotFoundError as exc:
        report.fail(f"BOT_DATABASE_URL needs the {exc.name} driver: install connect-bot[postgres]")
        return False
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        report.fail(f"cannot open the database {shown}: {reason}; check BOT_DATABASE_URL")
        return False
    finally:
        if database is not None:
            database.dispose()
    _schema_line(shown, at, head(), report)
    return True


def _schema_line(shown: str, at: str | None, wanted: str | None, report: Report) -> None:
    if at == wanted:
        report.ok(f"database {shown} is reachable and its schema is current ({at})")
    elif at is None:
        report.ok(
            f"database {shown} is reachable and empty: `connect-bot serve` creates the schema"
        )
    elif _known_revision(at):
        report.ok(
            f"database {shown} is reachable; its schema ({at}) is older than this version's "
            f"({wanted}): `connect-bot serve` upgrades it on start"
        )
    else:
        report.fail(
            f"database {shown} has schema {at}, which this connect-bot does not know (a newer "
            "version wrote it): run that version, or point BOT_DATABASE_URL at another database"
        )


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from bot.store.migrate import MIGRATIONS

    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False
