"""Every rebuild verifies: after an interactive item built, probe it (does it start?).

A build that succeeded may still leave an item that cannot start (a runtime cache re-used after
a system change still holds packages compiled against the old library). So the driver hands
each interactive item that built to a `Verifier`, a small pool of its own (the health check's
concurrency): probing never holds a build slot.

* The build's end writes `verified = pending` with `succeeded` (one UPDATE), before the item is
  handed over; the probe's verdict then writes `starts`, `fails` or `unchecked` (+ why), fenced
  on the driver's lease like every other write.
* Crash safety: a driver that starts (after a restart, or taking over) probes again every item
  of its rebuild still `pending`; the rebuild ends only when none is left. A probe repeated so
  costs one more request of the content URL, nothing more.
* `--no-verify` (the rebuild's `no_verify` flag): nothing is marked pending, nothing probed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update

from bot.connect import ConnectClient, ConnectError
from bot.services.health import DEFAULT_CONCURRENCY, Prober, ProbeSettings
from bot.services.health.outcomes import CouldNotCheck, FailsToStart, ItemHealth, Starts
from bot.services.health.selection import Probe
from bot.services.rebuilds.builds import LeaseLost, Stopped, WorkItem, leased
from bot.store import Database, RebuildItem

log = logging.getLogger(__name__)

PENDING = "pending"
STARTS = "starts"
FAILS = "fails"
UNCHECKED = "unchecked"
MAX_ERROR = 2000


def verdict_of(result: ItemHealth) -> tuple[str, str | None]:
    """The row's `verified` and `verify_error` for a probe's result."""
    verdict = result.verdict
    if isinstance(verdict, Starts):
        return STARTS, None
    if isinstance(verdict, FailsToStart):
        return FAILS, verdict.reason[:MAX_ERROR]
    if isinstance(verdict, CouldNotCheck):
        return UNCHECKED, verdict.reason[:MAX_ERROR]
    return UNCHECKED, "not probed"


class Verifier:
    """Probes built items of one rebuild, `concurrency` at a time, off the build slots."""

    def __init__(
        self,
        db: Database,
        rebuild_id: int,
        client: ConnectClient,
        *,
        lease: str | None,
        stopping: threading.Event,
        notify: Callable[[], None],
        lost: Callable[[], None],
        concurrency: int = DEFAULT_CONCURRENCY,
        settings: ProbeSettings | None = None,
    ) -> None:
        self.db = db
        self.rebuild_id = rebuild_id
        self.client = client.single_try()
        self.lease = lease
        self.stopping = stopping
        self.notify = notify
        self.lost = lost
        self.prober = Prober(self.client, settings=settings, sleep=self._sleep)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix=f"verify-{rebuild_id}"
        )
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()

    def submit(self, item: WorkItem) -> None:
        with self._lock:
            self._futures.append(self._pool.submit(self._verify, item))

    def resume(self) -> int:
        """Probe again the items a driver before this one built but did not verify."""
        with self.db.session() as session:
            rows = session.execute(
                select(RebuildItem.id, RebuildItem.guid, RebuildItem.wave, RebuildItem.position)
                .where(RebuildItem.rebuild_id == self.rebuild_id, RebuildItem.verified == PENDING)
                .order_by(RebuildItem.wave, RebuildItem.position)
            ).all()
        for row in rows:
            self.submit(WorkItem(row.id, row.guid, row.wave, row.position, interactive=True))
        if rows:
            log.info("rebuild %s: verifying %d built item(s) again", self.rebuild_id, len(rows))
        return len(rows)

    def busy(self) -> bool:
        with self._lock:
            self._futures = [future for future in self._futures if not future.done()]
            return bool(self._futures)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _verify(self, item: WorkItem) -> None:
        if self.stopping.is_set():
            return  # left `pending`: the next driver probes it
        try:
            verified, error = self._probe(item)
            self._write(item.id, verified=verified, verify_error=error)
        except LeaseLost:
            self.lost()
            return
        except Stopped:
            return
        except Exception as exc:  # the bot's own error: say so rather than leave it pending
            log.exception("rebuild %s: verifying %s failed in the bot", self.rebuild_id, item.guid)
            try:
                error = f"connect-bot error: {type(exc).__name__}"
                self._write(item.id, verified=UNCHECKED, verify_error=error)
            except LeaseLost:
                self.lost()
                return
            except Exception:  # the database is away: the next driver probes it again
                log.exception("rebuild %s: could not record %s", self.rebuild_id, item.guid)
                return
        self.notify()

    def _probe(self, item: WorkItem) -> tuple[str, str | None]:
        try:
            content = self.client.content.get(item.guid)
        except ConnectError as exc:
            return UNCHECKED, f"Connect would not describe the item: {exc.reason}"[:MAX_ERROR]
        return verdict_of(self.prober.check(content, Probe.VISIT))

    def _write(self, item_id: int, **values: Any) -> None:
        query = update(RebuildItem).where(RebuildItem.id == item_id)
        if self.lease is not None:
            query = query.where(leased(self.rebuild_id, self.lease))
        with self.db.session() as session:
            written = session.execute(query.values(**values)).rowcount  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
        if not written and self.lease is not None:
            raise LeaseLost

    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise Stopped
