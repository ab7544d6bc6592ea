"""What `/connect ...` can ask for: one frozen dataclass per command. Pure data."""

from __future__ import annotations

from dataclasses import dataclass

from bot.connect import ContentFilter
from bot.services.caches import CacheTarget
from bot.services.times import When


@dataclass(frozen=True, slots=True, kw_only=True)
class Addressed:
    """Every command may name its Connect server with `-n NAME` / `--name NAME`."""

    server: str | None = None


@dataclass(frozen=True, slots=True)
class Help(Addressed):
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Servers(Addressed):
    pass


@dataclass(frozen=True, slots=True)
class CachesList(Addressed):
    pass


@dataclass(frozen=True, slots=True)
class CachesDelete(Addressed):
    targets: tuple[CacheTarget, ...]


@dataclass(frozen=True, slots=True)
class ContentSearch(Addressed):
    filter: ContentFilter
    args: str  # normalised arguments less `--page`: a page button adds its own `--page N`
    page: int = 1
    packages: tuple[str, ...] = ()  # `--uses-package`: any of these (names as typed)


@dataclass(frozen=True, slots=True)
class Audit(Addressed):
    limit: int = 10


@dataclass(frozen=True, slots=True)
class RebuildPlan(Addressed):
    filter: ContentFilter
    parallelism: int | None = None
    description: str = "all published content"
    packages: tuple[str, ...] = ()  # `--uses-package`: any of these (names as typed)
    when: When | None = None  # `--at` / `--in`: the card offers to schedule it then
    visited_within: int | None = None  # days (`--visited-within`): only content visited in them
    verify: bool = True  # probe each interactive item after its build (`--no-verify`: not)


@dataclass(frozen=True, slots=True)
class RebuildScheduled(Addressed):
    """`rebuild scheduled`: the rebuilds waiting for their start."""


@dataclass(frozen=True, slots=True)
class Impact(Addressed):
    """`impact --package NAME...`: runtimes, items and caches behind content using them."""

    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Health(Addressed):
    """`health [filters]`: which of the selected content starts (filters as `rebuild`)."""

    filter: ContentFilter
    description: str = "all published content"
    packages: tuple[str, ...] = ()  # `--uses-package`: any of these (names as typed)
    render: bool = False  # `--render`: render rendered content again (admins, confirmed)
    visited_within: int | None = None  # days (`--visited-within`): only content visited in them


@dataclass(frozen=True, slots=True)
class HealthHistory(Addressed):
    """`health history`: the last checks, newest first."""

    limit: int = 10


@dataclass(frozen=True, slots=True)
class RebuildStatus(Addressed):
    rebuild_id: int | None = None


@dataclass(frozen=True, slots=True)
class RebuildCancel(Addressed):
    rebuild_id: int


@dataclass(frozen=True, slots=True)
class RebuildHistory(Addressed):
    limit: int = 10


@dataclass(frozen=True, slots=True)
class ParseError:
    message: str
    usage: str = ""
    topic: str | None = None


Command = (
    Help
    | Servers
    | CachesList
    | CachesDelete
    | ContentSearch
    | Impact
    | Health
    | HealthHistory
    | Audit
    | RebuildPlan
    | RebuildStatus
    | RebuildCancel
    | RebuildHistory
    | RebuildScheduled
)
