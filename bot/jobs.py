"""Scheduler entry points. APScheduler stores `bot.jobs:<name>` and the arguments; the live
runtime is looked up by its database key, so a restarted process picks its jobs back up."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_runtimes: dict[str, Any] = {}
_lock = threading.Lock()


def runtime_key(database_url: str) -> str:
    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def register_runtime(key: str, runtime: Any) -> None:
    with _lock:
        _runtimes[key] = runtime


def unregister_runtime(key: str) -> None:
    with _lock:
        _runtimes.pop(key, None)


def runtime(key: str) -> Any | None:
    with _lock:
        return _runtimes.get(key)


def expire_pending(key: str) -> None:
    from bot.slack.flows.caches import expire_overdue

    current = runtime(key)
    if current is None:
        return
    count = expire_overdue(current.deps)
    if count:
        log.info("expired %d pending request(s)", count)


def drive_rebuild(key: str, rebuild_id: int) -> None:
    """Watchdog of one rebuild (issue 4): starts its driver here unless it already runs."""
    current = runtime(key)
    service = getattr(getattr(current, "deps", None), "rebuilds", None)
    if service is None or service.engine is None:
        return
    service.engine.tick(int(rebuild_id))


def expire_rebuild_plans(key: str) -> None:
    """Rebuild plans nobody started within the confirmation TTL: say so on their cards."""
    from bot.slack.flows.rebuilds import expire_overdue

    current = runtime(key)
    if current is None:
        return
    count = expire_overdue(current.deps)
    if count:
        log.info("expired %d rebuild plan(s)", count)
