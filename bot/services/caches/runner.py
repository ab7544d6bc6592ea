"""Carrying out a confirmed deletion, cache by cache, journalled and audited before each act;
and finishing one that a process which died left half-done.

Never deletes twice: a cache is sent only from `planned`, and a cache whose DELETE may have
reached Connect is never sent again automatically: the bot checks Connect's cache list and
says what is true.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.connect import ConnectError, RuntimeCache
from bot.services.audit import AuditStore
from bot.services.caches.journal import PLANNED, RUNNING, SENT, JournalRow, JournalStore
from bot.services.caches.service import CacheService, DeletionResult, Unanswered
from bot.services.outcomes import UnknownServer
from bot.services.servers import Servers

ACTION = "cache_delete"
SETTLE_SECONDS = 30.0  # how long an ambiguous outcome is re-checked before it is reported
SETTLE_INTERVAL = 2.0


class DeletionRunner:
    def __init__(
        self,
        journal: JournalStore,
        audit: AuditStore,
        servers: Servers,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.journal = journal
        self.audit = audit
        self.servers = servers
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._sleep = sleep

    def run(
        self,
        request_id: str,
        *,
        actor: str,
        channel: str,
        server: str,
        on_progress: Callable[[], None] = lambda: None,
    ) -> None:
        """Send every `planned` target, one at a time, and record what came of each."""
        caches = self._caches(server)
        planned = [row for row in self.journal.rows(request_id) if row.state == PLANNED]
        for index, row in enumerate(planned):
            if caches is None:
                self.journal.finish(
                    row.id,
                    succeeded=False,
                    detail=f"the Connect server {server} is no longer configured; nothing was sent",
                )
                continue
            audit_id = self.audit.begin(
                actor=actor,
                action=ACTION,
                target=row.cache.label,
                channel=channel,
                reference=request_id,
                server=server,
            )
            if not self.journal.sending(row.id, audit_id):
                self.audit.complete(audit_id, "skipped", "another process sent this deletion")
                continue
            self._record(row, audit_id, self._delete(caches, row))
            if index < len(planned) - 1:
                on_progress()

    def recover(self, request_id: str, *, server: str) -> list[JournalRow]:
        """Finish the targets a dead process sent: follow a known task, or check the list.
        Returns the targets still `planned` (never sent), for the caller to resume or drop."""
        caches = self._caches(server)
        for row in self.journal.rows(request_id):
            if row.state not in (SENT, RUNNING):
                continue
            if caches is None:
                result = DeletionResult(
                    row.cache, False, row.task_id, f"the server {server} is no longer configured"
                )
            elif row.state == RUNNING and row.task_id:
                result = self._follow(caches, row.cache, row.task_id)
            else:
                what = "The bot stopped while asking Connect to delete this cache"
                result = self.settle(caches, row.cache, what)
            self._record(row, row.audit_id, result)
        return [row for row in self.journal.rows(request_id) if row.state == PLANNED]

    def drop(self, rows: list[JournalRow], detail: str) -> None:
        """Targets that will not be sent (a stale confirmation after a restart)."""
        for row in rows:
            self.journal.finish(row.id, succeeded=False, detail=detail)

    # ---- one target ----------------------------------------------------------------------

    def _delete(self, caches: CacheService, row: JournalRow) -> DeletionResult:
        outcome = caches.request_delete(row.cache)
        if isinstance(outcome, str):
            self.journal.running(row.id, outcome)
            return self._follow(caches, row.cache, outcome)
        if isinstance(outcome, Unanswered):
            return self.settle(caches, row.cache, f"Connect did not answer ({outcome.reason})")
        return outcome

    def _follow(self, caches: CacheService, cache: RuntimeCache, task_id: str) -> DeletionResult:
        result = caches.follow_delete(cache, task_id)
        if isinstance(result, Unanswered):
            return self.settle(caches, cache, f"Connect's task gave no end ({result.reason})")
        return result

    def settle(self, caches: CacheService, cache: RuntimeCache, what: str) -> DeletionResult:
        """An ambiguous outcome is checked before it is reported: the cache list says what is
        true (Connect's deletion task may still be running, so it is asked again for a while)."""
        deadline = self._clock() + self.settle_seconds
        while True:
            try:
                listed = caches.is_listed(cache)
            except ConnectError as exc:
                if self._clock() >= deadline:
                    return DeletionResult(
                        cache,
                        False,
                        None,
                        f"{what}, and the bot could not check whether the cache is still listed"
                        f" ({exc.reason})",
                    )
            else:
                if not listed:
                    return DeletionResult(
                        cache, True, None, f"{what}, but Connect no longer lists it: deleted"
                    )
                if self._clock() >= deadline:
                    return DeletionResult(cache, False, None, f"{what}; the cache is still listed")
            self._sleep(SETTLE_INTERVAL)

    def _record(self, row: JournalRow, audit_id: int | None, result: DeletionResult) -> None:
        self.journal.finish(row.id, succeeded=result.succeeded, detail=result.detail)
        detail = result.detail if not result.succeeded else f"Connect task {result.task_id}"
        if result.succeeded and result.task_id is None:
            detail = result.detail
        if audit_id is not None:
            self.audit.complete(audit_id, "succeeded" if result.succeeded else "failed", detail)

    def _caches(self, server: str) -> CacheService | None:
        found = self.servers.get(server)
        return None if isinstance(found, UnknownServer) else found.caches
