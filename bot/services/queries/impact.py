"""Package impact: which published content's active bundle uses a package, on which runtimes
and caches; and the content GUIDs behind `--uses-package` (search and rebuild). Read-only.

Connect's packages API (`GET v1/packages?name=`, Connect >= 2024.11.0) also lists the packages
of older bundles; only rows of an item's active bundle count (connect-api-2.md §2, §10).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.connect import (
    PACKAGES_SINCE,
    ConnectClient,
    ConnectError,
    ContentFilter,
    ContentItem,
    PackagesUnavailable,
    PackageUse,
    RuntimeCache,
)
from bot.connect.models import LOCAL_IMAGE, sanitised_image
from bot.services.outcomes import Actor, ConnectFailed, UnknownServer
from bot.services.queries.service import ContentFound
from bot.services.servers import ConnectServer, Servers

_LANGUAGES = {"r": "R", "python": "Python"}


@dataclass(frozen=True, slots=True)
class RuntimeImpact:
    """One runtime (language, version, image) carrying content that uses the package(s)."""

    runtime: RuntimeCache
    items: tuple[ContentItem, ...]
    cache: RuntimeCache | None  # its runtime cache, as Connect lists it (None: none)

    @property
    def cached(self) -> bool:
        return self.cache is not None

    @property
    def off_host(self) -> bool:
        return self.runtime.image_name != LOCAL_IMAGE


@dataclass(frozen=True, slots=True)
class ImpactFound:
    server: str
    packages: tuple[str, ...]
    runtimes: tuple[RuntimeImpact, ...]

    @property
    def items(self) -> tuple[ContentItem, ...]:
        seen: dict[str, ContentItem] = {}
        for runtime in self.runtimes:
            for item in runtime.items:
                seen.setdefault(item.guid, item)
        return tuple(seen.values())

    @property
    def guids(self) -> frozenset[str]:
        return frozenset(item.guid for item in self.items)

    @property
    def caches(self) -> tuple[RuntimeCache, ...]:
        return tuple(r.cache for r in self.runtimes if r.cache is not None)


@dataclass(frozen=True, slots=True)
class ContentUsing:
    """The published items whose active bundle uses any of `packages`."""

    server: str
    packages: tuple[str, ...]
    guids: frozenset[str]


@dataclass(frozen=True, slots=True)
class PackagesUnsupported:
    """This Connect has no packages API; `needed` is the first version with one."""

    server: str
    version: str | None
    needed: str = PACKAGES_SINCE


ImpactOutcome = ImpactFound | PackagesUnsupported | UnknownServer | ConnectFailed
UsingOutcome = ContentUsing | PackagesUnsupported | UnknownServer | ConnectFailed
SearchOutcome = ContentFound | PackagesUnsupported | UnknownServer | ConnectFailed

_WHAT = "Asking Connect which content uses the package"


class Impact:
    def __init__(self, *, servers: Servers) -> None:
        self.servers = servers

    def impact(
        self, actor: Actor, server_name: str | None, packages: Sequence[str]
    ) -> ImpactOutcome:
        """Runtimes, items and caches behind the published content using `packages`."""
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        try:
            items = server.client.content.list()
            users = _users(items, _rows(server.client, packages))
            caches = server.caches.list()
        except PackagesUnavailable:
            return _unsupported(server)
        except ConnectError as exc:
            return ConnectFailed(_WHAT, exc.reason)
        by_runtime: dict[RuntimeCache, list[ContentItem]] = {}
        for item, rows in users:
            for runtime in _runtimes(item, rows):
                by_runtime.setdefault(runtime, []).append(item)
        runtimes = tuple(
            RuntimeImpact(
                runtime,
                tuple(sorted(found, key=lambda i: i.display_title.lower())),
                _cache_of(runtime, caches),
            )
            for runtime, found in sorted(by_runtime.items(), key=lambda kv: _order(kv[0]))
        )
        return ImpactFound(server.name, tuple(_unique(packages)), runtimes)

    def content_using(
        self, actor: Actor, server_name: str | None, packages: Sequence[str]
    ) -> UsingOutcome:
        """The GUIDs of the published items using any of `packages` (for `rebuild`)."""
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        try:
            items = server.client.content.list()
            users = _users(items, _rows(server.client, packages))
        except PackagesUnavailable:
            return _unsupported(server)
        except ConnectError as exc:
            return ConnectFailed(_WHAT, exc.reason)
        guids = frozenset(item.guid for item, _ in users)
        return ContentUsing(server.name, tuple(_unique(packages)), guids)

    def search(
        self,
        actor: Actor,
        server_name: str | None,
        content_filter: ContentFilter,
        packages: Sequence[str],
    ) -> SearchOutcome:
        """`content search` with `--uses-package`: the filter's matches that use a package."""
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        try:
            items = server.client.content.list()
            users = {item.guid for item, _ in _users(items, _rows(server.client, packages))}
        except PackagesUnavailable:
            return _unsupported(server)
        except ConnectError as exc:
            return ConnectFailed("Content search", exc.reason)
        found = [item for item in items if item.guid in users and content_filter.matches(item)]
        return ContentFound(server.name, found)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _rows(client: ConnectClient, packages: Sequence[str]) -> list[PackageUse]:
    """One packages query per distinct name (paged by the client), for this command only."""
    asked: dict[str, list[PackageUse]] = {}
    for name in _unique(packages):
        asked[name] = client.packages.find(name)
    return [row for rows in asked.values() for row in rows]


def _users(
    items: Iterable[ContentItem], rows: Iterable[PackageUse]
) -> list[tuple[ContentItem, list[PackageUse]]]:
    """Published items with the rows of their *active* bundle (old bundles do not count)."""
    by_guid: dict[str, list[PackageUse]] = {}
    for row in rows:
        by_guid.setdefault(row.content_guid, []).append(row)
    found = []
    for item in items:
        active = [
            row
            for row in by_guid.get(item.guid, [])
            if item.bundle_id is not None and row.bundle_id == item.bundle_id
        ]
        if active:
            found.append((item, active))
    return found


def _runtimes(item: ContentItem, rows: Iterable[PackageUse]) -> list[RuntimeCache]:
    """The runtimes the package rows run on: the row's language at the item's version."""
    found: list[RuntimeCache] = []
    for row in rows:
        language = _LANGUAGES.get(row.language)
        if language is None:
            continue
        current = item.r_version if language == "R" else item.py_version
        version = current or row.language_version
        if not version:
            continue
        runtime = RuntimeCache(language, version, item.image)
        if runtime not in found:
            found.append(runtime)
    return found


def _cache_of(runtime: RuntimeCache, caches: Iterable[RuntimeCache]) -> RuntimeCache | None:
    image = sanitised_image(runtime.image_name)
    for cache in caches:
        if (
            cache.language.lower() == runtime.language.lower()
            and cache.version == runtime.version
            and sanitised_image(cache.image_name) == image
        ):
            return cache
    return None


def _order(runtime: RuntimeCache) -> tuple[str, str, str]:
    return (runtime.language, runtime.image_name, runtime.version)


def _unsupported(server: ConnectServer) -> PackagesUnsupported:
    probe = server.client.probe()
    return PackagesUnsupported(server.name, probe.version)
