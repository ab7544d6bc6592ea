"""Scheduled rebuilds: schedule a plan, list and cancel what waits, remind, and start at the
time. Audited. The database is the source of truth (`ScheduleStore`); timers only say when to
look (each process keeps its own, `bot.jobs`), and one conditional UPDATE decides who acts.

Scheduling a plan follows Start's rules (`Rebuilds.decide_plan`: administrators, single use,
expiry, the two-person rule). At the start the selection is asked of Connect again, the plan's
items are replaced by what matches now, the difference is told in the thread, and the rebuild
starts by Start's path (`Rebuilds.start_scheduled`). A start found more than `grace` late
(every process was down) is closed as missed instead; the same claim decides both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.services.instance import Instance
from bot.services.outcomes import Actor, Denied, NotFound, Refusal
from bot.services.pending import Pending
from bot.services.queries import Impact
from bot.services.rebuilds import (
    Access,
    NotStartable,
    PlanCard,
    Rebuilds,
    RebuildStore,
    Records,
    UsageCounter,
)
from bot.services.rebuilds.plans import KIND, proposal_of
from bot.services.rebuilds.service import ORPHAN_AFTER
from bot.services.schedules.outcomes import (
    CancelledBeforeStart,
    MissedStart,
    NothingMatches,
    NotScheduled,
    Reminder,
    ScheduleForm,
    ScheduleMade,
    ScheduleNotifier,
    StartFailed,
    TimeRefused,
    Unscheduled,
)
from bot.services.schedules.reevaluation import TOLD_LATE, reevaluate
from bot.services.schedules.store import SCHEDULED, Scheduled, ScheduleStore
from bot.services.servers import Servers
from bot.services.times import refusal
from bot.store import utcnow

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
DEFAULT_REMINDER = timedelta(minutes=15)
# A start takes seconds (minutes for a huge server): a claim older than this is retaken by
# reconciliation even from a live process (it hangs).
CLAIM_STALE_AFTER = timedelta(minutes=5)


class Schedules:
    def __init__(
        self,
        *,
        rebuilds: Rebuilds,
        records: Records,
        access: Access,
        servers: Servers,
        store: ScheduleStore,
        impact: Impact | None,
        notifier: ScheduleNotifier,
        instance: Instance,
        usage: UsageCounter | None = None,
        grace: timedelta = DEFAULT_GRACE,
        reminder: timedelta = DEFAULT_REMINDER,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.rebuilds = rebuilds  # the use cases a schedule ends in: deciding and starting plans
        self.records, self.access = records, access
        self.plans: RebuildStore = records.rebuilds
        self.pending = records.pending
        self.audit = records.audit
        self.authz = access.authz
        self.confirmations = access.confirmations
        self.servers = servers
        self.usage = usage  # fresh visits when a scheduled rebuild is re-evaluated
        self.store = store
        self.impact = impact
        self.notifier = notifier
        self.instance = instance
        self.instance_id = instance.instance_id
        self.grace = grace
        self.reminder = reminder
        self.clock = clock
        self._listeners: list[Callable[[int], None]] = []

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """`listener(rebuild_id)` when this process scheduled or cancelled one (its timers)."""
        self._listeners.append(listener)

    # ---- scheduling ----------------------------------------------------------------------

    def form(self, actor: Actor, pending_id: str) -> ScheduleForm | Refusal:
        """Before the modal opens: is this a plan `actor` may schedule, and which time first."""
        pending = self.pending.get(pending_id)
        if pending is None or pending.kind != KIND or pending.state != "pending":
            return NotFound(KIND)
        decision = self.authz.admin_in(actor.user, actor.channel)
        if not decision.allowed:
            return Denied(decision.reason)
        proposal = proposal_of(pending)
        now = self.clock()
        initial = proposal.at if proposal and proposal.at > now else _next_hour(now)
        rebuild_id = int(pending.payload["rebuild_id"])
        summary = self.plans.summary(rebuild_id)
        return ScheduleForm(pending.id, rebuild_id, summary.description, initial)

    def schedule(
        self,
        actor: Actor,
        pending_id: str,
        at: datetime | None = None,
        message_ts: str | None = None,
    ) -> ScheduleMade | TimeRefused | NotStartable | Refusal:
        """Schedule the plan of card `pending_id` for `at` (default: the time given with it)."""
        pending = self.pending.get(pending_id)
        if pending is None or pending.kind != KIND:
            return NotFound(KIND)
        if at is None:
            proposal = proposal_of(pending)
            if proposal is None:
                return TimeRefused("This plan has no start time; use *Schedule…* to pick one.")
            at = proposal.at
        reason = refusal(at, self.clock())
        if reason:
            return TimeRefused(reason)
        rule = self.confirmations.confirmer("schedule this rebuild")
        decided = self.rebuilds.decide_plan(actor, pending_id, message_ts, "rebuild_schedule", rule)
        if not isinstance(decided, Pending):
            return decided
        rebuild_id = int(decided.payload["rebuild_id"])
        # A start sooner than the reminder's lead needs no reminder: the card has just said it.
        soon = at - self.clock() <= self.reminder
        pending_store = self.pending
        if not self.store.schedule(rebuild_id, at=at, by=actor.user, reminded=soon):
            pending_store.finish(decided.id, state="failed", result={"reason": "not planned"})
            return NotStartable(rebuild_id)
        pending_store.finish(
            decided.id,
            state="done",
            result={"rebuild_id": rebuild_id, "scheduled_for": at.isoformat()},
        )
        item = self.store.get(rebuild_id)
        assert item is not None
        if item.thread_ts is None and decided.message_ts:
            self.plans.attach_message(rebuild_id, decided.message_ts)
            item = replace(item, thread_ts=decided.message_ts)
        self.audit.record(
            actor=actor.user,
            action="rebuild_schedule",
            outcome="scheduled",
            target=item.target,
            channel=actor.channel,
            reference=decided.id,
            detail=f"starts at {_utc(at)}",
            server=item.server,
        )
        self.notifier.plan_changed(self._card(item, "scheduled"))
        self._changed(rebuild_id)
        return ScheduleMade(item)

    def scheduled(self) -> list[Scheduled]:
        return self.store.scheduled()

    def listed(self) -> list[Scheduled]:
        """`rebuild scheduled`: waiting, and starting right now."""
        return self.store.listed()

    def cancel(self, actor: Actor, rebuild_id: int) -> Unscheduled | NotScheduled | Refusal:
        """Cancel a rebuild waiting for its start (same rules as cancelling a running one)."""
        item = self.store.get(rebuild_id)
        if item is None or item.state != SCHEDULED:
            return NotScheduled(rebuild_id)
        decision = self.authz.admin_in(actor.user, actor.channel)
        audit = self.audit
        if not decision.allowed:
            audit.record(
                actor=actor.user,
                action="rebuild_cancel",
                outcome="denied",
                target=item.target,
                channel=actor.channel,
                detail=decision.reason,
                server=item.server,
            )
            return Denied(decision.reason)
        if not self.store.cancel(rebuild_id, self.clock()):
            return NotScheduled(rebuild_id)  # it started (or was cancelled) just now
        audit.record(
            actor=actor.user,
            action="rebuild_cancel",
            outcome="cancelled",
            target=item.target,
            channel=actor.channel,
            detail=f"scheduled for {_utc(item.scheduled_for)}; nothing was built",
            server=item.server,
        )
        self.notifier.plan_changed(self._card(item, "unscheduled", by=actor.user))
        self.notifier.schedule_told(CancelledBeforeStart(item, actor.user))
        self._changed(rebuild_id)
        return Unscheduled(item, actor.user)

    # ---- at the time (timers of every process; the claims decide) ------------------------

    def remind(self, rebuild_id: int) -> bool:
        """The reminder before the start, posted by one process; True if this one did."""
        item = self.store.get(rebuild_id)
        if item is None or item.state != SCHEDULED or item.reminded:
            return False
        if self.clock() >= item.scheduled_for or not self.store.claim_reminder(rebuild_id):
            return False
        self.notifier.schedule_told(Reminder(item, item.scheduled_for - self.clock()))
        return True

    def fire(self, rebuild_id: int) -> str:
        """At (or after) the start time: start it, or close it as missed when more than the
        grace late. Returns what happened here: not-due | not-scheduled | lost | missed |
        started | unmatched | not-startable | failed (it raised: scheduled again, retried)."""
        item = self.store.get(rebuild_id)
        if item is None or item.state != SCHEDULED:
            return "not-scheduled"
        now = self.clock()
        if now < item.scheduled_for:
            return "not-due"
        late = now - item.scheduled_for
        if late > self.grace:
            if not self.store.claim_missed(rebuild_id, now):
                return "lost"
            self._missed(item, late)
            return "missed"
        if not self.store.claim_start(rebuild_id, self.instance_id, now):
            return "lost"
        return self._carry_out(replace(item, claimed_by=self.instance_id, claimed_at=now), late)

    def reconcile(self) -> int:
        """Starts whose process died after its claim: taken over and carried out; Schedule
        clicks whose process died before the schedule was stored: the plan is closed."""
        count = self._unfinished_clicks()
        for item in self.store.orphans():
            now = self.clock()
            if item.claimed_by == self.instance_id:
                continue  # ours: under way in another thread here
            hung = self.store.stale(item, now, CLAIM_STALE_AFTER)
            if not hung and self.instance.is_alive(item.claimed_by):
                continue
            if not self.store.take_over(item, self.instance_id, now):
                continue
            if hung:
                log.warning(
                    "rebuild %s: retaking a scheduled start claimed at %s by %s",
                    item.rebuild_id,
                    item.claimed_at,
                    item.claimed_by,
                )
            count += 1
            mine = replace(item, claimed_by=self.instance_id, claimed_at=now)
            self._carry_out(mine, now - item.scheduled_for, planned=item.state == "planned")
        return count

    def _carry_out(self, item: Scheduled, late: timedelta, *, planned: bool = False) -> str:
        """Start a claimed schedule; if that raises, it goes back to `scheduled` (the next
        sweep's timer tries again) and its thread says why."""
        try:
            return self._launch(item, late) if planned else self._start(item, late)
        except Exception as exc:
            log.exception("rebuild %s: the scheduled start failed", item.rebuild_id)
            if self.store.release_start(item.rebuild_id, self.instance_id):
                error = _describe(exc)
                progress = self.plans.progress(item.rebuild_id)
                told = progress.flags.get("start_error") if progress else None
                if told != error:  # a retry failing the same way says nothing new
                    self.plans.set_flags(item.rebuild_id, start_error=error)
                    self.notifier.schedule_told(StartFailed(item, error))
            return "failed"

    def _unfinished_clicks(self) -> int:
        pending_store = self.pending
        count = 0
        for orphan in pending_store.orphans(
            KIND, is_alive=self.instance.is_alive, stale_after=ORPHAN_AFTER, state="scheduling"
        ):
            pending = pending_store.take_over(orphan, self.instance_id)
            if pending is None:
                continue
            count += 1
            rebuild_id = int(pending.payload["rebuild_id"])
            if self.store.get(rebuild_id) is not None:  # it was scheduled: only record it
                pending_store.finish(pending.id, state="done", result={"rebuild_id": rebuild_id})
                continue
            pending_store.finish(pending.id, state="failed", result={"reason": "restart"})
            self.plans.close_plan(rebuild_id, "expired")
            card = replace(self._plan_card(pending), state="refused")
            self.notifier.plan_changed(card)
        return count

    def _plan_card(self, pending: Pending) -> PlanCard:
        rebuild_id = int(pending.payload["rebuild_id"])
        return PlanCard(
            summary=self.plans.summary(rebuild_id),
            pending_id=pending.id,
            server=str(pending.payload.get("server") or self.servers.default),
            channel=pending.channel,
            message_ts=pending.message_ts,
        )

    def _start(self, item: Scheduled, late: timedelta) -> str:
        client = self.servers.client(item.server)
        told = reevaluate(self.store, client, self.impact, item, late, usage=self.usage)
        if told is None:
            self.store.close(item.rebuild_id, "discarded", self.clock())
            self.audit.record(
                actor=item.scheduled_by or item.requested_by,
                action="rebuild_start",
                outcome="failed",
                target=item.target,
                channel=item.channel,
                detail="scheduled start: no published content matches any more",
                server=item.server,
            )
            self.notifier.schedule_told(NothingMatches(item))
            self.notifier.plan_changed(self._card(item, "unmatched"))
            return "unmatched"
        if not self.store.to_planned(item.rebuild_id, self.instance_id):
            return "lost"  # retaken meanwhile (this process hung): the new starter says it
        self.notifier.schedule_told(told)
        return self._launch(item, late)

    def _launch(self, item: Scheduled, late: timedelta) -> str:
        detail = f"scheduled start (for {_utc(item.scheduled_for)})"
        if late > TOLD_LATE:
            detail += f", {int(late.total_seconds() // 60)} min late: the bot was not running"
        outcome = self.rebuilds.start_scheduled(
            item.rebuild_id,
            by=item.scheduled_by or item.requested_by,
            channel=item.channel,
            server=item.server,
            detail=detail,
        )
        return "not-startable" if isinstance(outcome, NotStartable) else "started"

    def _missed(self, item: Scheduled, late: timedelta) -> None:
        minutes = int(late.total_seconds() // 60)
        self.audit.record(
            actor=item.scheduled_by or item.requested_by,
            action="rebuild_start",
            outcome="missed",
            target=item.target,
            channel=item.channel,
            detail=f"scheduled for {_utc(item.scheduled_for)}; the bot was not running until"
            f" {minutes} min later (grace {int(self.grace.total_seconds())} s): not started",
            server=item.server,
        )
        self.notifier.schedule_told(MissedStart(item, late, self.grace))
        self.notifier.plan_changed(self._card(item, "missed"))

    # ---- helpers -------------------------------------------------------------------------

    def _card(self, item: Scheduled, state: str, *, by: str | None = None) -> PlanCard:
        return PlanCard(
            summary=self.plans.summary(item.rebuild_id),
            pending_id="",
            server=item.server or self.servers.default,
            channel=item.channel,
            message_ts=item.thread_ts,
            state=state,
            decided_by=by,
            scheduled_for=item.scheduled_for,
            scheduled_by=item.scheduled_by,
        )

    def _changed(self, rebuild_id: int) -> None:
        for listener in self._listeners:
            try:
                listener(rebuild_id)
            except Exception:  # the periodic sync sets the timers anyway
                log.exception("a schedule listener failed")


def _describe(exc: Exception) -> str:
    """One line for the thread: the driver's own error for a database error (without the SQL
    and its parameters), else the exception's type and first line."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:300] if first else type(cause).__name__


def _next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
