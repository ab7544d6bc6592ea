"""Stored health checks: which process probes each check, and how another finishes it.

* `HealthRuns.start` stores the check (its selection, as a schedule's criteria) and launches
  it; `HealthRunner.watch` runs every few seconds in every process and takes over any running
  check whose lease is free or stale (holder dead by `Coordinator.is_alive`, or no heartbeat
  for LEASE_TTL by the database's clock), and any ended check whose card nobody updated.
* The holder heartbeats every HEARTBEAT_SECONDS; each write is fenced by its lease token
  (`HealthStore`): a holder that lost the lease stops at its next write.
* No item is probed twice. Each item is claimed (a row without a verdict) before its request
  leaves, with the job keys Connect listed just before it (one transaction; that listing
  changes nothing on Connect). A new holder skips items with a verdict, and resolves a claim
  without one from Connect's jobs: the run (or render) job not among those keys is the dead
  holder's probe, and gives the verdict without a new request. Only when there is no such job
  (the request never reached Connect, or started no process) is the item requested again:
  that starts no second process for the same probe. Comparing job keys, not clocks, is what the
  probe itself does (`probes.py`): Connect's clock and the bot's may disagree by seconds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.connect import ConnectError, ContentFilter, ContentItem, RuntimeCache
from bot.services.audit import AuditStore
from bot.services.confirmations import Confirmations, Rule
from bot.services.criteria import Criteria, of_filter
from bot.services.health.engine import DEFAULT_CONCURRENCY, run_checks
from bot.services.health.grouping import by_runtime
from bot.services.health.outcomes import (
    Counts,
    FailsToStart,
    HealthReport,
    ItemHealth,
    PackageFailures,
)
from bot.services.health.probes import Prober, ProbeSettings
from bot.services.health.selection import Probe
from bot.services.health.service import HealthChecks, selected
from bot.services.health.store import CheckRow, HealthStore, LeaseLost
from bot.services.outcomes import Actor, ConnectFailed, Denied, NotFound, Refusal, UnknownServer
from bot.services.pending import Pending
from bot.services.queries import PackagesUnsupported
from bot.services.servers import Servers

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
LEASE_TTL_SECONDS = 120.0  # a holder connected but hung: well above one probe's timeout
FLUSH_EVERY = 500  # un-probed results (skipped, removed runtime) written in batches


@dataclass(frozen=True, slots=True)
class Prepared:
    """A check ready to store: its server and the items it selects."""

    server: str
    criteria: Criteria
    render: bool


@dataclass(frozen=True, slots=True)
class Progress:
    row: CheckRow
    counts: Counts  # verdicts so far
    probing: int  # items being probed now


@dataclass(frozen=True, slots=True)
class Failing:
    """What a finished check found failing: the items, and the runtimes whose caches they
    used (items on a runtime Connect no longer offers have no cache worth deleting)."""

    check_id: int
    server: str | None
    guids: frozenset[str]
    caches: tuple[RuntimeCache, ...]


PrepareOutcome = Prepared | PackagesUnsupported | UnknownServer | ConnectFailed


class HealthRunner:
    """Owns the checks this process probes, and their leases."""

    def __init__(
        self,
        store: HealthStore,
        servers: Servers,
        *,
        instance_id: str,
        is_alive: Callable[[str], bool],
        concurrency: int = DEFAULT_CONCURRENCY,
        settings: ProbeSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        lease_ttl_seconds: float = LEASE_TTL_SECONDS,
    ) -> None:
        self.store = store
        self.servers = servers
        self.instance_id = instance_id
        self.is_alive = is_alive
        self.concurrency = concurrency
        self.settings = settings
        self._sleep = sleep
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_ttl_seconds = lease_ttl_seconds
        self._running: dict[int, threading.Event] = {}  # check id -> its stop flag
        self._lock = threading.Lock()
        self._closed = False
        self._listeners: list[Callable[[int], None]] = []

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """`listener(check_id)` when a result is known, when this process takes a check, and
        when a check ends (the Slack card's reporter)."""
        self._listeners.append(listener)

    def notify(self, check_id: int) -> None:
        for listener in self._listeners:
            try:
                listener(check_id)
            except Exception:
                log.exception("health listener failed")

    def launch(self, check_id: int) -> None:
        self.tick(check_id)

    def watch(self) -> None:
        """Every few seconds, in every process: take over checks whose holder is gone."""
        if self._closed:
            return
        for check_id, state, _reported, driver in self.store.unfinished():
            try:
                if state == "running":
                    self.tick(check_id)
                elif driver == self.instance_id:
                    self.notify(check_id)  # ours: the reporter updates the card
                elif self.store.acquire(
                    check_id,
                    self.instance_id,
                    is_alive=self.is_alive,
                    ttl_seconds=self.lease_ttl_seconds,
                    finished=True,
                ):
                    log.warning("health check %s: took its card over", check_id)
                    self.notify(check_id)
            except Exception:
                log.exception("health check %s: watch failed", check_id)

    def tick(self, check_id: int) -> None:
        if self._closed:
            return
        with self._lock:
            if check_id in self._running:
                return
            token = self.store.acquire(
                check_id,
                self.instance_id,
                is_alive=self.is_alive,
                ttl_seconds=self.lease_ttl_seconds,
            )
            if token is None:
                return
            stop = threading.Event()
            self._running[check_id] = stop
        log.info("health check %s: probing it here", check_id)
        threading.Thread(
            target=self._drive,
            args=(check_id, token, stop),
            name=f"health-check-{check_id}",
            daemon=True,
        ).start()
        self.notify(check_id)

    def running(self, check_id: int) -> bool:
        with self._lock:
            return check_id in self._running

    def close(self) -> None:
        """SIGTERM: stop every check here and give its lease back; another process finishes
        it (claims without a verdict are resolved from Connect's jobs)."""
        self._closed = True
        with self._lock:
            flags = list(self._running.values())
        for flag in flags:
            flag.set()
        self.store.release_all(self.instance_id)

    # ---- one check -----------------------------------------------------------------------

    def _drive(self, check_id: int, token: str, stop: threading.Event) -> None:
        beating = threading.Thread(
            target=self._heartbeat, args=(check_id, token, stop), daemon=True
        )
        beating.start()
        try:
            self._run(check_id, token, stop)
        except LeaseLost:
            log.warning("health check %s: lost its lease; stopped", check_id)
        except Exception:
            log.exception("health check %s failed", check_id)
            with contextlib.suppress(LeaseLost):
                self.store.finish(check_id, token, counts=None, summary={}, error="internal error")
        finally:
            stop.set()
            with self._lock:
                self._running.pop(check_id, None)
            self.notify(check_id)

    def _heartbeat(self, check_id: int, token: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            if not self.store.renew(check_id, token):
                stop.set()  # the next fenced write raises LeaseLost
                return

    def _run(self, check_id: int, token: str, stop: threading.Event) -> None:
        row = self.store.get(check_id)
        if row is None:
            return
        criteria = Criteria.from_json(row.criteria)
        server = self.servers.get(row.server)
        if isinstance(server, UnknownServer) or criteria is None:
            why = "its server is no longer configured" if criteria else "its selection is lost"
            self.store.finish(check_id, token, counts=None, summary={}, error=why)
            return
        notes: list[str] = []
        runtimes = HealthChecks.runtimes_of(server, notes)
        visited = HealthChecks.visited_of(server, criteria.visited_within, notes)
        try:
            items = selected(server, criteria.content_filter or ContentFilter())
        except ConnectError as exc:
            self.store.finish(check_id, token, counts=None, summary={}, error=exc.reason)
            return
        self.store.set_total(check_id, token, len(items))
        claims = self.store.claims(check_id)
        claimed: set[str] = set()
        waiting: list[ItemHealth] = []

        def fenced() -> None:
            if stop.is_set():
                raise LeaseLost(f"health check {check_id}: stopped")

        def claim(item: ContentItem) -> bool:
            """Whether to probe it: not when an earlier holder recorded its verdict. The row
            itself is written just before the request (`on_before`)."""
            fenced()
            if item.guid in claims.done:
                return False
            claimed.add(item.guid)
            return True

        def on_before(item: ContentItem, keys: set[str]) -> None:
            fenced()
            self.store.claim(check_id, token, item, keys)

        prober = Prober(
            server.client.single_try(),
            settings=self.settings,
            sleep=self._sleep,
            on_before=on_before,
        )

        def check(item: ContentItem, how: Probe) -> ItemHealth:
            before = claims.open.get(item.guid)
            if before is not None:  # a dead holder's probe: its job says, if it started one
                found = prober.resume(item, how, set(before))
                if found is not None:
                    log.info("health check %s: %s judged from its job", check_id, item.guid)
                    return found
            return prober.check(item, how)

        def sink(result: ItemHealth) -> None:
            if result.guid in claimed:
                self.store.record(check_id, token, [result])
                self.notify(check_id)
                return
            waiting.append(result)
            if len(waiting) >= FLUSH_EVERY:
                flush()

        def flush() -> None:
            self.store.record(check_id, token, waiting)
            waiting.clear()
            self.notify(check_id)

        try:
            run_checks(
                items,
                check,
                runtimes=runtimes,
                render=row.render,
                concurrency=self.concurrency,
                sink=sink,
                claim=claim,
                visited=visited,
            )
        except ConnectError as exc:
            flush()
            self.store.finish(check_id, token, counts=None, summary={}, error=exc.reason)
            return
        flush()
        results = self.store.results(check_id)
        report = HealthReport(
            server.name,
            tuple(results),
            by_runtime(results),
            HealthChecks.packages_of(server, results, notes),
            row.render,
            tuple(notes),
            criteria.visited_within if visited is not None else None,
        )
        self.store.finish(check_id, token, counts=report.counts, summary=_summary(report))
        log.info("health check %s: %s", check_id, report.counts)


RENDER_KIND = "health_render"  # a pending action: a check with `--render`, to confirm
RENDER_ACTION = "health_render"  # its audit records


@dataclass(frozen=True, slots=True)
class RenderRequested:
    """A check with `--render` waits for an admin's Confirm: `rendered` documents of the
    selection would be rendered again (what their viewers see is replaced)."""

    pending_id: str
    server: str
    rendered: int


@dataclass(frozen=True, slots=True)
class RenderStarted:
    check_id: int
    server: str
    description: str


@dataclass(frozen=True, slots=True)
class RenderCancelled:
    server: str


class HealthRuns:
    """The use cases of stored checks: start one, read its progress and result, list them."""

    def __init__(
        self,
        checks: HealthChecks,
        store: HealthStore,
        runner: HealthRunner,
        *,
        confirmations: Confirmations | None = None,
        audit: AuditStore | None = None,
    ) -> None:
        self.checks = checks
        self.store = store
        self.runner = runner
        self.confirmations = confirmations  # None: `--render` is refused (not set up)
        self.audit = audit

    # ---- `--render`: admins only, behind a confirmation ---------------------------------

    def request_render(
        self, actor: Actor, prepared: Prepared, description: str
    ) -> RenderRequested | Denied | ConnectFailed:
        """Rendering replaces what viewers see: an admin asks, then an admin confirms."""
        confirmations = self.confirmations
        if confirmations is None:
            return Denied("Rendering again is not set up on this bot.")
        decision = confirmations.authz.admin_in(actor.user, actor.channel)
        if not decision.allowed:
            self._audit(actor, "denied", prepared.server, description, decision.reason)
            return Denied(decision.reason)
        server = self.checks.servers.get(prepared.server)
        if isinstance(server, UnknownServer):
            return ConnectFailed("Listing the content", "the server is no longer configured")
        try:
            items = selected(server, prepared.criteria.content_filter or ContentFilter())
        except ConnectError as exc:
            return ConnectFailed("Listing the content", exc.reason)
        visited = HealthChecks.visited_of(server, prepared.criteria.visited_within, [])
        rendered = sum(
            item.rendered
            and item.published
            and not item.locked
            and (visited is None or item.guid in visited)
            for item in items
        )
        pending = confirmations.pending.create(
            kind=RENDER_KIND,
            requested_by=actor.user,
            channel=actor.channel,
            payload={
                "server": prepared.server,
                "criteria": prepared.criteria.to_json(),
                "description": description,
                "rendered": rendered,
            },
        )
        self._audit(actor, "requested", prepared.server, description, f"{rendered} rendered")
        return RenderRequested(pending.id, prepared.server, rendered)

    def attach_render_card(self, pending_id: str, ts: str) -> None:
        if self.confirmations is not None:
            self.confirmations.pending.attach_message(pending_id, ts)

    def confirm_render(
        self, actor: Actor, pending_id: str, message_ts: str | None = None
    ) -> RenderStarted | Refusal:
        """The Confirm click: one click wins; the check starts, on the confirmation's card."""
        confirmations = self.confirmations
        if confirmations is None:
            return NotFound(RENDER_KIND)
        decided = self._decide_render(
            actor,
            pending_id,
            message_ts,
            "confirmed",
            confirmations.confirmer("confirm rendering again"),
        )
        if not isinstance(decided, Pending):
            return decided
        payload = decided.payload
        criteria = Criteria.from_json(payload.get("criteria"))
        server = str(payload.get("server") or "")
        description = str(payload.get("description") or "")
        if criteria is None:
            return NotFound(RENDER_KIND)
        requester = Actor(decided.requested_by, decided.channel)
        self._audit(actor, "confirmed", server, description, f"requested by {requester.user}")
        check_id = self.start(
            Prepared(server, criteria, True),
            requester,
            card_ts=decided.message_ts,
            description=description,
        )
        confirmations.pending.finish(decided.id, state="done", result={"check_id": check_id})
        return RenderStarted(check_id, server, description)

    def cancel_render(
        self, actor: Actor, pending_id: str, message_ts: str | None = None
    ) -> RenderCancelled | Refusal:
        confirmations = self.confirmations
        if confirmations is None:
            return NotFound(RENDER_KIND)
        decided = self._decide_render(
            actor,
            pending_id,
            message_ts,
            "cancelled",
            confirmations.requester_or_admin("cancel this"),
        )
        if not isinstance(decided, Pending):
            return decided
        server = str(decided.payload.get("server") or "")
        self._audit(actor, "cancelled", server, str(decided.payload.get("description") or ""))
        return RenderCancelled(server)

    def _decide_render(
        self, actor: Actor, pending_id: str, message_ts: str | None, new_state: str, rule: Rule
    ) -> Pending | Refusal:
        """One click on a render confirmation card wins (Confirm or Cancel), by `rule`."""
        assert self.confirmations is not None
        return self.confirmations.decide(
            actor,
            pending_id,
            kind=RENDER_KIND,
            new_state=new_state,
            rule=rule,
            action=RENDER_ACTION,
            describe=_describe_render,
            on_expired=lambda _pending: None,
            message_ts=message_ts,
        )

    def _audit(
        self, actor: Actor, outcome: str, server: str, description: str, detail: str = ""
    ) -> None:
        if self.audit is not None:
            self.audit.record(
                actor=actor.user,
                action=RENDER_ACTION,
                outcome=outcome,
                target=f"health --render: {description}",
                channel=actor.channel,
                detail=detail,
                server=server,
            )

    # ---- checks --------------------------------------------------------------------------

    def prepare(
        self,
        actor: Actor,
        server_name: str | None,
        content_filter: ContentFilter,
        packages: tuple[str, ...] = (),
        *,
        render: bool = False,
        visited_within: int | None = None,
    ) -> PrepareOutcome:
        """Which server and items: `--uses-package` resolved to items now (stored as GUIDs);
        `--visited-within` is asked of Connect when the check runs."""
        server = self.checks.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        resolved = self.checks.resolve_packages(actor, server, content_filter, packages)
        if not isinstance(resolved, ContentFilter):
            return resolved
        return Prepared(
            server.name, of_filter(resolved).with_visited_within(visited_within), render
        )

    def start(
        self, prepared: Prepared, actor: Actor, *, card_ts: str | None, description: str
    ) -> int:
        check_id = self.store.create(
            server=prepared.server,
            requested_by=actor.user,
            channel=actor.channel,
            card_ts=card_ts,
            description=description,
            criteria=prepared.criteria.to_json(),
            render=prepared.render,
        )
        self.runner.launch(check_id)
        return check_id

    def progress(self, check_id: int) -> Progress | None:
        row = self.store.get(check_id)
        if row is None:
            return None
        counts, probing = self.store.progress(check_id)
        return Progress(row, counts, probing)

    def report(self, check_id: int) -> HealthReport | None:
        """A finished check's report, as stored."""
        row = self.store.get(check_id)
        if row is None or not row.finished:
            return None
        results = self.store.results(check_id)
        summary = row.summary
        packages = tuple(
            PackageFailures(**group)
            for group in summary.get("by_package") or ()
            if isinstance(group, dict)
        )
        notes = tuple(str(note) for note in summary.get("notes") or ())
        within = summary.get("visited_within")
        return HealthReport(
            row.server or "",
            tuple(results),
            by_runtime(results),
            packages,
            row.render,
            notes,
            int(within) if isinstance(within, int) else None,
        )

    def failing(self, check_id: int) -> Failing | None:
        """None: no such check, or it has not ended."""
        report = self.report(check_id)
        row = self.store.get(check_id)
        if report is None or row is None:
            return None
        caches: dict[RuntimeCache, None] = {}
        for result in report.failing:
            if isinstance(result.verdict, FailsToStart) and result.verdict.stage != "runtime":
                caches.update(dict.fromkeys(result.item.runtimes))
        guids = frozenset(result.guid for result in report.failing)
        return Failing(check_id, row.server, guids, tuple(caches))

    def history(self, limit: int = 10, server: str | None = None) -> list[CheckRow]:
        return self.store.history(limit, server)

    def latest(self) -> list[CheckRow]:
        return self.store.latest_per_server()

    def reported(self, check_id: int) -> None:
        self.store.reported_final(check_id, self.runner.instance_id)


def _describe_render(pending: Pending) -> tuple[str, str | None]:
    payload = pending.payload
    server = payload.get("server")
    target = f"health --render: {payload.get('description') or ''}"
    return target, server if isinstance(server, str) else None


def _summary(report: HealthReport) -> dict[str, Any]:
    return {
        "by_package": [
            {
                "language": group.language,
                "name": group.name,
                "failing": group.failing,
                "failing_total": group.failing_total,
                "users": group.users,
            }
            for group in report.by_package
        ],
        "notes": list(report.notes),
        "visited_within": report.visited_within,
        "unvisited": report.counts.unvisited,  # no column on the check row: kept here
    }
