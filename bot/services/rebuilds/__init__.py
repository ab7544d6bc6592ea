"""Rebuilds: use cases (`service`, `plans`), planning (`planning`, `warmup`, `estimates`,
`restores`, `usage`, `visitors`), building (`leases`, `driver`, `builds`), failed items' `owners`;
`Criteria` re-exported.
May import caches, the shared services modules (`bot.services.*` at the top), connect and store."""

from bot.services.criteria import Criteria, of_filter
from bot.services.rebuilds.leases import RebuildEngine
from bot.services.rebuilds.outcomes import (
    Cancelling,
    NoCachesDeleted,
    NothingToCancel,
    NothingToRebuild,
    NotStartable,
    PlanCard,
)
from bot.services.rebuilds.owners import (
    DirectoryError,
    OwnerFound,
    OwnerLookups,
    OwnerMissing,
    Owners,
    OwnersOutcome,
)
from bot.services.rebuilds.plans import LockedContent, PlanRequest, RebuildPlanOutcome
from bot.services.rebuilds.service import Access, Rebuilds, Records
from bot.services.rebuilds.store import (
    ItemView,
    PlanSummary,
    Progress,
    RebuildNotFound,
    RebuildStore,
)
from bot.services.rebuilds.usage import UNVISITED
from bot.services.usage import PlanUsage, UsageCounter

__all__ = [
    "UNVISITED",
    "Access",
    "Cancelling",
    "Criteria",
    "DirectoryError",
    "ItemView",
    "LockedContent",
    "NoCachesDeleted",
    "NotStartable",
    "NothingToCancel",
    "NothingToRebuild",
    "OwnerFound",
    "OwnerLookups",
    "OwnerMissing",
    "Owners",
    "OwnersOutcome",
    "PlanCard",
    "PlanRequest",
    "PlanSummary",
    "PlanUsage",
    "Progress",
    "RebuildEngine",
    "RebuildNotFound",
    "RebuildPlanOutcome",
    "RebuildStore",
    "Rebuilds",
    "Records",
    "UsageCounter",
    "of_filter",
]
