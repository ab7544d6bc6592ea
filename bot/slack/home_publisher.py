"""Republishing App Home when what it shows changes, on one background thread per process.

The rebuild engine calls `rebuild_changed(rebuild_id)` (subscribed like the rebuild reporter)
when this process takes a rebuild's lease, after items finish and when a rebuild ends; Home
calls `changed()` when a late cache listing arrives. Both only set a flag and wake the thread:
a build worker never waits for Slack. The thread then asks the database who opened Home in the
last hour (from any replica) and republishes theirs through `RepublishThrottle`: coalesced, at
most one publish per person every `per_user` seconds (5), and at most one every `spacing`
seconds in all (views.publish is Tier 4), each with the last `hash` (see `handlers.home`).

Every Home shows every server's active rebuilds, so every recent viewer is republished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from bot.services.home import RepublishThrottle
from bot.slack.background import BackgroundLoop
from bot.slack.deps import Deps
from bot.slack.handlers import home
from bot.store import utcnow

log = logging.getLogger(__name__)

IDLE = 5.0  # the thread wakes at least this often (to notice `close`)


class HomePublisher(BackgroundLoop):
    def __init__(
        self,
        deps: Deps,
        *,
        per_user: float = 5.0,
        spacing: float = 0.6,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__("home-publisher")
        self.deps = deps
        self.throttle = RepublishThrottle(per_user=per_user, spacing=spacing)
        self.clock = clock
        self.wall = wall
        self.published = 0  # republishes that succeeded (tests, logs)
        self._dirty = threading.Event()
        # Guards `_rounding` and the throttle's queue for `wait_idle`, and is notified after
        # every round.
        self._settled = threading.Condition()
        self._rounding = False

    def rebuild_changed(self, rebuild_id: int) -> None:
        """The engine's listener: a rebuild Home shows changed. Never blocks."""
        self.changed()

    def changed(self) -> None:
        self._dirty.set()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is asked of the thread: no change unread, no round under way and
        no publish due. Then no publish can follow without a new `changed()`. True if reached."""

        def idle() -> bool:
            return not (self._dirty.is_set() or self._rounding or self.throttle.pending)

        with self._settled:
            return self._settled.wait_for(idle, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.throttle.wait(self.clock())
            self._wake.wait(IDLE if wait is None else min(wait, IDLE))
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._settled:
                self._rounding = True
            try:
                self._round()
            except Exception:
                log.exception("republishing Home failed")
                self._stop.wait(1.0)
            finally:
                with self._settled:
                    self._rounding = False
                    self._settled.notify_all()

    def _round(self) -> None:
        service = self.deps.services.home
        if service is None:
            self._dirty.clear()
            return
        if self._dirty.is_set():
            self._dirty.clear()  # before reading: a change during this round asks again
            now, wall = self.clock(), self.wall()
            self.throttle.request_all(
                (
                    (
                        viewer.user,
                        (wall - viewer.published_at).total_seconds()
                        if viewer.published_at
                        else None,
                    )
                    for viewer in service.recent_viewers()
                ),
                now,
            )
        while not self._stop.is_set():
            user = self.throttle.take(self.clock())
            if user is None:
                return
            if home.publish(self.deps, user, fresh=False) is not None:
                self.published += 1
            self.throttle.published(user, self.clock())  # refused or not: it had its turn
