"""The driver of one rebuild, a thread of its process: `parallelism` workers, warm-up first.

The engine starts a `Driver` when it holds the rebuild's lease; the driver builds through
`clients(server)` of the rebuild's server (read when it starts). Each worker takes the next item
of the `Dispatcher`, POSTs the build and long-polls the task with `wait=20` (a ~1 s build costs
a POST and one GET). Every transition is one small UPDATE: `building` + task id + start time
right after the POST answers; the final state + error + end time when the task ends.

Restart semantics
* `building` with a task id: re-attached by polling that task; nothing is built again.
* Finished items (succeeded, failed, cancelled, skipped) are never touched again.
* A POST in flight at the kill: the row is still `queued` (the task id is written after the
  answer), so the item is built again after the restart. Connect may then have built it twice;
  a build restores the same bundle's environment, so the cost is time, not correctness. There is
  no Connect API to find a build started by a lost request.

Connect faults
* Task polls are always retried (HttpCore retries gateway errors and resets; the driver keeps
  polling for POLL_PATIENCE more), because the build goes on regardless. A task Connect no
  longer knows (404) is built again, within POST_ATTEMPTS.
* A build POST is retried, with backoff, when it never left (`NotSent`) and also after an
  ambiguous failure (reset, timeout, 502/503/504): a duplicate build is harmless (see above)
  and a missing one defeats the rebuild. Other answers (404 deleted content, 403, ...) fail the
  item at once with Connect's reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update

from bot.connect import ConnectClient, ConnectError
from bot.services.rebuild_store import OPEN_ITEM_STATES, WARMUP
from bot.store import Database, Rebuild, RebuildItem, utcnow

log = logging.getLogger(__name__)

POLL_WAIT = 20  # Connect's maximum long-poll
HEARTBEAT_SECONDS = 2.0
POST_ATTEMPTS = 4
POLL_PATIENCE = 900.0  # seconds of failing polls before an item is given up
FEED_CHUNK = 256


class DriverHost(Protocol):
    """What a driver needs of its engine (`RebuildEngine`)."""

    db: Database
    clients: Callable[[str | None], ConnectClient]

    def renew(self, rebuild_id: int) -> str | None:
        """Extend the lease: the rebuild's state, or None when the lease is someone else's."""

    def forget(self, driver: Driver) -> None:
        """The driver thread ended (finished, stopped or failed)."""

    def finish(self, rebuild_id: int, *, cancelled: bool) -> None:
        """The workers are done: end the rebuild (unless items are left), audit, tell."""

    def notify(self, rebuild_id: int) -> None:
        """Something changed (an item finished, the rebuild ended): tell the listeners."""


@dataclass(slots=True)
class WorkItem:
    id: int
    guid: str
    wave: int
    position: int
    task_id: str | None = None
    attempts: int = 0


class _Stopped(Exception):
    """The process is shutting down: leave the item as it is for the next start."""


class Dispatcher:
    """The queue of one rebuild: re-attached builds first, then queued items in plan order,
    read from the database in chunks; later waves wait until the warm-up wave is finished."""

    def __init__(self, db: Database, rebuild_id: int, resumed: list[WorkItem], warmup_open: int):
        self._db = db
        self._rebuild_id = rebuild_id
        self._cond = threading.Condition()
        self._ready: deque[WorkItem] = deque(resumed)
        self._buffer: deque[WorkItem] = deque()
        self._cursor = (-1, -1)
        self._exhausted = False
        self._warmup_open = warmup_open
        self._closed = False
        self.warmup_done = threading.Event()
        if warmup_open == 0:
            self.warmup_done.set()

    def next(self) -> WorkItem | None:
        with self._cond:
            while True:
                if self._closed:
                    # Builds already running on Connect are still followed to their end.
                    while self._ready:
                        item = self._ready.popleft()
                        if item.task_id is not None:
                            return item
                    return None
                if self._ready:
                    return self._ready.popleft()
                if not self._buffer and not self._exhausted:
                    self._refill()
                if not self._buffer:
                    return None
                if self._buffer[0].wave > WARMUP and self._warmup_open > 0:
                    self._cond.wait()
                    continue
                return self._buffer.popleft()

    def finished(self, item: WorkItem) -> None:
        if item.wave != WARMUP:
            return
        with self._cond:
            self._warmup_open -= 1
            if self._warmup_open <= 0:
                self.warmup_done.set()
                self._cond.notify_all()

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
                select(RebuildItem.id, RebuildItem.guid, RebuildItem.wave, RebuildItem.position)
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
            self._buffer.append(WorkItem(row.id, row.guid, row.wave, row.position))
        if rows:
            self._cursor = (rows[-1].wave, rows[-1].position)
        if len(rows) < FEED_CHUNK:
            self._exhausted = True


class Driver:
    """Runs one rebuild in this process (a thread), until it is finished, cancelled or stopped."""

    def __init__(self, engine: DriverHost, rebuild_id: int, parallelism: int) -> None:
        self.engine = engine
        self.rebuild_id = rebuild_id
        self.parallelism = parallelism
        self.stopping = threading.Event()  # process shutdown or lease lost: keep state as is
        self.cancelled = threading.Event()
        self.dispatcher: Dispatcher | None = None
        self.server: str | None = None  # read when the driver starts
        self.connect: ConnectClient | None = None  # that server's client
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
        self.stopping.set()
        if self.dispatcher is not None:
            self.dispatcher.close()

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
        resumed, warmup_open = self._resume_state()
        self.dispatcher = Dispatcher(self.db, self.rebuild_id, resumed, warmup_open)
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
        if self.stopping.is_set():
            return
        self.engine.finish(self.rebuild_id, cancelled=self.cancelled.is_set())

    def _resume_state(self) -> tuple[list[WorkItem], int]:
        with self.db.session() as session:
            rows = session.execute(
                select(
                    RebuildItem.id,
                    RebuildItem.guid,
                    RebuildItem.wave,
                    RebuildItem.position,
                    RebuildItem.task_id,
                    RebuildItem.attempts,
                ).where(RebuildItem.rebuild_id == self.rebuild_id, RebuildItem.state == "building")
            ).all()
            warmup_open = session.scalar(
                select(func.count()).where(
                    RebuildItem.rebuild_id == self.rebuild_id,
                    RebuildItem.wave == WARMUP,
                    RebuildItem.state.in_(OPEN_ITEM_STATES),
                )
            )
            state, self.server = session.execute(
                select(Rebuild.state, Rebuild.server).where(Rebuild.id == self.rebuild_id)
            ).one()
        self.connect = self.engine.clients(self.server)
        if state == "cancelling":
            self.cancelled.set()
        resumed = [WorkItem(r.id, r.guid, r.wave, r.position, r.task_id, r.attempts) for r in rows]
        if resumed:
            log.info("rebuild %s: re-attaching %d running build(s)", self.rebuild_id, len(resumed))
        # Re-attached builds run even after a cancel: they are on Connect already.
        return resumed, int(warmup_open or 0)

    def _heartbeat(self) -> None:
        if self.stopping.is_set():
            return
        try:
            state = self.engine.renew(self.rebuild_id)
        except Exception:
            log.warning("rebuild %s: heartbeat failed", self.rebuild_id, exc_info=True)
            return
        if state is None:
            log.warning("rebuild %s: lease lost; another process drives it", self.rebuild_id)
            self.stop()
        elif state == "cancelling" and not self.cancelled.is_set():
            self.cancel()  # cancelled from another process

    # ---- workers -------------------------------------------------------------------------

    def _work(self) -> None:
        assert self.dispatcher is not None
        while (item := self.dispatcher.next()) is not None:
            try:
                terminal = self._build(item)
            except _Stopped:
                return
            except Exception as exc:
                log.exception("rebuild %s: item %s failed in the bot", self.rebuild_id, item.guid)
                try:
                    self._fail(item, f"connect-bot error: {type(exc).__name__}")
                except Exception:  # the database is away: the next driver picks the item up
                    log.exception("rebuild %s: could not record %s", self.rebuild_id, item.guid)
                terminal = True
            if terminal:
                self.dispatcher.finished(item)
                self.engine.notify(self.rebuild_id)

    def _build(self, item: WorkItem) -> bool:
        """Build one item to its end; False when it went back to the queue."""
        if item.task_id is None:
            task_id = self._post(item)
            if task_id is None:
                return True
            item.task_id = task_id
        return self._follow(item, item.task_id)

    def _post(self, item: WorkItem) -> str | None:
        last: ConnectError | None = None
        for attempt in range(1, POST_ATTEMPTS + 1):
            self._check_stop()
            if self.cancelled.is_set():
                return None  # stays queued; marked cancelled when the driver finishes
            item.attempts += 1
            try:
                # bundle_id None: Connect builds the active bundle (a redeploy since the plan
                # already built the new one; building an old bundle would be wrong).
                task_id = self._client().content.build(item.guid)
            except ConnectError as exc:
                if not exc.transient:
                    self._fail(item, _post_reason(exc))
                    return None
                last = exc
                log.warning(
                    "rebuild %s: build request for %s failed (%s), attempt %d",
                    self.rebuild_id,
                    item.guid,
                    exc.reason,
                    attempt,
                )
                self._sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
                continue
            self._write(
                item.id,
                state="building",
                task_id=task_id,
                attempts=item.attempts,
                started_at=utcnow(),
                error=None,
            )
            return task_id
        reason = last.reason if last else "unknown error"
        self._fail(
            item, f"Connect did not take the build request ({POST_ATTEMPTS} tries): {reason}"
        )
        return None

    def _follow(self, item: WorkItem, task_id: str) -> bool:
        first = 0
        failing_since: float | None = None
        while True:
            self._check_stop()
            try:
                task = self._client().tasks.get(task_id, first=first, wait=POLL_WAIT)
            except ConnectError as exc:
                if exc.not_found and item.attempts < POST_ATTEMPTS:
                    log.warning("rebuild %s: Connect lost task %s", self.rebuild_id, task_id)
                    self._write(item.id, state="queued", task_id=None)
                    item.task_id = None
                    assert self.dispatcher is not None
                    self.dispatcher.retry(item)
                    return False
                if not exc.transient:
                    self._fail(item, f"Connect would not report on task {task_id}: {exc.reason}")
                    return True
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > POLL_PATIENCE:
                    self._fail(item, f"lost track of task {task_id}: {exc.reason}")
                    return True
                self._sleep(2.0)
                continue
            self._check_stop()  # shutting down: the next start re-attaches this task
            failing_since = None
            first = task.last
            if task.finished:
                if task.succeeded:
                    self._write(item.id, state="succeeded", finished_at=utcnow())
                else:
                    self._fail(item, task.failure_reason)
                return True

    def _fail(self, item: WorkItem, reason: str) -> None:
        self._write(item.id, state="failed", error=reason[:4000], finished_at=utcnow())

    def _write(self, item_id: int, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(update(RebuildItem).where(RebuildItem.id == item_id).values(**values))

    def _client(self) -> ConnectClient:
        assert self.connect is not None, "the driver has not started"
        return self.connect

    def _check_stop(self) -> None:
        if self.stopping.is_set():
            raise _Stopped

    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise _Stopped


def _post_reason(exc: ConnectError) -> str:
    if exc.status == 404:
        return f"Connect has no such content, or nothing deployed to build ({exc.reason})"
    if exc.status == 403:
        return f"Connect refused: the bot's API key may not build this content ({exc.reason})"
    return exc.reason
