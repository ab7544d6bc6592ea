"""Making a plan: what a plan request says (`PlanRequest`), and the `Planner` that asks Connect,
stores the plan and its pending confirmation, or says why there is nothing to start.

A plan is stored twice: the `rebuilds` row with its items (what to build), and a pending
confirmation (who may start it, single use, expiry) whose id the card's buttons carry. The
pending request's payload is read back by the helpers at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.connect import ConnectError, ContentFilter, RuntimeCache
from bot.services.audit import AuditStore
from bot.services.criteria import Criteria
from bot.services.outcomes import Actor, ConnectFailed, UnknownServer
from bot.services.pending import Pending, PendingStore
from bot.services.rebuilds.outcomes import NothingToRebuild, PlanCard, PlanOutcome
from bot.services.rebuilds.store import PlanSummary, RebuildStore
from bot.services.servers import Servers
from bot.services.times import Proposal
from bot.services.usage import UsageCounter

KIND = "rebuild_start"  # the pending requests of plans


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What to plan, on which server. Either `content_filter` (the published content it
    selects) or `caches` (the content using them) chooses the items."""

    server: str
    description: str
    selection: Criteria  # what to ask Connect again should the plan be scheduled
    content_filter: ContentFilter | None = None
    caches: tuple[RuntimeCache, ...] | None = None
    parallelism: int | None = None
    reference: str | None = None  # the audit reference (the deletion it follows)
    proposal: Proposal | None = None  # the start time given with it (`--at`, `--in`)
    visited_within: int | None = None  # days (`--visited-within`): leave out unvisited items


@dataclass(frozen=True, slots=True)
class LockedContent:
    """Nothing planned: content named by `--guid` (`named`), or all the matching content, is
    locked in Connect, which offers no rebuild for locked content."""

    items: list[tuple[str, str]]  # (title, locked message), at most 10
    count: int
    named: bool


RebuildPlanOutcome = PlanOutcome | LockedContent


class Planner:
    """Plans on a server: the rows (through the store), the pending confirmation, the card."""

    def __init__(
        self,
        *,
        servers: Servers,
        store: RebuildStore,
        pending: PendingStore,
        audit: AuditStore,
        card: Callable[[Pending, PlanSummary], PlanCard],
        usage: UsageCounter | None = None,
    ) -> None:
        self.servers = servers
        self.store = store
        self.pending = pending
        self.audit = audit
        self.card = card
        self.usage = usage  # None: plans ignore usage (the usual order)

    def plan(self, actor: Actor, request: PlanRequest) -> RebuildPlanOutcome:
        """Ask Connect for the items, store the plan, and answer with its card (or why not)."""
        server = self.servers.get(request.server)
        if isinstance(server, UnknownServer):
            return server
        try:
            usage = (
                self.usage.count(server.client, within_days=request.visited_within)
                if self.usage is not None
                else None
            )
            summary = self.store.plan(
                server.client,
                server=server.name,
                requested_by=actor.user,
                channel=actor.channel,
                description=request.description,
                parallelism=request.parallelism,
                content_filter=request.content_filter,
                caches=request.caches,
                usage=usage,
            )
        except ConnectError as exc:
            return ConnectFailed("Planning the rebuild", exc.reason)
        named = request.content_filter is not None and bool(request.content_filter.guids)
        if summary.locked and (named or summary.total == 0):
            self.store.close_plan(summary.rebuild_id, "discarded")
            self.audit.record(
                actor=actor.user,
                action="rebuild_plan",
                outcome="refused",
                target=request.description,
                channel=actor.channel,
                detail=f"{summary.locked} locked item(s): "
                + "; ".join(title for title, _ in summary.locked_items),
                server=server.name,
            )
            return LockedContent(summary.locked_items, summary.locked, named)
        if summary.total == 0:
            self.store.close_plan(summary.rebuild_id, "discarded")
            return NothingToRebuild(request.description, summary.skipped)
        self.store.set_criteria(summary.rebuild_id, request.selection.to_json())
        pending = self.pending.create(
            kind=KIND,
            requested_by=actor.user,
            channel=actor.channel,
            payload={
                "rebuild_id": summary.rebuild_id,
                "server": server.name,
                "reference": request.reference,
                "proposal": request.proposal.to_json() if request.proposal else None,
            },
        )
        return self.card(pending, summary)


# ---- a plan's pending request ------------------------------------------------------------------


def rebuild_id_of(pending: Pending) -> int:
    return int(pending.payload["rebuild_id"])


def server_of(pending: Pending) -> str | None:
    server = pending.payload.get("server")
    return str(server) if server else None


def proposal_of(pending: Pending) -> Proposal | None:
    """The start time given with the plan, if any."""
    return Proposal.from_json(pending.payload.get("proposal"))
