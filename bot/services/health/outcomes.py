"""What a health check finds, per item and in total. Plain data: no Slack, no I/O.

Every verdict is one of four, and only two are verdicts about the item: it starts, or it fails
to start (or render). "Could not be checked" is about the check, never counted as either;
"skipped" items were never requested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.connect import ContentItem, RuntimeCache


@dataclass(frozen=True, slots=True)
class Starts:
    """A process of it is running or exited 0 (`how`: "started", "already running", or
    "rendered" for a document rendered again without error)."""

    how: str = "started"


@dataclass(frozen=True, slots=True)
class FailsToStart:
    """It cannot start: `reason` is the relevant log line, Connect's error summary, or (stage
    "runtime") the runtime Connect no longer offers; `summary` is Connect's own error summary."""

    reason: str
    stage: Literal["start", "render", "runtime"] = "start"
    summary: str = ""
    job_key: str | None = None


@dataclass(frozen=True, slots=True)
class CouldNotCheck:
    """The probe could not be completed (Connect faults past the retry, no right to view it)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Never requested: static, locked, unpublished, or rendered without `--render`."""

    reason: str


# an item `--visited-within` left out: nobody visited it in that many days
UNVISITED = Skipped("nobody visited it in the --visited-within window")


Verdict = Starts | FailsToStart | CouldNotCheck | Skipped


@dataclass(frozen=True, slots=True)
class ItemHealth:
    """One item's result. `packages`: its active bundle's packages ("language:name"), read for
    failing items only (None: not read); `attempts`: probes tried (0: none was needed)."""

    item: ContentItem
    verdict: Verdict
    attempts: int = 0
    packages: tuple[str, ...] | None = None

    @property
    def guid(self) -> str:
        return self.item.guid

    @property
    def title(self) -> str:
        return self.item.display_title

    @property
    def fails(self) -> bool:
        return isinstance(self.verdict, FailsToStart)


@dataclass(frozen=True, slots=True)
class RuntimeFailures:
    """Items of one runtime (language, version, image) that fail, of those checked on it."""

    runtime: RuntimeCache
    failing: int
    checked: int


@dataclass(frozen=True, slots=True)
class PackageFailures:
    """A package the failing items share: `failing` of the `failing_total` failing items use
    it; `users`: how many of the items found to start or fail use it (None: not asked)."""

    language: str
    name: str
    failing: int
    failing_total: int
    users: int | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    starts: int
    fails: int
    unchecked: int
    skipped: int
    unvisited: int = 0  # of the skipped: left out by `--visited-within`

    @property
    def total(self) -> int:
        return self.starts + self.fails + self.unchecked + self.skipped


@dataclass(frozen=True, slots=True)
class HealthReport:
    server: str
    items: tuple[ItemHealth, ...]
    by_runtime: tuple[RuntimeFailures, ...]
    by_package: tuple[PackageFailures, ...]
    rendered: bool  # rendered content was rendered again (`--render`)
    notes: tuple[str, ...] = ()  # what the check could not do (e.g. no packages API)
    visited_within: int | None = None  # days (`--visited-within`): unvisited items left out

    @property
    def counts(self) -> Counts:
        kinds = [type(result.verdict) for result in self.items]
        return Counts(
            starts=kinds.count(Starts),
            fails=kinds.count(FailsToStart),
            unchecked=kinds.count(CouldNotCheck),
            skipped=kinds.count(Skipped),
            unvisited=sum(result.verdict == UNVISITED for result in self.items),
        )

    @property
    def failing(self) -> tuple[ItemHealth, ...]:
        return tuple(result for result in self.items if result.fails)

    def of(self, guid: str) -> ItemHealth:
        return next(result for result in self.items if result.guid == guid)
