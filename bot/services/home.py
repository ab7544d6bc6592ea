"""App Home: what one person sees of every Connect server, who has been looking, and when to
show them again.

`Home.overview(actor)` gathers, per Connect server: the runtime caches (count and list), the
active rebuilds with their progress and the ones that ended in the last hour; whether the
actor is a connect-bot administrator; and, for administrators only, the last audit records.
Nothing here is destructive: Home only looks. With BOT_ALLOWED_CHANNELS set, only
administrators and members of those channels see any of it (`access`); anyone else gets an
overview with nothing of Connect in it, only where to ask (`refused`).

Connect is asked for its caches on a thread of its own, one request per server at a time;
an overview waits for the answer at most `open_wait` seconds, so Home is published within
Slack's 3 s even when Connect is slow (it then says so, and `subscribe`rs are told when the
late answer lands, so Home can be shown again). Listings are reused for `cache_ttl` seconds
by republishes; an open asks again (CacheService shares a burst of them).

Who opened Home, and what was last published to them, is in the database (`home_opens`), not
in memory: with several replicas the one driving a rebuild republishes Home for every recent
viewer, whichever replica their open reached, and all of them publish with the same last
`hash` and see the same last publish time. `RepublishThrottle` decides when (pure).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.connect import ConnectError, RuntimeCache
from bot.services.audit import AuditRecord, AuditStore
from bot.services.authz import Authorizer, Decision
from bot.services.health.store import CheckRow
from bot.services.outcomes import Actor
from bot.services.rebuilds import Progress, RebuildStore
from bot.services.rebuilds.planning import FINISHED
from bot.services.schedules import Scheduled, ScheduleStore
from bot.services.servers import ConnectServer, Servers
from bot.store import Database, utcnow
from bot.store.models import HomeOpen

log = logging.getLogger(__name__)

RECENT_VIEWERS = timedelta(hours=1)  # who opened Home this recently sees it republished
RECENTLY_FINISHED = timedelta(hours=1)  # ended rebuilds still shown on Home
AUDIT_ROWS = 5
HISTORY_ROWS = 10
MAX_CACHES = 500  # kept per server; the view shows fewer
CACHE_TTL = 30.0  # seconds a listing serves republishes
OPEN_MAX_AGE = 2.0  # an open asks Connect again unless the listing is this fresh
FAILED_RETRY = 5.0  # a failed listing is asked again after this long at the earliest
OPEN_WAIT = 1.0  # the longest an overview waits for Connect's answer

SECTION_KINDS = ("caches", "history", "plan")


@dataclass(frozen=True, slots=True)
class Section:
    """A part of Home a person expanded with a button: `kind` of server `server`."""

    kind: str  # caches | history | plan
    server: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.server}"

    @classmethod
    def parse(cls, text: str | None) -> Section | None:
        kind, sep, server = (text or "").partition(":")
        if not sep or kind not in SECTION_KINDS or not server:
            return None
        return cls(kind, server)


@dataclass(frozen=True, slots=True)
class ServerHome:
    name: str
    url: str
    default: bool
    caches: tuple[RuntimeCache, ...] | None  # None: Connect has not answered yet
    caches_as_of: datetime | None  # when that list was Connect's answer
    caches_error: str | None  # why the last listing failed (the list shown is older, if any)
    caches_pending: bool  # Connect is still being asked
    active: tuple[Progress, ...]  # running or cancelling, newest first
    finished: tuple[Progress, ...]  # ended within RECENTLY_FINISHED, newest first
    history: tuple[Progress, ...] = ()  # the last rebuilds, only when that section is open
    scheduled: tuple[Scheduled, ...] = ()  # waiting for their start, soonest first
    health: CheckRow | None = None  # the latest finished health check of this server


@dataclass(frozen=True, slots=True)
class HomeOverview:
    user: str
    admin: bool  # a connect-bot administrator: sees the audit log and "Plan a rebuild"
    servers: tuple[ServerHome, ...]
    audit: tuple[AuditRecord, ...]  # always empty for non-admins
    section: Section | None  # the expanded part, if any
    several: bool  # several Connect servers: every part names its server
    # Not for this person (BOT_ALLOWED_CHANNELS): where to ask. Then nothing of Connect is in
    # the overview: no server, no cache, no rebuild, no schedule.
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class HomeViewer:
    user: str
    opened_at: datetime
    published_at: datetime | None
    last_hash: str | None
    section: str | None


@dataclass(slots=True)
class _Listing:
    caches: tuple[RuntimeCache, ...] | None = None
    as_of: datetime | None = None
    error: str | None = None
    checked: float | None = None  # monotonic time of the last answer (or failure)
    inflight: threading.Event | None = None
    waited_out: bool = False  # an overview stopped waiting for the request in flight


class _Listings:
    """Each server's last cache listing, fetched on a daemon thread (one per server at most)."""

    def __init__(self, on_late: Callable[[], None], clock: Callable[[], float]) -> None:
        self._on_late = on_late
        self._clock = clock
        self._lock = threading.Lock()
        self._by_server: dict[str, _Listing] = {}

    def get(
        self, servers: Sequence[ConnectServer], *, max_age: float, wait: float
    ) -> dict[str, _Listing]:
        """Ask again where older than `max_age`; wait (all at once) at most `wait` seconds."""
        waiting: list[tuple[str, threading.Event]] = []
        with self._lock:
            now = self._clock()
            for server in servers:
                listing = self._by_server.setdefault(server.name, _Listing())
                age_limit = FAILED_RETRY if listing.error else max_age
                stale = listing.checked is None or now - listing.checked >= age_limit
                if stale and listing.inflight is None:
                    listing.inflight = threading.Event()
                    threading.Thread(
                        target=self._fetch,
                        args=(server, listing, listing.inflight),
                        name=f"home-caches-{server.name}",
                        daemon=True,
                    ).start()
                # Wait when asked to, or when nothing has been answered yet.
                if listing.inflight is not None and (stale or listing.caches is None):
                    waiting.append((server.name, listing.inflight))
        deadline = time.monotonic() + wait
        for name, event in waiting:
            if not event.wait(max(0.0, deadline - time.monotonic())):
                with self._lock:
                    self._by_server[name].waited_out = True
        with self._lock:
            return {
                server.name: _Listing(
                    caches=listing.caches,
                    as_of=listing.as_of,
                    error=listing.error,
                    checked=listing.checked,
                    inflight=listing.inflight,
                )
                for server in servers
                for listing in [self._by_server[server.name]]
            }

    def _fetch(self, server: ConnectServer, listing: _Listing, done: threading.Event) -> None:
        caches: tuple[RuntimeCache, ...] | None = None
        error: str | None = None
        try:
            caches = tuple(server.caches.list())[:MAX_CACHES]
        except ConnectError as exc:
            error = exc.reason
        except Exception as exc:  # never let a listing thread die silently
            log.exception("listing the caches of %s for Home failed", server.name)
            error = type(exc).__name__
        with self._lock:
            if caches is not None:
                listing.caches, listing.as_of, listing.error = caches, utcnow(), None
            else:
                listing.error = error
            listing.checked = self._clock()
            listing.inflight = None
            late, listing.waited_out = listing.waited_out, False
        done.set()
        if late:
            try:
                self._on_late()
            except Exception:
                log.exception("a Home listener failed")


class Home:
    """The App Home use case: the overview, the record of who opened Home, and sections."""

    def __init__(
        self,
        *,
        db: Database,
        servers: Servers,
        authz: Authorizer,
        audit: AuditStore,
        rebuilds: RebuildStore,
        schedules: ScheduleStore | None = None,
        health: Callable[[], Sequence[CheckRow]] | None = None,
        cache_ttl: float = CACHE_TTL,
        open_wait: float = OPEN_WAIT,
        recent: timedelta = RECENT_VIEWERS,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.servers = servers
        self.authz = authz
        self.audit = audit
        self.rebuilds = rebuilds
        self.schedules = schedules
        self.health = health  # the latest finished health check of each server
        self.cache_ttl = cache_ttl
        self.open_wait = open_wait
        self.recent = recent
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []
        self._listings = _Listings(self._changed, monotonic)

    # ---- what Home shows -----------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> None:
        """`listener()` when something Home shows changed outside a rebuild: a cache listing
        an overview gave up waiting for has arrived (the Home publisher republishes)."""
        self._listeners.append(listener)

    def overview(self, actor: Actor, *, fresh: bool = True) -> HomeOverview:
        """Everything `actor` may see on Home. `fresh` (an open): ask Connect again unless its
        answer is seconds old; otherwise (a republish) reuse it for `cache_ttl` seconds."""
        admin = self.is_admin(actor.user)
        access = self.access(actor.user)
        if not access.allowed:
            return HomeOverview(
                user=actor.user,
                admin=False,
                servers=(),
                audit=(),
                section=None,
                several=self.servers.several,
                refused=access.reason,
            )
        viewer = self.viewer(actor.user)
        section = Section.parse(viewer.section if viewer else None)
        if section is not None and section.kind == "plan" and not admin:
            section = None
        servers = list(self.servers)
        listings = self._listings.get(
            servers,
            max_age=OPEN_MAX_AGE if fresh else self.cache_ttl,
            wait=self.open_wait,
        )
        active, finished = self._rebuilds_by_server()
        history = self._history(section.server) if section and section.kind == "history" else ()
        scheduled: dict[str, list[Scheduled]] = {}
        for item in self.schedules.scheduled() if self.schedules is not None else ():
            scheduled.setdefault(item.server or self.servers.default, []).append(item)
        latest = {row.server: row for row in self.health()} if self.health is not None else {}
        homes = tuple(
            ServerHome(
                name=server.name,
                url=server.url,
                default=server.name == self.servers.default,
                caches=listing.caches,
                caches_as_of=listing.as_of,
                caches_error=listing.error,
                caches_pending=listing.inflight is not None,
                active=tuple(active.get(server.name, ())),
                finished=tuple(finished.get(server.name, ())),
                history=history if section and section.server == server.name else (),
                scheduled=tuple(scheduled.get(server.name, ())),
                health=latest.get(server.name),
            )
            for server in servers
            for listing in [listings[server.name]]
        )
        return HomeOverview(
            user=actor.user,
            admin=admin,
            servers=homes,
            audit=tuple(self.audit.recent(AUDIT_ROWS)) if admin else (),
            section=section,
            several=self.servers.several,
        )

    def is_admin(self, user: str) -> bool:
        """A connect-bot administrator (users or groups; fails closed when Slack can't say).
        BOT_ALLOWED_CHANNELS limits where commands work and who sees Connect data on Home
        (`access`), not who is an administrator."""
        return self.authz.admin(user).allowed

    def access(self, user: str) -> Decision:
        """Whether `user` may see Connect data on Home and use its buttons: with
        BOT_ALLOWED_CHANNELS set, only administrators and members of those channels."""
        return self.authz.home(user)

    def _server_of(self, p: Progress) -> str:
        return p.server or self.servers.default

    def _rebuilds_by_server(
        self,
    ) -> tuple[dict[str, list[Progress]], dict[str, list[Progress]]]:
        active: dict[str, list[Progress]] = {}
        for rebuild_id in sorted(self.rebuilds.active_ids(), reverse=True):
            p = self.rebuilds.progress(rebuild_id)
            if p is not None and p.active:
                active.setdefault(self._server_of(p), []).append(p)
        finished: dict[str, list[Progress]] = {}
        since = self.clock() - RECENTLY_FINISHED
        for p in self.rebuilds.history(20):
            if p.state in FINISHED and p.started_at and p.finished_at and p.finished_at >= since:
                finished.setdefault(self._server_of(p), []).append(p)
        return active, finished

    def _history(self, server: str) -> tuple[Progress, ...]:
        rebuilds = [p for p in self.rebuilds.history(50) if self._server_of(p) == server]
        return tuple(rebuilds[:HISTORY_ROWS])

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("a Home listener failed")

    # ---- who looked, and what they were shown --------------------------------------------

    def opened(self, user: str, *, view_hash: str | None = None) -> None:
        """`user` opened Home (`view_hash`: the hash of the view Slack shows them, if any)."""
        values: dict[str, Any] = {"opened_at": self.clock()}
        if view_hash:
            values["last_hash"] = view_hash
        self._upsert(user, values)

    def published(self, user: str, view_hash: str | None) -> None:
        """A views.publish for `user` succeeded; its answer's `hash` guards the next one."""
        self._upsert(user, {"published_at": self.clock(), "last_hash": view_hash})

    def toggle(self, user: str, section: Section) -> Section | None:
        """Expand `section` of `user`'s Home, or collapse it when it is the one expanded."""
        viewer = self.viewer(user)
        current = viewer.section if viewer else None
        chosen = None if current == str(section) else section
        self._upsert(user, {"section": str(chosen) if chosen else None})
        return chosen

    def viewer(self, user: str) -> HomeViewer | None:
        with self.db.session() as session:
            row = session.get(HomeOpen, user)
            return _viewer(row) if row is not None else None

    def recent_viewers(self, limit: int = 1000) -> list[HomeViewer]:
        """Who opened Home within `recent` (an hour), most recent first."""
        since = self.clock() - self.recent
        with self.db.session() as session:
            rows = session.scalars(
                select(HomeOpen)
                .where(HomeOpen.opened_at >= since)
                .order_by(HomeOpen.opened_at.desc())
                .limit(limit)
            ).all()
            return [_viewer(row) for row in rows]

    def _upsert(self, user: str, values: dict[str, Any]) -> None:
        for attempt in range(2):
            try:
                with self.db.session() as session:
                    changed = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
                        update(HomeOpen).where(HomeOpen.user_id == user).values(**values)
                    ).rowcount
                    if not changed:
                        session.add(HomeOpen(user_id=user, **{"opened_at": self.clock(), **values}))
                return
            except IntegrityError:  # another replica inserted the row first: update it
                if attempt:
                    raise


def _viewer(row: HomeOpen) -> HomeViewer:
    return HomeViewer(
        user=row.user_id,
        opened_at=row.opened_at,
        published_at=row.published_at,
        last_hash=row.last_hash,
        section=row.section,
    )


@dataclass
class RepublishThrottle:
    """When to republish whose Home. Pure: times are monotonic seconds, passed in.

    Coalescing: any number of requests for a user before their turn make one publish. At most
    one publish per user per `per_user` seconds (counting publishes by anyone, e.g. an open,
    through `published_ago`), and at most one publish every `spacing` seconds overall:
    views.publish is Tier 4 (100+ a minute per workspace), so many viewers are served in turn,
    each less often, never in a burst.
    """

    per_user: float = 5.0
    spacing: float = 0.6
    _due: dict[str, float] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)
    _last_any: float = -math.inf

    def request(self, user: str, now: float, *, published_ago: float | None = None) -> None:
        """`user`'s Home should show a change; `published_ago`: seconds since the last
        publish to them that the database knows of (any replica), if any."""
        last = self._last.get(user, -math.inf)
        if published_ago is not None:
            last = max(last, now - max(0.0, published_ago))
        due = max(now, last + self.per_user)
        self._due[user] = min(self._due.get(user, math.inf), due)

    def request_all(self, users: Iterable[tuple[str, float | None]], now: float) -> None:
        for user, published_ago in users:
            self.request(user, now, published_ago=published_ago)

    def take(self, now: float) -> str | None:
        """The user whose publish is due now (the longest waiting first), or None."""
        if not self._due or now < self._last_any + self.spacing:
            return None
        user, due = min(self._due.items(), key=lambda kv: kv[1])
        return user if due <= now else None

    def published(self, user: str, now: float) -> None:
        self._due.pop(user, None)
        self._last[user] = now
        self._last_any = now
        if len(self._last) > 10_000:  # forget who was served long ago
            horizon = now - self.per_user
            self._last = {u: t for u, t in self._last.items() if t >= horizon}

    def drop(self, user: str) -> None:
        """Give up on `user` (e.g. Slack refused the publish); a later change asks again."""
        self._due.pop(user, None)

    def wait(self, now: float) -> float | None:
        """Seconds until the next publish is due; None when nothing is wanted."""
        if not self._due:
            return None
        due = min(self._due.values())
        return max(0.0, due - now, self._last_any + self.spacing - now)

    @property
    def pending(self) -> int:
        return len(self._due)
