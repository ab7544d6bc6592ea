"""`health`: which published content fails to start on one Connect server, why, and on which
runtimes and packages. Read-only except for `render=True` (rendering replaces what viewers
see: the caller asks an admin first)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from bot.connect import ConnectError, ContentFilter, ContentItem
from bot.services.health.engine import DEFAULT_CONCURRENCY, Claim, Sink, run_checks
from bot.services.health.grouping import by_package, by_runtime
from bot.services.health.outcomes import HealthReport, ItemHealth, PackageFailures
from bot.services.health.probes import Prober, ProbeSettings
from bot.services.health.selection import Installed, installed
from bot.services.outcomes import Actor, ConnectFailed, UnknownServer
from bot.services.queries import ContentUsing, Impact, PackagesUnsupported
from bot.services.servers import ConnectServer, Servers
from bot.services.usage import visited_within

# The guids of a selection that matches nothing (no item has this GUID).
_NOTHING = frozenset({"-"})

HealthOutcome = HealthReport | PackagesUnsupported | UnknownServer | ConnectFailed


class HealthChecks:
    def __init__(
        self,
        *,
        servers: Servers,
        impact: Impact | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        settings: ProbeSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.servers = servers
        self.impact = impact or Impact(servers=servers)
        self.concurrency = concurrency
        self.settings = settings
        self._sleep = sleep

    def check(
        self,
        actor: Actor,
        server_name: str | None,
        content_filter: ContentFilter,
        packages: Sequence[str] = (),
        *,
        render: bool = False,
        visited_within: int | None = None,
        concurrency: int | None = None,
        sink: Sink | None = None,
        claim: Claim | None = None,
    ) -> HealthOutcome:
        """Check the content `content_filter` selects (and, with `packages`, whose active bundle
        uses one of them): each result goes to `sink` as it is known, then the report;
        `visited_within`: days, the items nobody visited in them are left out (skipped)."""
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        notes: list[str] = []
        resolved = self.resolve_packages(actor, server, content_filter, packages)
        if not isinstance(resolved, ContentFilter):
            return resolved
        if resolved.guids is _NOTHING:
            return HealthReport(server.name, (), (), (), render)
        content_filter = resolved
        runtimes = self.runtimes_of(server, notes)
        visited = self.visited_of(server, visited_within, notes)
        results: list[ItemHealth] = []

        def collect(result: ItemHealth) -> None:
            results.append(result)
            if sink is not None:
                sink(result)

        prober = Prober(server.client.single_try(), settings=self.settings, sleep=self._sleep)
        try:
            run_checks(
                selected(server, content_filter),
                prober.check,
                runtimes=runtimes,
                render=render,
                concurrency=concurrency or self.concurrency,
                sink=collect,
                claim=claim,
                visited=visited,
            )
        except ConnectError as exc:
            return ConnectFailed("Checking content health", exc.reason)
        return HealthReport(
            server.name,
            tuple(results),
            by_runtime(results),
            self.packages_of(server, results, notes),
            render,
            tuple(notes),
            visited_within if visited is not None else None,
        )

    def resolve_packages(
        self,
        actor: Actor,
        server: ConnectServer,
        content_filter: ContentFilter,
        packages: Sequence[str],
    ) -> ContentFilter | PackagesUnsupported | UnknownServer | ConnectFailed:
        """The filter, narrowed to the items whose active bundle uses one of `packages`; when
        none does, its guids are `_NOTHING` (a GUID no item has: nothing is checked)."""
        if not packages:
            return content_filter
        using = self.impact.content_using(actor, server.name, packages)
        if not isinstance(using, ContentUsing):
            return using
        wanted = content_filter.guids
        guids = using.guids & wanted if wanted else using.guids
        # empty guids would mean "no restriction": select nothing instead
        return dataclasses.replace(content_filter, guids=frozenset(guids) or _NOTHING)

    @staticmethod
    def runtimes_of(server: ConnectServer, notes: list[str]) -> Installed | None:
        try:
            return installed(server.client.runtimes.all_installed())
        except ConnectError as exc:
            notes.append(
                f"Connect did not list its runtimes ({exc.reason}): items on a removed runtime"
                " were requested like the others"
            )
            return None

    @staticmethod
    def visited_of(
        server: ConnectServer, days: int | None, notes: list[str]
    ) -> frozenset[str] | None:
        """The GUIDs visited in the last `days` days (None: all items are checked, because
        `--visited-within` was not given or, as `rebuild` does, Connect gave no usage)."""
        if days is None:
            return None
        visited = visited_within(server.client, days)
        if isinstance(visited, str):
            notes.append(f"{visited}: `--visited-within` not applied, every item was checked")
            return None
        return visited

    @staticmethod
    def packages_of(
        server: ConnectServer, results: Sequence[ItemHealth], notes: list[str]
    ) -> tuple[PackageFailures, ...]:
        failing = [result for result in results if result.fails]
        if failing and all(result.packages is None for result in failing):
            notes.append("Connect did not say which packages the failing items use")
            return ()
        try:
            return by_package(results, server.client.packages.find)
        except ConnectError as exc:
            notes.append(f"Connect did not say which items use those packages ({exc.reason})")
            return by_package(results, None)


def selected(server: ConnectServer, content_filter: ContentFilter) -> list[ContentItem]:
    """The items the filter selects (unpublished ones too: they are reported as skipped).
    Read whole before the first probe: a listing held open while probes run for minutes
    would stall Connect's answer (the items are slim: 10,000 take a few MB)."""
    return [item for item in server.client.content.iter() if content_filter.matches(item)]
