"""What the schedule use cases answer, and what they tell a scheduled rebuild's thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.services.rebuilds import PlanCard
from bot.services.schedules.store import Scheduled

# ---- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleMade:
    item: Scheduled


@dataclass(frozen=True, slots=True)
class TimeRefused:
    """No such start time (past, too far ahead, none given): nothing changed."""

    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleForm:
    """What the "Schedule…" modal needs: the plan, and the time it offers first."""

    pending_id: str
    rebuild_id: int
    description: str
    initial: datetime


@dataclass(frozen=True, slots=True)
class Unscheduled:
    item: Scheduled
    by: str


@dataclass(frozen=True, slots=True)
class NotScheduled:
    """Not a rebuild waiting for its start: a running one may be cancelled instead."""

    rebuild_id: int


# ---- what the thread is told -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reminder:
    item: Scheduled
    lead: timedelta


@dataclass(frozen=True, slots=True)
class MissedStart:
    item: Scheduled
    late: timedelta
    grace: timedelta


@dataclass(frozen=True, slots=True)
class CancelledBeforeStart:
    item: Scheduled
    by: str


@dataclass(frozen=True, slots=True)
class Reevaluated:
    """The selection asked again at the start: how the plan changed."""

    item: Scheduled
    planned: int
    matching: int
    added: list[str] = field(default_factory=list)  # titles, at most NOTICE_TITLES
    added_count: int = 0
    removed: list[str] = field(default_factory=list)
    removed_count: int = 0
    late: timedelta | None = None  # started late: the bot was not running at the time
    error: str | None = None  # Connect could not say: the planned items are built


@dataclass(frozen=True, slots=True)
class NothingMatches:
    item: Scheduled


@dataclass(frozen=True, slots=True)
class StartFailed:
    """The start raised (a database error, a bug, an odd answer from Connect): the rebuild is
    scheduled again and the next sweep tries it again, until the grace runs out."""

    item: Scheduled
    error: str


Notice = Reminder | MissedStart | CancelledBeforeStart | Reevaluated | NothingMatches | StartFailed


class ScheduleNotifier(Protocol):
    def plan_changed(self, card: PlanCard) -> None:
        """Show the plan's new state on its card."""

    def schedule_told(self, notice: Notice) -> None:
        """Say `notice` in the rebuild's thread."""
