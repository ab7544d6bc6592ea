"""What the rebuild use cases answer: the plan card, and one type per outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.services.outcomes import ConnectFailed, Denied, NotFound, UnknownServer
from bot.services.rebuilds.store import PlanSummary, Progress


@dataclass(frozen=True, slots=True)
class PlanCard:
    """A plan as its card shows it, before it starts."""

    summary: PlanSummary
    pending_id: str
    server: str
    channel: str
    message_ts: str | None
    # pending | discarded | expired | refused; once scheduled: scheduled | unscheduled
    # (cancelled before its start) | missed | unmatched (nothing matched at the start)
    state: str = "pending"
    decided_by: str | None = None
    expires_at: datetime | None = None
    two_person: bool = False
    proposed_for: datetime | None = None  # `--at`/`--in`: the start the Schedule button asks
    proposed_label: str | None = None  # that time in the requester's zone (plain text)
    scheduled_for: datetime | None = None
    scheduled_by: str | None = None


class PlanNotifier(Protocol):
    def plan_changed(self, card: PlanCard) -> None:
        """Show the plan's new state on its card (if it has one)."""


@dataclass(frozen=True, slots=True)
class NothingToRebuild:
    description: str
    skipped: int  # matching items already in a running rebuild


@dataclass(frozen=True, slots=True)
class NoCachesDeleted:
    pass


@dataclass(frozen=True, slots=True)
class Started:
    rebuild_id: int


@dataclass(frozen=True, slots=True)
class NotStartable:
    rebuild_id: int


@dataclass(frozen=True, slots=True)
class Discarded:
    rebuild_id: int


@dataclass(frozen=True, slots=True)
class Cancelling:
    progress: Progress
    building: int
    queued: int


@dataclass(frozen=True, slots=True)
class NothingToCancel:
    rebuild_id: int
    state: str


PlanOutcome = (
    PlanCard
    | NothingToRebuild
    | NoCachesDeleted
    | Denied
    | UnknownServer
    | ConnectFailed
    | NotFound
)
