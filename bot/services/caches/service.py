"""List caches, plan a deletion (dry runs), and carry it out once confirmed."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.connect import ConnectClient, ConnectError, ContentItem, NotSent, RuntimeCache
from bot.connect.models import LOCAL_IMAGE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheTarget:
    """What the user asked for; Connect decides whether it exists."""

    language: str
    version: str
    image_name: str = LOCAL_IMAGE

    def as_cache(self) -> RuntimeCache:
        return RuntimeCache(self.language, self.version, self.image_name)

    @property
    def label(self) -> str:
        return f"{self.language} {self.version} ({self.image_name})"


@dataclass(frozen=True, slots=True)
class PlannedDeletion:
    cache: RuntimeCache  # as Connect names it (its capitalisation)
    published_items: int  # published content using this runtime
    interactive_items: int


@dataclass(frozen=True, slots=True)
class Rejection:
    target: CacheTarget
    reason: str


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    deletions: tuple[PlannedDeletion, ...]
    rejected: tuple[Rejection, ...]

    @property
    def ok(self) -> bool:
        return bool(self.deletions)


@dataclass(frozen=True, slots=True)
class DeletionResult:
    cache: RuntimeCache
    succeeded: bool
    task_id: str | None
    detail: str  # Connect's last output line on success, its error otherwise


@dataclass(frozen=True, slots=True)
class Unanswered:
    """The DELETE may have reached Connect, but no answer says what came of it."""

    reason: str


@dataclass(slots=True)
class RuntimeUsage:
    published: Counter[RuntimeCache] = field(default_factory=Counter)
    interactive: Counter[RuntimeCache] = field(default_factory=Counter)


def runtime_usage(items: Iterable[ContentItem]) -> RuntimeUsage:
    usage = RuntimeUsage()
    for item in items:
        if not item.published:
            continue
        for runtime in item.runtimes:
            usage.published[runtime] += 1
            if item.interactive:
                usage.interactive[runtime] += 1
    return usage


class CacheService:
    """Cache listing is shared for `max_age` seconds: a burst of `caches list` commands (a team
    all looking at once) costs Connect one request, and the views one render."""

    def __init__(self, connect: ConnectClient, *, max_age: float = 2.0) -> None:
        self.connect = connect
        self.max_age = max_age
        self._fetch_lock = threading.Lock()
        self._listed: tuple[float, tuple[RuntimeCache, ...]] | None = None

    def list(self) -> tuple[RuntimeCache, ...]:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._fetch_lock:  # one request in flight; the others wait for its answer
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            caches = tuple(sorted(self.connect.caches.list(), key=_cache_order))
            self._listed = (time.monotonic(), caches)
            return caches

    def _fresh(self) -> tuple[RuntimeCache, ...] | None:
        listed = self._listed
        if listed is not None and time.monotonic() - listed[0] < self.max_age:
            return listed[1]
        return None

    def forget(self) -> None:
        self._listed = None

    def plan(self, targets: Iterable[CacheTarget]) -> DeletionPlan:
        """Dry-run every target with Connect; count the published content each one serves."""
        planned: list[RuntimeCache] = []
        rejected: list[Rejection] = []
        seen: set[tuple[str, str, str]] = set()
        for target in targets:
            key = (target.language.lower(), target.version, target.image_name)
            if key in seen:
                continue
            seen.add(key)
            try:
                answer = self.connect.caches.delete(target.as_cache(), dry_run=True)
            except ConnectError as exc:
                rejected.append(Rejection(target, _rejection_reason(exc)))
                continue
            planned.append(answer.cache)
        if not planned:
            return DeletionPlan((), tuple(rejected))
        usage = runtime_usage(self.connect.content.iter())
        deletions = tuple(
            PlannedDeletion(
                cache=cache,
                published_items=usage.published[_normal(cache)],
                interactive_items=usage.interactive[_normal(cache)],
            )
            for cache in planned
        )
        return DeletionPlan(deletions, tuple(rejected))

    def request_delete(self, cache: RuntimeCache) -> str | DeletionResult | Unanswered:
        """Really delete: Connect's task id, a definite refusal, or `Unanswered` when the
        request may have reached Connect and its answer was lost (check before reporting)."""
        self.forget()
        try:
            answer = self.connect.caches.delete(cache, dry_run=False)
        except NotSent as exc:
            return DeletionResult(cache, False, None, f"{exc.reason}; the request was not sent")
        except ConnectError as exc:
            if exc.transient:
                return Unanswered(exc.reason)
            if exc.malformed:  # it answered, but not as the API says: it may have deleted
                return Unanswered(f"its answer was not understood: {exc.reason}")
            return DeletionResult(cache, False, None, _rejection_reason(exc))
        if answer.task_id is None:  # an odd answer: the cache list says what happened
            return Unanswered("Connect answered with no deletion task")
        return answer.task_id

    def follow_delete(
        self, cache: RuntimeCache, task_id: str, *, task_timeout: float = 600.0
    ) -> DeletionResult | Unanswered:
        """Follow Connect's deletion task to its end. A failed task is a failure."""
        try:
            task = self.connect.tasks.follow(task_id, timeout=task_timeout)
        except ConnectError as exc:
            return Unanswered(f"lost track of task {task_id}: {exc.reason}")
        self.forget()
        if not task.finished:
            return Unanswered(f"its task did not finish within {task_timeout:.0f} s")
        if not task.succeeded:
            return DeletionResult(cache, False, task.id, task.failure_reason)
        detail = task.output[-1] if task.output else "deleted"
        return DeletionResult(cache, True, task.id, detail)

    def is_listed(self, cache: RuntimeCache) -> bool:
        """Whether Connect lists the cache now (a fresh request). Raises ConnectError."""
        self.forget()
        wanted = _normal(cache)
        return any(_normal(listed) == wanted for listed in self.connect.caches.list())


def _cache_order(cache: RuntimeCache) -> tuple[str, bool, str, str]:
    return (
        cache.language.lower(),
        cache.image_name != LOCAL_IMAGE,
        cache.image_name,
        cache.version,
    )


def _normal(cache: RuntimeCache) -> RuntimeCache:
    # Content reports "R"/"Python"; caches are matched the same way whatever the case.
    language = "Python" if cache.language.lower() == "python" else "R"
    return RuntimeCache(language, cache.version, cache.image_name)


def _rejection_reason(exc: ConnectError) -> str:
    if exc.status == 404:
        return "Connect has no such cache"
    if exc.status == 403:
        return "Connect refused: the bot's API key is not an administrator's"
    if exc.code == 194:
        return "runtime cache management is disabled on this Connect server"
    if exc.transient:
        # Only dry runs get here: for them "nothing was changed" is true.
        status = f"HTTP {exc.status}" if exc.status else "no answer"
        return f"Connect is not answering ({status}); nothing was changed, try again shortly"
    return exc.reason
