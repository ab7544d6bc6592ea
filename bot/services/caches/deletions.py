"""Deleting runtime caches: request (dry run), confirm (delete), cancel, expire. Audited.

The request is stored server-side as a pending confirmation (the card's buttons carry only its
id); whoever confirms, exactly one click deletes. The card is told of every change through a
`DeletionNotifier`, which the Slack layer implements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.connect import ConnectError, RuntimeCache
from bot.services.audit import AuditStore
from bot.services.authz import Authorizer
from bot.services.caches.journal import FAILED, SUCCEEDED, JournalStore
from bot.services.caches.runner import DeletionRunner
from bot.services.caches.service import CacheTarget, DeletionResult, PlannedDeletion, Rejection
from bot.services.confirmations import Confirmations
from bot.services.instance import Instance
from bot.services.outcomes import Actor, ConnectFailed, Denied, NotFound, Refusal, UnknownServer
from bot.services.pending import Pending, PendingStore
from bot.services.servers import Servers
from bot.store import utcnow

KIND = "cache_delete"
ORPHAN_AFTER = timedelta(minutes=30)  # longer than any deletion: its holder must be hung


@dataclass(frozen=True, slots=True)
class DeletionState:
    """A deletion request as its card shows it."""

    id: str
    server: str
    requested_by: str
    channel: str
    message_ts: str | None
    deletions: tuple[PlannedDeletion, ...]
    state: str = "pending"  # pending | running | done | cancelled | expired
    decided_by: str | None = None
    results: tuple[DeletionResult, ...] = ()
    expires_at: datetime | None = None
    two_person: bool = False
    rebuild_candidates: int = 0
    note: str | None = None  # what a restart changed, said on the card
    retry: bool = False  # some caches failed: offer a new request for them

    @property
    def labels(self) -> str:
        return ", ".join(p.cache.label for p in self.deletions)


class DeletionNotifier(Protocol):
    def deletion_changed(self, state: DeletionState) -> None:
        """Show the new state on the request's card (if it has one)."""


@dataclass(frozen=True, slots=True)
class DeletionRequested:
    state: DeletionState
    rejected: tuple[Rejection, ...]  # targets Connect's dry run refused; the rest are planned


@dataclass(frozen=True, slots=True)
class NothingToDelete:
    rejected: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class DeletionFinished:
    state: DeletionState

    @property
    def failed(self) -> int:
        return sum(1 for r in self.state.results if not r.succeeded)


@dataclass(frozen=True, slots=True)
class DeletionCancelled:
    state: DeletionState


@dataclass(frozen=True, slots=True)
class DeletedCaches:
    """What a finished deletion removed, for "Rebuild affected content"."""

    request_id: str
    server: str
    caches: tuple[RuntimeCache, ...]


RequestOutcome = DeletionRequested | NothingToDelete | Denied | UnknownServer | ConnectFailed


class Deletions:
    def __init__(
        self,
        *,
        servers: Servers,
        pending: PendingStore,
        confirmations: Confirmations,
        authz: Authorizer,
        audit: AuditStore,
        notifier: DeletionNotifier,
        journal: JournalStore,
        runner: DeletionRunner,
        instance: Instance,
    ) -> None:
        self.instance = instance
        self.instance_id = instance.instance_id  # this process, as the one carrying acts out
        self.journal = journal
        self.runner = runner
        self.servers = servers
        self.pending = pending
        self.confirmations = confirmations
        self.authz = authz
        self.audit = audit
        self.notifier = notifier

    def request(
        self, actor: Actor, server_name: str | None, targets: Sequence[CacheTarget]
    ) -> RequestOutcome:
        """Dry-run `targets` with Connect and store a request waiting for its Confirm."""
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        decision = self.authz.admin_in(actor.user, actor.channel)
        if not decision.allowed:
            self.audit.record(
                actor=actor.user,
                action="cache_delete_request",
                outcome="denied",
                target=", ".join(t.label for t in targets),
                channel=actor.channel,
                detail=decision.reason,
                server=server.name,
            )
            return Denied(decision.reason)
        try:
            plan = server.caches.plan(targets)
        except ConnectError as exc:
            return ConnectFailed("The dry run", exc.reason)
        if not plan.ok:
            return NothingToDelete(plan.rejected)
        pending = self.pending.create(
            kind=KIND,
            requested_by=actor.user,
            channel=actor.channel,
            payload={
                "server": server.name,
                "deletions": [_planned_json(p) for p in plan.deletions],
            },
        )
        self.journal.plan(pending.id, [p.cache for p in plan.deletions])
        return DeletionRequested(self._state(pending), plan.rejected)

    def posted(self, request_id: str, message_ts: str) -> None:
        """The card is in the channel: remember where, and audit the request."""
        self.pending.attach_message(request_id, message_ts)
        pending = self.pending.get(request_id)
        if pending is None:
            return
        state = self._state(pending)
        self.audit.record(
            actor=pending.requested_by,
            action="cache_delete_request",
            outcome="requested",
            target=state.labels,
            channel=pending.channel,
            reference=pending.id,
            server=state.server,
        )

    def abandon(self, request_id: str) -> None:
        """The card could not be posted: the request can never be confirmed."""
        self.pending.finish(request_id, state="failed", result={"reason": "could not post card"})

    def confirm(
        self, actor: Actor, request_id: str, message_ts: str | None = None
    ) -> DeletionFinished | Refusal:
        pending = self._decide(actor, request_id, message_ts, "confirm", "confirmed")
        if not isinstance(pending, Pending):
            return pending
        running = replace(self._state(pending), state="running", decided_by=actor.user)
        self.notifier.deletion_changed(running)
        self.runner.run(
            pending.id,
            actor=actor.user,
            channel=pending.channel,
            server=running.server,
            on_progress=lambda: self.notifier.deletion_changed(
                replace(self._state(pending), state="running", decided_by=actor.user)
            ),
        )
        return DeletionFinished(self._finish(pending, decided_by=actor.user))

    def reconcile(self) -> int:
        """Bring confirmed deletions whose process died to a true final state (at start-up and
        periodically): sent ones are checked with Connect, unsent ones resumed if the
        confirmation is recent and dropped otherwise; the card says which."""
        count = 0
        for pending in self.pending.orphans(
            KIND, is_alive=self.instance.is_alive, stale_after=ORPHAN_AFTER
        ):
            taken = self.pending.take_over(pending, self.instance_id)
            if taken is None:
                continue  # another process got it first
            count += 1
            server = _server(taken, self.servers.default)
            unsent = self.runner.recover(taken.id, server=server)
            decided = taken.decided_at or taken.created_at
            fresh = utcnow() - decided < self.pending.ttl
            if unsent and fresh:
                note = "The bot restarted during this deletion; it resumed the caches not yet sent."
                self.runner.run(
                    taken.id,
                    actor=taken.decided_by or taken.requested_by,
                    channel=taken.channel,
                    server=server,
                )
            elif unsent:
                note = (
                    "The bot restarted after this was confirmed; the confirmation is too old to act"
                    " on now, so the caches not yet sent were left alone."
                )
                self.runner.drop(unsent, "not sent: the bot restarted; confirm again if needed")
            else:
                note = "The bot restarted during this deletion; Connect was asked what came of it."
            self._finish(taken, decided_by=taken.decided_by, note=note)
        return count

    def retry(self, actor: Actor, request_id: str) -> RequestOutcome | NotFound:
        """'Retry' on a finished card: a new request (dry run, card) for the caches that failed."""
        pending = self.pending.get(request_id)
        if pending is None or pending.kind != KIND:
            return NotFound(KIND)
        failed = [row.cache for row in self.journal.rows(request_id) if row.state == FAILED]
        if not failed:
            return NotFound(KIND)
        targets = [CacheTarget(c.language, c.version, c.image_name) for c in failed]
        return self.request(actor, _server(pending, self.servers.default), targets)

    def _finish(
        self, pending: Pending, *, decided_by: str | None, note: str | None = None
    ) -> DeletionState:
        """The card first, then the request's final state: a crash in between leaves the
        request to reconciliation, which says it again (no card is left saying "Deleting…")."""
        state = self._state(pending)
        failed = any(not r.succeeded for r in state.results)
        succeeded = {r.cache for r in state.results if r.succeeded}
        final = replace(
            state,
            state="done",
            decided_by=decided_by,
            rebuild_candidates=sum(
                p.published_items for p in state.deletions if p.cache in succeeded
            ),
            note=note,
            retry=failed,
        )
        self.notifier.deletion_changed(final)
        self.pending.finish(
            pending.id,
            state="failed" if failed else "done",
            result={"deleted": len(succeeded)},
        )
        return final

    def cancel(
        self, actor: Actor, request_id: str, message_ts: str | None = None
    ) -> DeletionCancelled | Refusal:
        pending = self._decide(actor, request_id, message_ts, "cancel", "cancelled")
        if not isinstance(pending, Pending):
            return pending
        state = replace(self._state(pending), state="cancelled", decided_by=actor.user)
        self.notifier.deletion_changed(state)
        return DeletionCancelled(state)

    def expire_overdue(self) -> int:
        """Scheduler job: requests nobody confirmed within the TTL expire; their cards say so."""
        expired = self.pending.expire_overdue(KIND)
        for pending in expired:
            state = replace(self._state(pending), state="expired")
            self.notifier.deletion_changed(state)
            self._audit_expired(pending.requested_by, "cache_delete_request", state)
        return len(expired)

    def deleted(self, request_id: str) -> DeletedCaches | NotFound:
        pending = self.pending.get(request_id)
        if pending is None or pending.kind != KIND:
            return NotFound(KIND)
        rows = self.journal.rows(pending.id)
        caches = tuple(row.cache for row in rows if row.state == SUCCEEDED)
        return DeletedCaches(pending.id, _server(pending, self.servers.default), caches)

    # ---- helpers -------------------------------------------------------------------------

    def _decide(
        self, actor: Actor, request_id: str, message_ts: str | None, verb: str, new_state: str
    ) -> Pending | Refusal:
        rule = (
            self.confirmations.confirmer("confirm")
            if verb == "confirm"
            else self.confirmations.requester_or_admin("cancel this")
        )
        action = f"cache_delete_{verb}"
        outcome = self.confirmations.decide(
            actor,
            request_id,
            kind=KIND,
            new_state=new_state,
            rule=rule,
            action=action,
            describe=self._describe,
            on_expired=lambda p: self.notifier.deletion_changed(
                replace(self._state(p), state="expired")
            ),
            message_ts=message_ts,
            instance_id=self.instance_id,
        )
        if isinstance(outcome, Pending):
            state = self._state(outcome)
            self.audit.record(
                actor=actor.user,
                action=action,
                outcome=new_state,
                target=state.labels,
                channel=outcome.channel,
                reference=outcome.id,
                server=state.server,
            )
        return outcome

    def _describe(self, pending: Pending) -> tuple[str, str | None]:
        state = self._state(pending)
        return state.labels, state.server

    def _audit_expired(self, actor: str, action: str, state: DeletionState) -> None:
        self.audit.record(
            actor=actor,
            action=action,
            outcome="expired",
            target=state.labels,
            channel=state.channel,
            reference=state.id,
            server=state.server,
        )

    def _state(self, pending: Pending) -> DeletionState:
        results = tuple(
            DeletionResult(row.cache, row.state == SUCCEEDED, row.task_id, row.detail)
            for row in self.journal.rows(pending.id)
            if row.final
        )
        return DeletionState(
            results=results,
            id=pending.id,
            server=_server(pending, self.servers.default),
            requested_by=pending.requested_by,
            channel=pending.channel,
            message_ts=pending.message_ts,
            deletions=tuple(_planned(pending)),
            state=pending.state,
            decided_by=pending.decided_by,
            expires_at=pending.expires_at,
            two_person=self.confirmations.two_person_rule,
        )


def _server(pending: Pending, default: str) -> str:
    return str(pending.payload.get("server") or default)


def _planned(pending: Pending) -> list[PlannedDeletion]:
    return [
        PlannedDeletion(
            cache=RuntimeCache(d["language"], d["version"], d["image_name"]),
            published_items=int(d.get("published_items", 0)),
            interactive_items=int(d.get("interactive_items", 0)),
        )
        for d in pending.payload.get("deletions", [])
    ]


def _planned_json(planned: PlannedDeletion) -> dict[str, Any]:
    return {
        "language": planned.cache.language,
        "version": planned.cache.version,
        "image_name": planned.cache.image_name,
        "published_items": planned.published_items,
        "interactive_items": planned.interactive_items,
    }
