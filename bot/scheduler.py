"""APScheduler 3.x: a background scheduler with an in-memory job store, in every process.

APScheduler 3 cannot share a job store between several schedulers (its FAQ: jobs then run
twice or are missed), so nothing is persisted here: every process schedules the same timed
jobs at start-up, and each job decides who acts: the leader (an advisory lock) for the sweeps,
the rebuild lease for rebuilds. The database is the source of truth, not the scheduler.
"""

from __future__ import annotations

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler


def create_scheduler(*, workers: int = 8) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(workers)},
        job_defaults={
            # One run of a job at a time; a late run happens once, however late.
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": None,
        },
        timezone="UTC",
    )
