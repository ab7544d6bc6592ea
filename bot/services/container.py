"""Every use case of one bot, built once at start-up and handed to each surface."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.audit import AuditStore
from bot.services.authz import Authorizer
from bot.services.caches import Deletions
from bot.services.health import HealthChecks, HealthRuns
from bot.services.home import Home
from bot.services.queries import Impact, Queries
from bot.services.rebuilds import RebuildEngine, Rebuilds, RebuildStore
from bot.services.schedules import Schedules
from bot.services.servers import Servers


@dataclass(frozen=True)
class Services:
    servers: Servers
    authz: Authorizer
    audit: AuditStore
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
