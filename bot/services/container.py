"""Every use case of one bot, built once at start-up and handed to each surface."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.audit import AuditLog
from bot.services.authz import Authorizer
from bot.services.deletions import Deletions
from bot.services.health import HealthChecks, HealthRuns
from bot.services.home import Home
from bot.services.impact import Impact
from bot.services.queries import Queries
from bot.services.rebuild_engine import RebuildEngine
from bot.services.rebuild_store import RebuildStore
from bot.services.rebuilds import Rebuilds
from bot.services.schedules import Schedules
from bot.services.servers import Servers


@dataclass(frozen=True)
class Services:
    servers: Servers
    authz: Authorizer
    audit: AuditLog
    queries: Queries
    deletions: Deletions
    rebuilds: Rebuilds
    rebuild_store: RebuildStore  # progress queries, for the reporter
    engine: RebuildEngine
    home: Home | None = None  # App Home (None: not wired; Home events are ignored)
    impact: Impact | None = None  # `impact`, `--uses-package` (None: not wired; said so)
    schedules: Schedules | None = None  # scheduled rebuilds (None: not wired; said so)
    health: HealthChecks | None = None  # `health` (None: not wired; said so)
    health_runs: HealthRuns | None = None  # stored checks (None: run in the request, unstored)
