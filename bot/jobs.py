"""Scheduler entry points. APScheduler stores `bot.jobs:<name>` and the arguments; the live
runtime is looked up by its database key, so a restarted process picks its jobs back up.
Each job calls one use case of `runtime.services`."""

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
    """Deletion requests nobody confirmed within the TTL: say so on their cards."""
    current = runtime(key)
    if current is None:
        return
    count = current.services.deletions.expire_overdue()
    if count:
        log.info("expired %d pending request(s)", count)


def drive_rebuild(key: str, rebuild_id: int) -> None:
    """Watchdog of one rebuild: starts its driver here unless it already runs."""
    current = runtime(key)
    if current is not None:
        current.services.engine.tick(int(rebuild_id))


def expire_rebuild_plans(key: str) -> None:
    """Rebuild plans nobody started within the TTL: say so on their cards."""
    current = runtime(key)
    if current is None:
        return
    count = current.services.rebuilds.expire_overdue()
    if count:
        log.info("expired %d rebuild plan(s)", count)


def reconcile(key: str) -> None:
    """Deletions and rebuild starts that a process which died left half-done: finish them."""
    current = runtime(key)
    if current is None:
        return
    try:
        count = current.services.deletions.reconcile() + current.services.rebuilds.reconcile()
    except Exception:  # the next run tries again; a failure here must not stop the scheduler
        log.exception("reconciliation failed")
        return
    if count:
        log.info("reconciled %d unfinished act(s)", count)
