"""What the rebuild use cases answer: the plan card, and one type per outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.services.outcomes import ConnectFailed, Denied, NotFound, UnknownServer
from bot.services.rebuild_store import PlanSummary, Progress


@dataclass(frozen=True, slots=True)
class PlanCard:
    """A plan as its card shows it, before it starts."""

    summary: PlanSummary
    pending_id: str
    server: str
    channel: str
    message_ts: str | None
    state: str = "pending"  # pending | discarded | expired | refused
    decided_by: str | None = None
    expires_at: datetime | None = None
    two_person: bool = False


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
