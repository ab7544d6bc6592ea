"""The timed jobs, scheduled the same way in every process; each calls one use case.

With several replicas, who acts is decided in the database, never by the scheduler: the sweeps
and reconciliation run only in the leader (an advisory lock; another replica takes the lead
within a tick if it dies), and the rebuild watch runs everywhere, because the rebuild lease
decides which replica drives each rebuild.

Scheduled rebuilds: every process keeps a `date` job at each start and each reminder
(`ScheduleTimers`), set from the database at start-up and at every sweep (a schedule made on
another replica is picked up within a sweep), and at once on the process that scheduled it.
When they fire, the claim in the database decides which process acts (`Schedules.fire`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
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
) -> ScheduleTimers:
    """`sweep_seconds`: expiry sweeps at that interval, reconciliation at twice it. Returns the
    timers of scheduled rebuilds (refresh them when this process schedules one)."""

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
    if services.health_runs is not None:  # the lease decides who probes each check
        every(WATCH_SECONDS, services.health_runs.runner.watch, "watch-health", leader=False)
    every(sweep_seconds, lambda: expire_pending(services), "expire-pending", leader=True)
    every(sweep_seconds, lambda: expire_plans(services), "expire-rebuild-plans", leader=True)
    every(2 * sweep_seconds, lambda: reconcile(services), "reconcile", leader=True)
    timers = ScheduleTimers(scheduler, services)
    every(sweep_seconds, timers.sync, "schedule-timers", leader=False)
    return timers


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
        if services.schedules is not None:
            count += services.schedules.reconcile()
    except Exception:  # the next run tries again
        log.exception("reconciliation failed")
        return
    if count:
        log.info("reconciled %d unfinished act(s)", count)


START_JOB = "scheduled-start-"
REMINDER_JOB = "scheduled-reminder-"


class ScheduleTimers:
    """This process's timers for the scheduled rebuilds (APScheduler `date` jobs, one id per
    rebuild and kind, replaced when set again). They only say when to look."""

    def __init__(self, scheduler: BaseScheduler, services: Services) -> None:
        self.scheduler = scheduler
        self.services = services

    def sync(self) -> None:
        """Timers for every rebuild scheduled in the database; none for the others."""
        schedules = self.services.schedules
        if schedules is None:
            return
        wanted: set[str] = set()
        for item in schedules.scheduled():
            wanted |= self._set(item.rebuild_id, item.scheduled_for, item.reminded)
        for job in self.scheduler.get_jobs():
            if job.id.startswith((START_JOB, REMINDER_JOB)) and job.id not in wanted:
                job.remove()

    def refresh(self, rebuild_id: int) -> None:
        """One rebuild was scheduled or cancelled here: set or drop its timers now."""
        schedules = self.services.schedules
        item = schedules.store.get(rebuild_id) if schedules is not None else None
        if item is not None and item.state == "scheduled":
            self._set(rebuild_id, item.scheduled_for, item.reminded)
            return
        for prefix in (START_JOB, REMINDER_JOB):
            job = self.scheduler.get_job(f"{prefix}{rebuild_id}")
            if job is not None:
                job.remove()

    def _set(self, rebuild_id: int, at: datetime, reminded: bool) -> set[str]:
        schedules = self.services.schedules
        assert schedules is not None
        now = schedules.clock()
        ids = {self._job(START_JOB, rebuild_id, max(at, now), schedules.fire)}
        if not reminded:
            when = max(at - schedules.reminder, now)
            ids.add(self._job(REMINDER_JOB, rebuild_id, when, schedules.remind))
        return ids

    def _job(
        self, prefix: str, rebuild_id: int, when: datetime, act: Callable[[int], object]
    ) -> str:
        job_id = f"{prefix}{rebuild_id}"

        def run() -> None:
            try:
                outcome = act(rebuild_id)
                log.info("%s%s: %s", prefix, rebuild_id, outcome)
            except Exception:  # the next sweep sets the timer again
                log.exception("the %s job failed", job_id)

        existing = self.scheduler.get_job(job_id)
        # A job added before the scheduler started has no next run time yet.
        if existing is not None and getattr(existing, "next_run_time", None) == when:
            return job_id  # unchanged
        self.scheduler.add_job(run, "date", run_date=when, id=job_id, replace_existing=True)
        return job_id
