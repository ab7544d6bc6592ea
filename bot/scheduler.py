"""APScheduler 3.x: a background scheduler whose job store lives in the bot's own database.

Jobs are referenced by text (`module:function`) with plain arguments, so they survive restarts;
the functions find the live runtime through `bot.jobs`.
"""

from __future__ import annotations

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bot.store import Database


def create_scheduler(db: Database, *, workers: int = 8) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine)},
        executors={"default": ThreadPoolExecutor(workers)},
        job_defaults={
            # One instance per job; after downtime run once, however late (restart safety).
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": None,
        },
        timezone="UTC",
    )
