"""Runtime caches: listing and dry-running them on one server (`service`), and their deletion
from request to audit (`deletions`), journalled (`journal`) and run (`runner`).
May import the shared services modules (`bot.services.*` at the top), connect and store."""

from bot.services.caches.deletions import (
    DeletionRequested,
    Deletions,
    DeletionState,
    NothingToDelete,
    RequestOutcome,
)
from bot.services.caches.journal import JournalStore
from bot.services.caches.runner import DeletionRunner
from bot.services.caches.service import (
    CacheService,
    CacheTarget,
    DeletionResult,
    PlannedDeletion,
    Rejection,
)

__all__ = [
    "CacheService",
    "CacheTarget",
    "DeletionRequested",
    "DeletionResult",
    "DeletionRunner",
    "DeletionState",
    "Deletions",
    "JournalStore",
    "NothingToDelete",
    "PlannedDeletion",
    "Rejection",
    "RequestOutcome",
]
