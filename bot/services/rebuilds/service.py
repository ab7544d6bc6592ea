"""Rebuild use cases: plan, start, discard, cancel, status, history, and plan expiry. Audited.

Making a plan is the `Planner`'s (`plans`); here the requests are checked and the plan's card
goes through its life. The card is told of every change through a `PlanNotifier`; once started,
the same message becomes the progress message (the rebuild reporter's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.connect import ContentFilter, RuntimeCache
from bot.services.audit import AuditStore
from bot.services.authz import Authorizer
from bot.services.caches import Deletions
from bot.services.confirmations import Confirmations, Rule
from bot.services.criteria import Criteria, of_filter
from bot.services.instance import Instance
from bot.services.outcomes import (
    Actor,
    Denied,
    NotFound,
    Refusal,
    UnknownServer,
)
from bot.services.pending import Pending, PendingStore
from bot.services.rebuilds.leases import RebuildEngine
from bot.services.rebuilds.outcomes import (
    Cancelling,
    Discarded,
    NoCachesDeleted,
    NothingToCancel,
    NotStartable,
    PlanCard,
    PlanNotifier,
    Started,
)
from bot.services.rebuilds.plans import (
    KIND,
    Planner,
    PlanRequest,
    RebuildPlanOutcome,
    proposal_of,
    rebuild_id_of,
    server_of,
)
from bot.services.rebuilds.store import PlanSummary, Progress, RebuildNotFound, RebuildStore
from bot.services.servers import Servers
from bot.services.times import Proposal
from bot.services.usage import UsageCounter
from bot.store import utcnow

ORPHAN_AFTER = timedelta(minutes=5)  # a start takes a second: a holder this slow is hung


@dataclass(frozen=True, slots=True)
class Records:
    """What the rebuild use cases keep: the rebuilds and their items, the plan cards awaiting a
    click (pending requests), and the audit log."""

    rebuilds: RebuildStore
    pending: PendingStore
    audit: AuditStore


@dataclass(frozen=True, slots=True)
class Access:
    """Who may act on a rebuild: admins of the channel (`authz`), and how a card's click is
    decided (`confirmations`: single use, the two-person rule, expiry)."""

    authz: Authorizer
    confirmations: Confirmations


class Rebuilds:
    """The rebuild use cases. `records`: what they keep; `access`: who may act; `servers`: the
    Connect servers; `engine`: runs started rebuilds; `deletions`: the finished cache deletions
    a plan may follow; `notifier`: tells a plan's card; `instance`: this process."""

    def __init__(
        self,
        *,
        records: Records,
        access: Access,
        servers: Servers,
        engine: RebuildEngine,
        deletions: Deletions,
        notifier: PlanNotifier,
        instance: Instance,
        usage: UsageCounter | None = None,
    ) -> None:
        self.instance = instance
        self.usage = usage  # visits per item, for the order (None: the usual order)
        self.instance_id = instance.instance_id  # this process, as the one carrying acts out
        self.servers = servers
        self.store = records.rebuilds
        self.pending = records.pending
        self.audit = records.audit
        self.engine = engine
        self.confirmations = access.confirmations
        self.deletions = deletions
        self.authz = access.authz
        self.notifier = notifier
        self.planner = Planner(
            servers=servers,
            store=self.store,
            pending=self.pending,
            audit=self.audit,
            card=self._card,
            usage=usage,
        )

    # ---- planning ------------------------------------------------------------------------

    def plan(
        self,
        actor: Actor,
        server_name: str | None,
        *,
        description: str,
        content_filter: ContentFilter,
        parallelism: int | None = None,
        selection: Criteria | None = None,
        proposal: Proposal | None = None,
        visited_within: int | None = None,
        verify: bool = True,
    ) -> RebuildPlanOutcome:
        """Plan a rebuild of the published content `content_filter` selects; refused when an
        item it names by GUID is locked. `selection`: what to ask Connect again should it be
        scheduled (default: the filter; `--uses-package` gives the names, not their items);
        `proposal`: the start time given with it (its card offers to schedule it then);
        `visited_within`: days; content nobody visited in them is left out (and listed);
        `verify` False (`--no-verify`): built interactive items are not probed."""
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        refused = self._refused(actor, "rebuild_plan", description, server.name)
        if refused:
            return refused
        if visited_within is not None:
            description += f"; visited within {visited_within} day(s)"
        request = PlanRequest(
            server=server.name,
            description=description,
            selection=(selection or of_filter(content_filter)).with_visited_within(visited_within),
            content_filter=content_filter,
            parallelism=parallelism,
            proposal=proposal,
            visited_within=visited_within,
        )
        outcome = self.planner.plan(actor, request)
        if not verify and isinstance(outcome, PlanCard):
            self.store.set_flags(outcome.summary.rebuild_id, no_verify=True)
        return outcome

    def plan_affected(self, actor: Actor, deletion_id: str) -> RebuildPlanOutcome:
        """'Rebuild affected content' on a finished deletion: what used the deleted caches."""
        deleted = self.deletions.deleted(deletion_id)
        if isinstance(deleted, NotFound):
            return deleted
        labels = ", ".join(cache.label for cache in deleted.caches)
        refused = self._refused(actor, "rebuild_plan", labels, deleted.server)
        if refused:
            return refused
        if not deleted.caches:
            return NoCachesDeleted()
        request = PlanRequest(
            server=deleted.server,
            description=f"content using the deleted caches: {labels}",
            selection=Criteria(caches=tuple(deleted.caches)),
            caches=tuple(deleted.caches),
            reference=deleted.request_id,
        )
        return self.planner.plan(actor, request)

    def plan_posted(self, pending_id: str, message_ts: str) -> None:
        """The card is in the channel: it is also the progress message; audit the plan."""
        self.pending.attach_message(pending_id, message_ts)
        pending = self.pending.get(pending_id)
        if pending is None:
            return
        rebuild_id = rebuild_id_of(pending)
        self.store.attach_message(rebuild_id, message_ts)
        summary = self.store.summary(rebuild_id)
        self.audit.record(
            actor=pending.requested_by,
            action="rebuild_plan",
            outcome="requested",
            target=summary.description,
            channel=pending.channel,
            reference=pending.payload.get("reference") or pending.id,
            detail=f"rebuild #{rebuild_id}: {summary.total} item(s),"
            f" {summary.skipped} skipped, parallelism {summary.parallelism}",
            server=summary.server,
        )

    def plan_abandoned(self, pending_id: str) -> None:
        """The card could not be posted: the plan can never be started."""
        pending = self.pending.get(pending_id)
        self.pending.finish(pending_id, state="failed", result={"reason": "could not post card"})
        if pending is not None:
            self.store.close_plan(rebuild_id_of(pending), "discarded")

    # ---- start / discard / expiry --------------------------------------------------------

    def start(
        self, actor: Actor, pending_id: str, message_ts: str | None = None
    ) -> Started | NotStartable | Refusal:
        rule = self.confirmations.confirmer("start this rebuild")
        pending = self._decide(
            actor, pending_id, message_ts, action="rebuild_start", new_state="confirmed", rule=rule
        )
        if not isinstance(pending, Pending):
            return pending
        audit_id = self._begin(actor.user, pending)
        return self._start(pending, actor.user, audit_id)

    def _start(
        self, pending: Pending, by: str, audit_id: int, detail: str = ""
    ) -> Started | NotStartable:
        rebuild_id = rebuild_id_of(pending)
        if not self.store.start(rebuild_id, started_by=by):
            self.pending.finish(pending.id, state="failed", result={"reason": "not startable"})
            self.audit.complete(audit_id, "failed", "the plan could no longer be started")
            return NotStartable(rebuild_id)
        self.engine.launch(rebuild_id)
        self.pending.finish(pending.id, state="done", result={"rebuild_id": rebuild_id})
        self.audit.complete(audit_id, "started", detail)
        return Started(rebuild_id)

    def start_scheduled(
        self, rebuild_id: int, *, by: str, channel: str, server: str | None, detail: str
    ) -> Started | NotStartable:
        """A scheduled rebuild's start, at its time: Start's path (audited before it happens,
        planned -> running, the engine launched), without a click to decide."""
        audit_id = self.audit.begin(
            actor=by,
            action="rebuild_start",
            target=f"rebuild #{rebuild_id}",
            channel=channel,
            server=server,
        )
        if not self.store.start(rebuild_id, started_by=by):
            self.audit.complete(audit_id, "failed", "the plan could no longer be started")
            return NotStartable(rebuild_id)
        self.engine.launch(rebuild_id)
        self.audit.complete(audit_id, "started", detail)
        return Started(rebuild_id)

    def reconcile(self) -> int:
        """Starts whose process died between the claim and the start (at start-up and
        periodically): resumed if the click is recent, else the plan is closed and its card
        says so. A start that did happen is only recorded as done."""
        count = 0
        for orphan in self.pending.orphans(
            KIND, is_alive=self.instance.is_alive, stale_after=ORPHAN_AFTER
        ):
            pending = self.pending.take_over(orphan, self.instance_id)
            if pending is None:
                continue
            count += 1
            by = pending.decided_by or pending.requested_by
            audit_id = self.audit.open_record(pending.id, "rebuild_start") or self._begin(
                by, pending
            )
            progress = self.store.progress(rebuild_id_of(pending))
            if progress is not None and progress.state != "planned":
                self.pending.finish(
                    pending.id, state="done", result={"rebuild_id": progress.rebuild_id}
                )
                self.audit.complete(audit_id, "started")
                continue
            decided = pending.decided_at or pending.created_at
            if utcnow() - decided < self.pending.ttl:
                self._start(pending, by, audit_id, "resumed after the bot restarted")
                continue
            self.store.close_plan(rebuild_id_of(pending), "expired")
            self.pending.finish(pending.id, state="failed", result={"reason": "restart"})
            self.audit.complete(audit_id, "failed", "not started: the bot restarted; plan again")
            self.notifier.plan_changed(self._card(pending, state="refused"))
        return count

    def _begin(self, by: str, pending: Pending) -> int:
        """The start is audited before it happens, and completed with its outcome."""
        return self.audit.begin(
            actor=by,
            action="rebuild_start",
            target=f"rebuild #{rebuild_id_of(pending)}",
            channel=pending.channel,
            reference=pending.id,
            server=server_of(pending),
        )

    def discard(
        self, actor: Actor, pending_id: str, message_ts: str | None = None
    ) -> Discarded | Refusal:
        rule = self.confirmations.requester_or_admin("discard this plan")
        pending = self._decide(
            actor,
            pending_id,
            message_ts,
            action="rebuild_discard",
            new_state="cancelled",
            rule=rule,
        )
        if not isinstance(pending, Pending):
            return pending
        rebuild_id = rebuild_id_of(pending)
        self.store.close_plan(rebuild_id, "discarded")
        self.notifier.plan_changed(self._card(pending, state="discarded", decided_by=actor.user))
        self._audit(actor.user, "rebuild_discard", "discarded", pending, channel=actor.channel)
        return Discarded(rebuild_id)

    def expire_overdue(self) -> int:
        """Scheduler job: plans nobody started within the TTL expire, and their cards say so."""
        expired = self.pending.expire_overdue(KIND)
        for pending in expired:
            self._expire(pending)
            self._audit(pending.requested_by, "rebuild_plan", "expired", pending)
        return len(expired)

    def decide_plan(
        self, actor: Actor, pending_id: str, message_ts: str | None, action: str, rule: Rule
    ) -> Pending | Refusal:
        """Take a plan's card for another act than Start (scheduling): the same rules, single
        use, and expiry. The pending request moves to `scheduling`, which `reconcile` (Start's
        crash recovery) leaves alone."""
        return self._decide(
            actor, pending_id, message_ts, action=action, new_state="scheduling", rule=rule
        )

    def _expire(self, pending: Pending) -> None:
        self.store.close_plan(rebuild_id_of(pending), "expired")
        self.notifier.plan_changed(self._card(pending, state="expired"))

    # ---- cancel, status, history ---------------------------------------------------------

    def cancel(self, actor: Actor, rebuild_id: int) -> Cancelling | NothingToCancel | Refusal:
        target = f"rebuild #{rebuild_id}"
        progress = self.store.progress(rebuild_id)
        server = progress.server if progress else None
        refused = self._refused(actor, "rebuild_cancel", target, server)
        if refused:
            return refused
        if progress is None:
            return NotFound(target)
        if not progress.active:
            return NothingToCancel(rebuild_id, progress.state)
        audit_id = self.audit.begin(
            actor=actor.user,
            action="rebuild_cancel",
            target=target,
            channel=actor.channel,
            server=server,
        )
        try:
            result = self.store.cancel(rebuild_id, by=actor.user)
        except RebuildNotFound:
            self.audit.complete(audit_id, "failed", "the rebuild no longer exists")
            return NotFound(target)
        if not result.ok:
            self.audit.complete(audit_id, "failed", f"the rebuild was already {result.state}")
            return NothingToCancel(rebuild_id, result.state)
        self.engine.cancel(rebuild_id)
        self.audit.complete(
            audit_id,
            "cancelled",
            f"{result.building} running build(s) left to finish, {result.queued} queued",
        )
        current = self.store.progress(rebuild_id)
        assert current is not None
        return Cancelling(current, result.building, result.queued)

    def status(self, rebuild_id: int | None) -> Progress | NotFound:
        if rebuild_id is not None:
            progress = self.store.progress(rebuild_id)
            return progress or NotFound(f"rebuild #{rebuild_id}")
        progress = self.store.latest(active_only=True) or self.store.latest()
        return progress or NotFound("rebuild")

    def history(self, limit: int = 10, server: str | None = None) -> list[Progress]:
        """The last rebuilds, newest first (of one server when named)."""
        unnamed = server is not None and server == self.servers.default
        return self.store.history(limit, server, unnamed=unnamed)

    def stale_caches(self, rebuild_id: int) -> tuple[str | None, list[RuntimeCache]] | NotFound:
        """The server, and the runtime caches whose items built but fail to start and were
        not deleted before the rebuild (its summary's "Delete the caches of these runtimes…")."""
        progress = self.store.progress(rebuild_id)
        if progress is None:
            return NotFound(f"rebuild #{rebuild_id}")
        return progress.server, self.store.undeleted_caches(rebuild_id)

    # ---- helpers -------------------------------------------------------------------------

    def _refused(self, actor: Actor, action: str, target: str, server: str | None) -> Denied | None:
        decision = self.authz.admin_in(actor.user, actor.channel)
        if decision.allowed:
            return None
        self.audit.record(
            actor=actor.user,
            action=action,
            outcome="denied",
            target=target,
            channel=actor.channel,
            detail=decision.reason,
            server=server,
        )
        return Denied(decision.reason)

    def _decide(
        self,
        actor: Actor,
        pending_id: str,
        message_ts: str | None,
        *,
        action: str,
        new_state: str,
        rule: Rule,
    ) -> Pending | Refusal:
        return self.confirmations.decide(
            actor,
            pending_id,
            kind=KIND,
            new_state=new_state,
            rule=rule,
            action=action,
            describe=lambda p: (f"rebuild #{rebuild_id_of(p)}", server_of(p)),
            on_expired=self._expire,
            message_ts=message_ts,
            instance_id=self.instance_id,
        )

    def _audit(
        self, actor: str, action: str, outcome: str, pending: Pending, *, channel: str | None = None
    ) -> None:
        self.audit.record(
            actor=actor,
            action=action,
            outcome=outcome,
            target=f"rebuild #{rebuild_id_of(pending)}",
            channel=channel or pending.channel,
            reference=pending.id,
            server=server_of(pending),
        )

    def _card(
        self,
        pending: Pending,
        summary: PlanSummary | None = None,
        *,
        state: str = "pending",
        decided_by: str | None = None,
    ) -> PlanCard:
        proposal = proposal_of(pending)
        return PlanCard(
            summary=summary or self.store.summary(rebuild_id_of(pending)),
            pending_id=pending.id,
            server=server_of(pending) or self.servers.default,
            channel=pending.channel,
            message_ts=pending.message_ts,
            state=state,
            decided_by=decided_by,
            expires_at=pending.expires_at,
            two_person=self.confirmations.two_person_rule,
            proposed_for=proposal.at if proposal else None,
            proposed_label=proposal.label if proposal else None,
        )
