"""The rebuild engine: which process drives each rebuild, and reports it; the drivers themselves
are in `bot.services.rebuilds.driver`.

How a rebuild runs, with one process or several on one database
* `watch()` runs every few seconds in every process (a timed job): it ticks every active
  rebuild, and takes the lease of finished rebuilds whose final summary is not posted yet, so
  that this process's reporter posts it. `launch` (after a Start) ticks at once.
* The lease is the row's `driver` (the holder's instance id), `heartbeat_at` and `lease_token`.
  A tick takes a free or stale lease (`SELECT … FOR UPDATE`, then a new random token) and starts
  a driver thread here. A lease is stale when its holder is not alive (`is_alive`: on PostgreSQL
  the holder's advisory lock, gone the instant it dies), or when its heartbeat (every 2 s) is
  older than LEASE_TTL (a process connected but hung). Heartbeats are written as the database's
  `now()` and judged against it (`DbClock`): no replica's own clock decides, so one whose clock
  is off takes nothing over. A hung holder sends nothing once it wakes up (self-fencing on its
  monotonic clock, `Driver.lease_fresh`).
* Fencing: every write a driver makes (an item's state, the rebuild's end) is conditioned on
  its token (`… AND lease_token = :mine`, the rebuild row locked FOR SHARE); a write that
  matches nothing means the lease moved: the driver stops at once and sends nothing more.
* After the end the lease stays (renewed by `watch`) until the reporter has posted the final
  summary; it then releases it (`RebuildStore.report_final`). `close()` (SIGTERM) stops
  dispatching, waits for the build requests under way to be answered and recorded (up to
  DRAIN_SECONDS), then releases every lease of this process, so another one takes over at once
  and finds each of those builds by its task id.
* A rebuild belongs to one Connect server (`rebuilds.server`); its driver builds through
  `clients(server)`, retrying Connect's faults within `retry_seconds` per item
  (BOT_CONNECT_RETRY_SECONDS; None: the budget the client was made with).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from bot.connect import ConnectClient
from bot.services.audit import AuditStore
from bot.services.rebuilds.builds import REQUEST_SECONDS
from bot.services.rebuilds.driver import LEASE_TTL, Driver
from bot.services.rebuilds.store import ACTIVE, FINISHED, OPEN_ITEM_STATES
from bot.store import Database, Rebuild, RebuildItem
from bot.store.dbtime import DbClock, WallClock
from bot.store.models import utcnow

log = logging.getLogger(__name__)

__all__ = ["DRAIN_SECONDS", "LEASE_TTL", "RebuildEngine"]

DRAIN_SECONDS = REQUEST_SECONDS + 5.0  # SIGTERM: the longest wait for requests under way


class RebuildEngine:
    """Owns the drivers of this process and the leases that go with them."""

    def __init__(
        self,
        db: Database,
        clients: Callable[[str | None], ConnectClient],
        *,
        instance_id: str,
        is_alive: Callable[[str | None], bool],
        audit: AuditStore | None = None,
        retry_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: WallClock = utcnow,
    ) -> None:
        """`clock`: monotonic (retry budgets, self-fencing); `wall_clock`: this process's time
        (SQLite's stand-in for the database's, and the times shown); leases use the
        database's time on PostgreSQL."""
        self.db = db
        self.wall_clock = wall_clock
        self.db_clock = DbClock(db, wall_clock)
        self.audit = audit
        self.clients = clients  # a rebuild's server name -> its Connect client
        self.retry_seconds = retry_seconds  # the drivers' budget for Connect's faults
        self.clock = clock  # monotonic, for that budget
        self.instance_id = instance_id
        self.is_alive = is_alive  # whether the process with that instance id still runs
        self._drivers: dict[int, Driver] = {}
        self._lock = threading.Lock()  # the registry
        self._ticking = threading.Lock()  # one lease decision at a time in this process
        self._closed = False
        self._listeners: list[Callable[[int], None]] = []

    # ---- wiring --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """`listener(rebuild_id)` when this process takes a rebuild's lease, after items
        finish, and when a rebuild ends (the Slack reporter's `watch`)."""
        self._listeners.append(listener)

    def launch(self, rebuild_id: int) -> None:
        """A rebuild was started: drive it now (here, unless another process was quicker)."""
        self.tick(rebuild_id)

    def watch(self) -> None:
        """Every few seconds, in every process: drive active rebuilds whose lease is free or
        stale, and take over finished ones whose final summary nobody posted."""
        if self._closed:
            return
        with self.db.session() as session:
            rows = session.execute(
                select(Rebuild.id, Rebuild.state, Rebuild.driver, Rebuild.progress).where(
                    or_(
                        Rebuild.state.in_(ACTIVE),
                        and_(Rebuild.state.in_(FINISHED), Rebuild.driver.is_not(None)),
                        # released on SIGTERM before its summary was posted (e.g. a 429)
                        and_(
                            Rebuild.state.in_(FINISHED),
                            Rebuild.started_at.is_not(None),
                            Rebuild.progress["final_reported"].as_boolean().is_not(True),
                        ),
                    )
                )
            ).all()
        for row in rows:
            if self._closed:
                return
            try:
                if row.state in ACTIVE:
                    self.tick(row.id)
                elif (row.progress or {}).get("final_reported"):
                    self._clear(row.id, row.driver)  # reported: nobody needs the lease
                else:
                    self._hold_for_report(row.id)
            except Exception:
                log.exception("rebuild %s: watch failed", row.id)

    def tick(self, rebuild_id: int) -> None:
        """Make sure the rebuild has a driver, here or elsewhere."""
        if self._closed:
            return
        with self._ticking:
            with self._lock:
                if rebuild_id in self._drivers:
                    return
            began = self.clock()  # before the lease's heartbeat is written
            taken = self._acquire(rebuild_id, ACTIVE)
            if taken is None:
                return
            token, parallelism = taken
            with self._lock:
                if self._closed:
                    return
                driver = Driver(self, rebuild_id, parallelism, token, renewed=began)
                self._drivers[rebuild_id] = driver
        log.info("rebuild %s: driving it (parallelism %d)", rebuild_id, parallelism)
        driver.start()
        self.notify(rebuild_id)

    def cancel(self, rebuild_id: int) -> None:
        """Cancel the driver here; a driver elsewhere sees `cancelling` at its next heartbeat."""
        with self._lock:
            driver = self._drivers.get(rebuild_id)
        if driver is not None:
            driver.cancel()

    def driving(self, rebuild_id: int) -> bool:
        with self._lock:
            return rebuild_id in self._drivers

    def close(self, timeout: float = DRAIN_SECONDS, settle: float = 2.0) -> None:
        """SIGTERM: dispatch nothing more; wait up to `timeout` for the build requests under
        way to be answered and recorded (`building` with their task id), and up to `settle`
        for other answers already on their way; only then release every lease of this
        process, so another one takes over at once and sends none of them again."""
        self._closed = True
        with self._lock:
            drivers = list(self._drivers.values())
        for driver in drivers:
            driver.stop()
        deadline = self.clock() + timeout
        for driver in drivers:
            left = driver.drain(deadline - self.clock())
            if left:
                log.warning(
                    "rebuild %s: %d build request(s) still unanswered; handing over anyway (the"
                    " next driver waits for them before sending again)",
                    driver.rebuild_id,
                    left,
                )
        deadline = self.clock() + settle
        for driver in drivers:
            driver.join(max(0.0, deadline - self.clock()))
        with self._ticking, self.db.session() as session:  # after a tick under way
            released = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.driver == self.instance_id)
                .values(driver=None, lease_token=None, heartbeat_at=None)
            ).rowcount
        if released:
            log.info("released the lease of %d rebuild(s)", released)

    # ---- lease ---------------------------------------------------------------------------

    def _acquire(self, rebuild_id: int, states: tuple[str, ...]) -> tuple[str, int] | None:
        """Take the lease when it is free or stale: (the new token, parallelism), or None."""
        with self.db.session() as session:
            columns = (
                Rebuild.state,
                Rebuild.parallelism,
                Rebuild.driver,
                Rebuild.heartbeat_at,
                self.db_clock.sql().label("now"),
            )
            row = session.execute(select(*columns).where(Rebuild.id == rebuild_id)).first()
            if row is None or row.state not in states or not self._free(row):
                return None  # the common case (held by a live replica) takes no row lock
            row = session.execute(
                select(*columns).where(Rebuild.id == rebuild_id).with_for_update()
            ).first()
            if row is None or row.state not in states or not self._free(row):
                return None
            token = secrets.token_hex(16)
            session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id)
                .values(
                    driver=self.instance_id, lease_token=token, heartbeat_at=self.db_clock.sql()
                )
            )
        if row.driver not in (None, self.instance_id):
            log.warning("rebuild %s: took the lease over from %s", rebuild_id, row.driver)
        return token, row.parallelism

    def _free(self, row: Any) -> bool:
        """Free, ours, or stale: its holder is dead, or hung (no heartbeat for LEASE_TTL, both
        times the database's: `row.now` is its `now()`)."""
        instance_id = row.driver
        if (
            instance_id is None or instance_id == self.instance_id
        ):  # ours: no driver of it runs here
            return True
        if row.heartbeat_at is None or row.now - row.heartbeat_at > LEASE_TTL:
            return True  # connected but hung (a dead one is caught below at once)
        return not self.is_alive(instance_id)

    def renew(self, rebuild_id: int, token: str) -> str | None:
        """Extend the lease; the rebuild's state, or None when the lease is someone else's."""
        with self.db.session() as session:
            won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.lease_token == token)
                .values(heartbeat_at=self.db_clock.sql())
            ).rowcount
            if not won:
                return None
            return session.scalar(select(Rebuild.state).where(Rebuild.id == rebuild_id))

    def _hold_for_report(self, rebuild_id: int) -> None:
        """A finished rebuild without its final summary: keep our lease alive, or take a stale
        one; either way this process's reporter posts the summary."""
        with self.db.session() as session:
            ours = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.driver == self.instance_id)
                .values(heartbeat_at=self.db_clock.sql())
            ).rowcount
        if ours or self._acquire(rebuild_id, FINISHED) is not None:
            self.notify(rebuild_id)

    def _clear(self, rebuild_id: int, instance_id: str | None) -> None:
        with self.db.session() as session:
            session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id, Rebuild.driver == instance_id)
                .values(driver=None, lease_token=None)
            )

    # ---- callbacks from drivers (`DriverHost`) --------------------------------------------

    def forget(self, driver: Driver) -> None:
        with self._lock:
            if self._drivers.get(driver.rebuild_id) is driver:
                del self._drivers[driver.rebuild_id]

    def finish(self, rebuild_id: int, token: str, *, cancelled: bool) -> bool:
        """A driver's workers are done: `done` or `cancelled`, unless items are still open
        (workers died on errors: the next tick drives them). False: the lease was lost."""
        now = self.wall_clock()
        with self.db.session() as session:
            held = session.scalar(  # the row stays locked: the lease cannot move meanwhile
                select(Rebuild.id)
                .where(Rebuild.id == rebuild_id, Rebuild.lease_token == token)
                .with_for_update()
            )
            if held is None:
                return False
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
                    return True
            outcome = "cancelled" if cancelled else "done"
            ended = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                update(Rebuild)
                .where(
                    Rebuild.id == rebuild_id,
                    Rebuild.state.in_(ACTIVE),
                    Rebuild.lease_token == token,
                )
                .values(state=outcome, finished_at=now, heartbeat_at=self.db_clock.sql())
            ).rowcount
        if ended:
            self._audit_end(rebuild_id, outcome)
        log.info("rebuild %s finished", rebuild_id)
        self.notify(rebuild_id)  # the lease stays until the reporter posted the summary
        return True

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

    def notify(self, rebuild_id: int) -> None:
        for listener in self._listeners:
            try:
                listener(rebuild_id)
            except Exception:
                log.exception("rebuild listener failed")
