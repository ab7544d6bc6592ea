"""Persistence through SQLAlchemy: pending confirmations, audit log, rebuilds."""

from bot.store.db import Database
from bot.store.models import (
    AuditEntry,
    DeletionTarget,
    HealthCheck,
    HealthItem,
    PendingAction,
    Rebuild,
    RebuildItem,
    utcnow,
)

__all__ = [
    "AuditEntry",
    "Database",
    "DeletionTarget",
    "HealthCheck",
    "HealthItem",
    "PendingAction",
    "Rebuild",
    "RebuildItem",
    "utcnow",
]
