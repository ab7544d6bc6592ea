"""Scheduled rebuilds: the use cases (`service`), the `scheduled` rows and their claims (`store`),
what a plan selects at its start (`reevaluation`) and the outcomes (`outcomes`).
May import rebuilds, queries, the shared services modules, connect and store."""

from bot.services.schedules.outcomes import (
    CancelledBeforeStart,
    MissedStart,
    NothingMatches,
    Notice,
    NotScheduled,
    Reevaluated,
    Reminder,
    ScheduleForm,
    ScheduleMade,
    StartFailed,
    TimeRefused,
    Unscheduled,
)
from bot.services.schedules.service import Schedules
from bot.services.schedules.store import STARTING, Scheduled, ScheduleStore

__all__ = [
    "STARTING",
    "CancelledBeforeStart",
    "MissedStart",
    "NotScheduled",
    "NothingMatches",
    "Notice",
    "Reevaluated",
    "Reminder",
    "ScheduleForm",
    "ScheduleMade",
    "ScheduleStore",
    "Scheduled",
    "Schedules",
    "StartFailed",
    "TimeRefused",
    "Unscheduled",
]
