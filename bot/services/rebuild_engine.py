"""The rebuild engine: which process drives each rebuild, restart-safe; the drivers themselves
are in `bot.services.rebuild_driver`.

How a rebuild runs
* A persisted APScheduler job per rebuild (`bot.jobs:drive_rebuild`, id `rebuild-<id>`, an
  interval trigger used as a watchdog) calls `RebuildEngine.tick`. The tick returns at once: it
  starts a driver thread when none runs here and this process holds the rebuild's lease. After a
  kill the job is still in the store; `resume()` at start-up fires it at once. Without a
  scheduler (tests, tools) `launch` ticks directly.
* The lease (`rebuilds.driver` + `heartbeat_at`) keeps a rebuild from being driven twice: by two
  threads here (an in-memory registry) or by two processes (a conditional UPDATE). A lease whose
  holder stopped heart-beating for LEASE_TTL, or whose holder was a process on this host that no
  longer exists (kill -9, then restart), is taken over.
* A rebuild belongs to one Connect server (`rebuilds.server`); its driver builds through
  `clients(server)`, retrying Connect's faults within `retry_seconds` per item
  (BOT_CONNECT_RETRY_SECONDS; None: the budget the client was made with).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from sqlalchemy import func, select, update

from bot.connect import ConnectClient
from bot.services.audit import AuditLog
from bot.services.rebuild_driver import Driver
from bot.services.rebuild_store import ACTIVE, FINISHED, OPEN_ITEM_STATES
from bot.store import Database, Rebuild, RebuildItem, utcnow

log = logging.getLogger(__name__)

JOB = "bot.jobs:drive_rebuild"
WATCHDOG_SECONDS = 15
LEASE_TTL = timedelta(seconds=45)


# Lease holders alive in this process: a holder with our pid but not in here is gone (an
# engine that was closed, or an earlier process whose pid this one reuses, as in containers).
_LIVE_HOLDERS: set[str] = set()


def job_id(rebuild_id: int) -> str:
    return f"rebuild-{rebuild_id}"


class RebuildEngine:
    """Owns the drivers of this process and the leases that go with them."""

    def __init__(
        self,
        db: Database,
        clients: Callable[[str | None], ConnectClient],
        *,
        runtime_key: str,
        scheduler: Any = None,
        audit: AuditLog | None = None,
        retry_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clients = clients  # a rebuild's server name -> its Connect client
        self.retry_seconds = retry_seconds  # the drivers' budget for Connect's faults
        self.clock = clock  # monotonic, for that budget
        self.runtime_key = runtime_key
        self.scheduler = scheduler
        self.me = f"{socket.gethostname()[:80]}/{os.getpid()}/{secrets.token_hex(4)}"
        _LIVE_HOLDERS.add(self.me)
        self._drivers: dict[int, Driver] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._listeners: list[Callable[[int], None]] = []

    # ---- wiring --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """`listener(rebuild_id)` after items finish, and when a rebuild ends (Slack progress)."""
        self._listeners.append(listener)

    def launch(self, rebuild_id: int) -> None:
        """Persist the job and run it now."""
        if self.scheduler is not None:
            self.scheduler.add_job(
                JOB,
                "interval",
                seconds=WATCHDOG_SECONDS,
                args=[self.runtime_key, rebuild_id],
                id=job_id(rebuild_id),
                replace_existing=True,
                next_run_time=utcnow(),
            )
        else:
            self.tick(rebuild_id)

    def resume(self, rebuild_ids: list[int]) -> None:
        """At start-up: fire the jobs of rebuilds that were running (re-created if missing)."""
        for rebuild_id in rebuild_ids:
            self.launch(rebuild_id)

    def tick(self, rebuild_id: int) -> None:
        """Watchdog: make sure the rebuild has a driver, here or elsewhere."""
        if self._closed:
            return
        with self._lock:
            if rebuild_id in self._drivers:
                return
        with self.db.session() as session:
            row = session.execute(
                select(Rebuild.state, Rebuild.parallelism).where(Rebuild.id == rebuild_id)
            ).first()
        if row is None or row.state in FINISHED:
            self.remove_job(rebuild_id)
            return
        if row.state not in ACTIVE or not self._acquire(rebuild_id):
            return
        with self._lock:
            if rebuild_id in self._drivers or self._closed:
                return
            driver = Driver(self, rebuild_id, row.parallelism)
            self._drivers[rebuild_id] = driver
        log.info("rebuild %s: driving it (parallelism %d)", rebuild_id, row.parallelism)
        driver.start()
        self.notify(rebuild_id)

    def cancel(self, rebuild_id: int) -> None:
        with self._lock:
            driver = self._drivers.get(rebuild_id)
        if driver is not None:
            driver.cancel()

    def driving(self, rebuild_id: int) -> bool:
        with self._lock:
            return rebuild_id in self._drivers

    def close(self, timeout: float = 2.0) -> None:
        """Stop dispatching; running builds stay `building` for the next start to re-attach."""
        self._closed = True
        _LIVE_HOLDERS.discard(self.me)
        with self._lock:
            drivers = list(self._drivers.values())
        for driver in drivers:
            driver.stop()
        deadline = time.monotonic() + timeout
        for driver in drivers:
            driver.thread.join(max(0.0, deadline - time.monotonic()))

    # ---- lease ---------------------------------------------------------------------------

    def _acquire(self, rebuild_id: int) -> bool:
        now = utcnow()
        with self.db.session() as session:
            row = session.execute(
                select(Rebuild.driver, Rebuild.heartbeat_at).where(Rebuild.id == rebuild_id)
            ).first()
            if row is None:
                return False
            holder = row.driver
            if holder not in (None, self.me) and not self._stale(holder, row.heartbeat_at):
                return False
            same_holder = Rebuild.driver.is_(None) if holder is None else Rebuild.driver == holder
            won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, same_holder)
                .values(driver=self.me, heartbeat_at=now)
            ).rowcount
        return bool(won)

    def renew(self, rebuild_id: int) -> str | None:
        """Extend the lease; the rebuild's state, or None when the lease is someone else's."""
        with self.db.session() as session:
            won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.driver == self.me)
                .values(heartbeat_at=utcnow())
            ).rowcount
            if not won:
                return None
            return session.scalar(select(Rebuild.state).where(Rebuild.id == rebuild_id))

    def _stale(self, holder: str, heartbeat: Any) -> bool:
        if heartbeat is None or utcnow() - heartbeat > LEASE_TTL:
            return True
        host, _, rest = holder.partition("/")
        pid_text = rest.partition("/")[0]
        if host != self.me.partition("/")[0] or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if pid == os.getpid():
            return holder not in _LIVE_HOLDERS
        return not _pid_alive(pid)  # same host: a killed process is gone at once

    # ---- callbacks from drivers (`DriverHost`) --------------------------------------------

    def forget(self, driver: Driver) -> None:
        with self._lock:
            if self._drivers.get(driver.rebuild_id) is driver:
                del self._drivers[driver.rebuild_id]

    def finish(self, rebuild_id: int, *, cancelled: bool) -> None:
        """A driver's workers are done: `done` or `cancelled`, unless items are still open
        (workers died on errors: the watchdog's next driver takes them)."""
        now = utcnow()
        with self.db.session() as session:
            if cancelled:
                session.execute(
                    update(RebuildItem)
                    .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "queued")
                    .values(state="cancelled", finished_at=now)
                )
            else:
                left = session.scalar(
                    select(func.count()).where(
                        RebuildItem.rebuild_id == rebuild_id,
                        RebuildItem.state.in_(OPEN_ITEM_STATES),
                    )
                )
                if left:
                    log.warning("rebuild %s: %d item(s) left; retrying", rebuild_id, left)
                    return
            outcome = "cancelled" if cancelled else "done"
            ended = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.state.in_(ACTIVE))
                .values(state=outcome, finished_at=now)
            ).rowcount
        if ended:
            self._audit_end(rebuild_id, outcome)
        self.remove_job(rebuild_id)
        log.info("rebuild %s finished", rebuild_id)
        self.notify(rebuild_id)

    def _audit_end(self, rebuild_id: int, outcome: str) -> None:
        """The end of a rebuild is part of its audit trail: who started it, what came of it."""
        if self.audit is None:
            return
        with self.db.session() as session:
            rebuild = session.get(Rebuild, rebuild_id)
            counts = dict(
                session.execute(
                    select(RebuildItem.state, func.count())
                    .where(RebuildItem.rebuild_id == rebuild_id)
                    .group_by(RebuildItem.state)
                ).all()
            )
            resent = session.scalar(
                select(func.coalesce(func.sum(RebuildItem.resent), 0)).where(
                    RebuildItem.rebuild_id == rebuild_id
                )
            )
        if rebuild is None:
            return
        detail = ", ".join(f"{counts[state]} {state}" for state in sorted(counts))
        if resent:  # requests sent again after one that may have reached Connect
            detail += f"; {resent} build request(s) re-sent"
        self.audit.record(
            actor=rebuild.started_by or rebuild.requested_by,
            action="rebuild",
            outcome=outcome,
            target=f"rebuild #{rebuild_id}",
            channel=rebuild.channel,
            reference=str(rebuild_id),
            detail=detail,
            server=rebuild.server,
        )

    def remove_job(self, rebuild_id: int) -> None:
        if self.scheduler is None:
            return
        try:
            self.scheduler.remove_job(job_id(rebuild_id))
        except JobLookupError:
            pass
        except Exception:
            log.warning("could not remove the job of rebuild %s", rebuild_id, exc_info=True)

    def notify(self, rebuild_id: int) -> None:
        for listener in self._listeners:
            try:
                listener(rebuild_id)
            except Exception:
                log.exception("rebuild listener failed")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
