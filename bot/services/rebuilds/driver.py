"""The driver of one rebuild, a thread of its process: `parallelism` workers, warm-up first.

The engine starts a `Driver` when it took the rebuild's lease (a token, new on each
acquisition); every write the driver makes is fenced on that token, and the driver stops at
once, sending nothing more, when a write or its heartbeat finds the lease gone. It builds through
`clients(server)` of the rebuild's server (read when it starts). Each worker takes the next item
of the `Dispatcher` and builds it (`bot.services.rebuilds.builds`: the journal, the POST, a
long-poll of the task with `wait=20`, retries within BOT_CONNECT_RETRY_SECONDS). Every
transition is one small UPDATE: `requested_at` before the POST leaves; `building` + task id +
start time when it answers; the final state + error + end time when the task ends.

Restart semantics
* `building` with a task id: re-attached by polling that task; nothing is built again.
* `building` without a task id (a job found by the check below): the check finds it again.
* Finished items (succeeded, failed, cancelled, skipped) are never touched again.
* A POST in flight at the kill leaves the row `queued` with `requested_at` set: a build it
  started is found among Connect's jobs and followed; with none, the item waits (`later`) until
  that request can no longer reach Connect, then is re-sent and `resent` counts it (see
  `builds`).

Lease timing (database time for what replicas compare, the monotonic clock for self-fencing)
* LEASE_TTL: another replica takes over a lease whose holder is alive (its advisory lock) only
  when its heartbeat, written and judged in database time, is older than this: a holder that is
  connected but hung. A dead holder is taken over at once.
* A driver sends a build request only while its last renewal (monotonic) is younger than
  FRESH_SECONDS: the lease outlives the request's answer by a margin, whatever the clocks say.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select

from bot.connect import ConnectClient, ConnectError
from bot.connect.models import INTERACTIVE_MODES
from bot.services.rebuilds.builds import (
    DEFAULT_RETRY_SECONDS,
    REQUEST_SECONDS,
    Builds,
    LeaseLost,
    SendGate,
    Stopped,
    WorkItem,
)
from bot.services.rebuilds.planning import item_runtime_keys
from bot.services.rebuilds.store import OPEN_ITEM_STATES, WARMUP
from bot.services.rebuilds.verify import Verifier
from bot.store import Database, Rebuild, RebuildItem
from bot.store.dbtime import DbClock

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
FEED_CHUNK = 256
LEASE_TTL = timedelta(seconds=120)  # well above REQUEST_SECONDS (40 s)
FENCE_MARGIN = 10.0
# The newest renewal after which a request may still leave: its answer is due before the lease
# could lapse, with a margin for the renewal's own round trip.
FRESH_SECONDS = LEASE_TTL.total_seconds() - REQUEST_SECONDS - FENCE_MARGIN


class DriverHost(Protocol):
    """What a driver needs of its engine (`RebuildEngine`)."""

    db: Database
    clients: Callable[[str | None], ConnectClient]
    retry_seconds: float | None  # None: the client's budget (BOT_CONNECT_RETRY_SECONDS)
    clock: Callable[[], float]  # monotonic: the retry budget, self-fencing
    db_clock: DbClock  # what replicas compare

    def renew(self, rebuild_id: int, token: str) -> str | None:
        """Extend the lease: the rebuild's state, or None when the lease is someone else's."""

    def forget(self, driver: Driver) -> None:
        """The driver thread ended (finished, stopped or failed)."""

    def finish(self, rebuild_id: int, token: str, *, cancelled: bool) -> bool:
        """The workers are done: end the rebuild (unless items are left), audit, tell.
        False: the lease is someone else's."""

    def notify(self, rebuild_id: int) -> None:
        """Something changed (an item finished, the rebuild ended): tell the listeners."""


class Dispatcher:
    """The queue of one rebuild: re-attached builds first, then queued items in plan order,
    read from the database in chunks. An item waits until the warm-up items of its own cold
    runtimes are finished (not the whole warm-up wave); a warm-up item waits only for a runtime
    an earlier warm-up item builds. `warmups`: (id, cold runtime keys, open?) of the warm-up
    items, in plan order."""

    def __init__(
        self,
        db: Database,
        rebuild_id: int,
        resumed: list[WorkItem],
        warmups: list[tuple[int, tuple[str, ...], bool]],
        clock: Callable[[], float],
    ):
        self._db = db
        self._clock = clock  # monotonic
        self._later: list[tuple[float, int, WorkItem]] = []  # (due, seq, item): a heap
        self._seq = itertools.count()
        self._rebuild_id = rebuild_id
        self._cond = threading.Condition()
        self._ready: deque[WorkItem] = deque(resumed)
        self._buffer: deque[tuple[WorkItem, tuple[str, ...]]] = deque()
        self._cursor = (-1, -1)
        self._exhausted = False
        self._warmer: dict[str, int] = {}  # runtime key -> the first warm-up item building it
        for item_id, keys, _ in warmups:
            for key in keys:
                self._warmer.setdefault(key, item_id)
        self._warming = {item_id for item_id, _, is_open in warmups if is_open}
        self._closed = False

    def next(self) -> WorkItem | None:
        with self._cond:
            while True:
                if self._closed:
                    # Builds already running on Connect are still followed to their end.
                    while self._ready:
                        item = self._ready.popleft()
                        if item.on_connect:
                            return item
                    return None
                if self._ready:
                    return self._ready.popleft()
                if self._later and self._later[0][0] <= self._clock():
                    return heapq.heappop(self._later)[2]
                startable = self._take_startable()
                if startable is not None:
                    return startable
                if not self._exhausted:
                    self._refill()  # a chunk further on may hold items of warm runtimes
                    continue
                if not self._buffer and not self._later:
                    return None
                self._cond.wait(self._later[0][0] - self._clock() if self._later else None)

    def _take_startable(self) -> WorkItem | None:
        """The first buffered item none of whose runtimes is still warming elsewhere."""
        for index, (item, keys) in enumerate(self._buffer):
            if not self._waits(item.id, keys):
                del self._buffer[index]
                return item
        return None

    def _waits(self, item_id: int, keys: tuple[str, ...]) -> bool:
        for key in keys:
            warmer = self._warmer.get(key)
            if warmer is not None and warmer != item_id and warmer in self._warming:
                return True
        return False

    def finished(self, item: WorkItem) -> None:
        with self._cond:
            if item.id not in self._warming:
                return
            self._warming.discard(item.id)
            self._cond.notify_all()

    def later(self, item: WorkItem, seconds: float) -> None:
        """Take the item up again in `seconds` (another process's request may be under way)."""
        with self._cond:
            heapq.heappush(self._later, (self._clock() + seconds, next(self._seq), item))
            self._cond.notify()

    def retry(self, item: WorkItem) -> None:
        """Build again soon (Connect lost the task)."""
        with self._cond:
            self._ready.append(item)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _refill(self) -> None:
        wave, position = self._cursor
        with self._db.session() as session:
            rows = session.execute(
                select(*_ITEM_COLUMNS)
                .where(
                    RebuildItem.rebuild_id == self._rebuild_id,
                    RebuildItem.state == "queued",
                    or_(
                        RebuildItem.wave > wave,
                        (RebuildItem.wave == wave) & (RebuildItem.position > position),
                    ),
                )
                .order_by(RebuildItem.wave, RebuildItem.position)
                .limit(FEED_CHUNK)
            ).all()
        for row in rows:
            self._buffer.append((_work_item(row), item_runtime_keys(row.runtimes, row.runtime)))
        if rows:
            self._cursor = (rows[-1].wave, rows[-1].position)
        if len(rows) < FEED_CHUNK:
            self._exhausted = True


class Driver:
    """Runs one rebuild in this process (a thread), until it is finished, cancelled or stopped."""

    def __init__(
        self,
        engine: DriverHost,
        rebuild_id: int,
        parallelism: int,
        lease: str,
        renewed: float,
    ) -> None:
        self.engine = engine
        self.rebuild_id = rebuild_id
        self.parallelism = parallelism
        self.lease = lease  # the token every write is fenced on
        self.renewed = renewed  # monotonic, taken before the lease's last renewal began
        self.gate = SendGate()  # the build requests under way
        self.stopping = threading.Event()  # process shutdown or lease lost: keep state as is
        self.cancelled = threading.Event()
        self.lost = threading.Event()  # the lease moved to another process
        self.dispatcher: Dispatcher | None = None
        self.server: str | None = None  # read when the driver starts
        self.connect: ConnectClient | None = None  # that server's client
        self.builds: Builds | None = None  # builds items on it
        self.verifier: Verifier | None = None  # probes the items that built (not --no-verify)
        self.thread = threading.Thread(target=self._run, name=f"rebuild-{rebuild_id}", daemon=True)

    @property
    def db(self) -> Database:
        return self.engine.db

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()
        if self.dispatcher is not None:
            self.dispatcher.close()

    def stop(self) -> None:
        self.gate.close()
        self.stopping.set()
        if self.dispatcher is not None:
            self.dispatcher.close()

    def drain(self, timeout: float) -> int:
        """After `stop`: wait for the build requests under way; how many are still out."""
        return self.gate.drain(timeout)

    def lease_fresh(self) -> bool:
        return self.engine.clock() - self.renewed < FRESH_SECONDS

    def join(self, timeout: float) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout)

    # ---- the driver thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._drive()
        except Exception:
            # The watchdog tick restarts a driver that died; nothing is lost.
            log.exception("rebuild %s driver failed", self.rebuild_id)
        finally:
            self.engine.forget(self)

    def _drive(self) -> None:
        resumed, warmups = self._resume_state()
        self.dispatcher = Dispatcher(
            self.db, self.rebuild_id, resumed, warmups, clock=self.engine.clock
        )
        if self.cancelled.is_set() or self.stopping.is_set():
            self.dispatcher.close()
        workers = [
            threading.Thread(target=self._work, name=f"rebuild-{self.rebuild_id}-{n}", daemon=True)
            for n in range(self.parallelism)
        ]
        for worker in workers:
            worker.start()
        while alive := [worker for worker in workers if worker.is_alive()]:
            alive[0].join(HEARTBEAT_SECONDS)
            self._heartbeat()
        # The last probes: the rebuild ends once every item that built is verified.
        while self.verifier is not None and self.verifier.busy() and not self.stopping.is_set():
            self.stopping.wait(min(HEARTBEAT_SECONDS, 0.2))
            self._heartbeat_due()
        if self.verifier is not None:
            self.verifier.shutdown()
        if self.stopping.is_set():
            return
        if not self.engine.finish(self.rebuild_id, self.lease, cancelled=self.cancelled.is_set()):
            self._lease_lost()

    def _resume_state(self) -> tuple[list[WorkItem], list[tuple[int, tuple[str, ...], bool]]]:
        with self.db.session() as session:
            rows = session.execute(
                select(*_ITEM_COLUMNS).where(
                    RebuildItem.rebuild_id == self.rebuild_id, RebuildItem.state == "building"
                )
            ).all()
            # One row per runtime at most: (id, runtime keys, still open?) in plan order.
            warmups = [
                (w.id, item_runtime_keys(w.runtimes, w.runtime), w.state in OPEN_ITEM_STATES)
                for w in session.execute(
                    select(
                        RebuildItem.id, RebuildItem.runtimes, RebuildItem.runtime, RebuildItem.state
                    )
                    .where(
                        RebuildItem.rebuild_id == self.rebuild_id,
                        RebuildItem.wave == WARMUP,
                        RebuildItem.state != "skipped",
                    )
                    .order_by(RebuildItem.position)
                ).all()
            ]
            state, self.server, flags = session.execute(
                select(Rebuild.state, Rebuild.server, Rebuild.progress).where(
                    Rebuild.id == self.rebuild_id
                )
            ).one()
        self.connect = self.engine.clients(self.server)
        if not (flags or {}).get("no_verify"):
            self.verifier = Verifier(
                self.db,
                self.rebuild_id,
                self.connect,
                lease=self.lease,
                stopping=self.stopping,
                notify=lambda: self.engine.notify(self.rebuild_id),
                lost=self._lease_lost,
            )
            # Built by a driver before this one, not yet verified: probed again.
            self.verifier.resume()
        warmups = self._cold_only(warmups)
        self.builds = Builds(
            self.db,
            self.rebuild_id,
            self.connect,
            retry_seconds=self._retry_seconds(self.connect),
            clock=self.engine.clock,
            stopping=self.stopping,
            cancelled=self.cancelled,
            requeue=self._requeue,
            later=self._later,
            lease=self.lease,
            lease_fresh=self.lease_fresh,
            gate=self.gate,
            db_clock=self.engine.db_clock,
            verify=self.verifier.submit if self.verifier is not None else None,
        )
        if state == "cancelling":
            self.cancelled.set()
        resumed = [_work_item(row, running=True) for row in rows]
        if resumed:
            log.info("rebuild %s: re-attaching %d running build(s)", self.rebuild_id, len(resumed))
        # Re-attached builds run even after a cancel: they are on Connect already.
        return resumed, warmups

    def _cold_only(
        self, warmups: list[tuple[int, tuple[str, ...], bool]]
    ) -> list[tuple[int, tuple[str, ...], bool]]:
        """The warm-ups, keeping only the runtimes whose cache Connect does not list: a build
        on a cached runtime is warm, so nothing need wait for another one. When Connect cannot
        say, every runtime waits for its warm-up (the safe order)."""
        if not warmups:
            return warmups
        assert self.connect is not None
        try:
            cached = {cache.label.lower() for cache in self.connect.caches.list()}
        except ConnectError as exc:  # e.g. a key without the administrator role
            log.info(
                "rebuild %s: Connect did not list its caches (%s); every runtime waits for its"
                " warm-up",
                self.rebuild_id,
                exc.reason,
            )
            return warmups
        cold = [
            (item_id, tuple(key for key in keys if key.lower() not in cached), is_open)
            for item_id, keys, is_open in warmups
        ]
        return [warmup for warmup in cold if warmup[1]]

    def _heartbeat_due(self) -> None:
        """A heartbeat, if the last renewal is HEARTBEAT_SECONDS old."""
        if self.engine.clock() - self.renewed >= HEARTBEAT_SECONDS:
            self._heartbeat()

    def _heartbeat(self) -> None:
        if self.stopping.is_set():
            return
        began = self.engine.clock()  # the renewal's database time is after this
        try:
            state = self.engine.renew(self.rebuild_id, self.lease)
        except Exception:
            log.warning("rebuild %s: heartbeat failed", self.rebuild_id, exc_info=True)
            return
        if state is None:
            self._lease_lost()
            return
        self.renewed = began
        if state == "cancelling" and not self.cancelled.is_set():
            self.cancel()  # cancelled from another process

    def _lease_lost(self) -> None:
        if not self.lost.is_set():
            self.lost.set()
            log.warning("rebuild %s: lease lost; another process drives it", self.rebuild_id)
        self.stop()

    def _retry_seconds(self, client: ConnectClient) -> float:
        budget = self.engine.retry_seconds
        if budget is None:
            budget = getattr(client, "retry_seconds", None)  # test doubles may not have one
        return float(budget) if budget else DEFAULT_RETRY_SECONDS

    def _requeue(self, item: WorkItem) -> None:
        """Build again soon (Connect lost the task)."""
        assert self.dispatcher is not None
        self.dispatcher.retry(item)

    def _later(self, item: WorkItem, seconds: float) -> None:
        """Take the item up again in `seconds` (another process's request may be under way)."""
        assert self.dispatcher is not None
        self.dispatcher.later(item, seconds)

    # ---- workers -------------------------------------------------------------------------

    def _work(self) -> None:
        assert self.dispatcher is not None and self.builds is not None
        while (item := self.dispatcher.next()) is not None:
            try:
                terminal = self.builds.build(item)
            except LeaseLost:
                self._lease_lost()
                return
            except Stopped:
                return
            except Exception as exc:
                log.exception("rebuild %s: item %s failed in the bot", self.rebuild_id, item.guid)
                try:
                    self.builds.fail(item, f"connect-bot error: {type(exc).__name__}")
                except LeaseLost:
                    self._lease_lost()
                    return
                except Exception:  # the database is away: the next driver picks the item up
                    log.exception("rebuild %s: could not record %s", self.rebuild_id, item.guid)
                terminal = True
            if terminal:
                self.dispatcher.finished(item)
                self.engine.notify(self.rebuild_id)


_ITEM_COLUMNS = (
    RebuildItem.id,
    RebuildItem.guid,
    RebuildItem.wave,
    RebuildItem.position,
    RebuildItem.task_id,
    RebuildItem.attempts,
    RebuildItem.requested_at,
    RebuildItem.resent,
    RebuildItem.runtimes,
    RebuildItem.runtime,
    RebuildItem.app_mode,
)


def _work_item(row: Any, *, running: bool = False) -> WorkItem:
    return WorkItem(
        row.id,
        row.guid,
        row.wave,
        row.position,
        task_id=row.task_id,
        attempts=row.attempts or 0,
        requested_at=row.requested_at,
        resent=row.resent or 0,
        running=running,
        interactive=row.app_mode in INTERACTIVE_MODES,
    )
