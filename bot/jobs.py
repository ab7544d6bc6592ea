"""The timed jobs, scheduled the same way in every process; each calls one use case.

With several replicas, who acts is decided in the database, never by the scheduler: the sweeps
and reconciliation run only in the leader (an advisory lock; another replica takes the lead
within a tick if it dies), and the rebuild watch runs everywhere, because the rebuild lease
decides which replica drives each rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from apscheduler.schedulers.base import BaseScheduler

from bot.services.container import Services

log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 5
WATCH_SECONDS = 5


class Coordination(Protocol):
    def is_leader(self) -> bool: ...

    def keep_alive(self) -> None: ...


def schedule(
    scheduler: BaseScheduler,
    services: Services,
    coordinator: Coordination,
    *,
    sweep_seconds: int = 30,
) -> None:
    """`sweep_seconds`: expiry sweeps at that interval, reconciliation at twice it."""

    def every(seconds: int, job: Callable[[], None], name: str, *, leader: bool) -> None:
        def run() -> None:
            if leader and not coordinator.is_leader():
                return
            try:
                job()
            except Exception:  # the next occurrence tries again; the scheduler must go on
                log.exception("the %s job failed", name)

        scheduler.add_job(run, "interval", seconds=seconds, id=name, replace_existing=True)

    every(KEEP_ALIVE_SECONDS, coordinator.keep_alive, "keep-alive", leader=False)
    every(WATCH_SECONDS, services.engine.watch, "watch-rebuilds", leader=False)
    every(sweep_seconds, lambda: expire_pending(services), "expire-pending", leader=True)
    every(sweep_seconds, lambda: expire_plans(services), "expire-rebuild-plans", leader=True)
    every(2 * sweep_seconds, lambda: reconcile(services), "reconcile", leader=True)


def expire_pending(services: Services) -> None:
    """Deletion requests nobody confirmed within the TTL: say so on their cards."""
    count = services.deletions.expire_overdue()
    if count:
        log.info("expired %d pending request(s)", count)


def expire_plans(services: Services) -> None:
    """Rebuild plans nobody started within the TTL: say so on their cards."""
    count = services.rebuilds.expire_overdue()
    if count:
        log.info("expired %d rebuild plan(s)", count)


def reconcile(services: Services) -> None:
    """Deletions and rebuild starts that a process which died left half-done: finish them."""
    try:
        count = services.deletions.reconcile() + services.rebuilds.reconcile()
    except Exception:  # the next run tries again
        log.exception("reconciliation failed")
        return
    if count:
        log.info("reconciled %d unfinished act(s)", count)
