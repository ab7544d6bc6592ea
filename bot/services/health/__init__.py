"""Content health: does each item start? Probes interactive content through its URL and its
jobs, renders documents on request, and groups failures by runtime and package.
May import the shared services modules, `queries` (package impact) and connect; no other feature."""

from __future__ import annotations

from bot.services.health.engine import DEFAULT_CONCURRENCY, run_checks
from bot.services.health.outcomes import (
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
from bot.services.health.service import HealthChecks, HealthOutcome

__all__ = [
    "DEFAULT_CONCURRENCY",
    "CouldNotCheck",
    "Counts",
    "FailsToStart",
    "HealthChecks",
    "HealthOutcome",
    "HealthReport",
    "ItemHealth",
    "PackageFailures",
    "ProbeSettings",
    "Prober",
    "RuntimeFailures",
    "Skipped",
    "Starts",
    "Verdict",
    "run_checks",
    "telling_line",
]
