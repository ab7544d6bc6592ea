"""Content health: does each item start? Probes interactive content through its URL and its
jobs, renders documents on request, and groups failures by runtime and package.
May import the shared services modules, `queries` (package impact) and connect; no other feature."""

from __future__ import annotations

from bot.services.health.engine import DEFAULT_CONCURRENCY, run_checks
from bot.services.health.outcomes import (
    UNVISITED,
    CouldNotCheck,
    Counts,
    FailsToStart,
    HealthReport,
    ItemHealth,
    PackageFailures,
    RuntimeFailures,
    Skipped,
    Starts,
    Verdict,
)
from bot.services.health.probes import Prober, ProbeSettings, telling_line
from bot.services.health.runner import HealthRunner, HealthRuns, Prepared, Progress
from bot.services.health.service import HealthChecks, HealthOutcome
from bot.services.health.store import CheckRow, HealthStore, LeaseLost

__all__ = [
    "DEFAULT_CONCURRENCY",
    "UNVISITED",
    "CheckRow",
    "CouldNotCheck",
    "Counts",
    "FailsToStart",
    "HealthChecks",
    "HealthOutcome",
    "HealthReport",
    "HealthRunner",
    "HealthRuns",
    "HealthStore",
    "ItemHealth",
    "LeaseLost",
    "PackageFailures",
    "Prepared",
    "ProbeSettings",
    "Prober",
    "Progress",
    "RuntimeFailures",
    "Skipped",
    "Starts",
    "Verdict",
    "run_checks",
    "telling_line",
]
