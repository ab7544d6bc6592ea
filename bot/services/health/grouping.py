"""Failures grouped by runtime and by the packages the failing items share ("sf: 12 of 14
failing items"), so the admin sees which caches and which compiled packages to suspect.

A package every failing item uses may be one every item uses (`shiny`): `users` (how many of
the checked items use it, from the packages API the impact command uses) tells the suspects
(`sf`: used by 12, all failing) from the bystanders (`shiny`: used by 80, 12 failing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from bot.connect import PackageUse, RuntimeCache
from bot.services.health.outcomes import (
    FailsToStart,
    ItemHealth,
    PackageFailures,
    RuntimeFailures,
    Starts,
)

MAX_PACKAGES = 10  # package groups asked about and shown
_LANGUAGES = {"r": "R", "python": "Python"}


def by_runtime(results: Iterable[ItemHealth]) -> tuple[RuntimeFailures, ...]:
    """For each runtime with a failing item: its failing items of those found to start or fail
    on it, most failing first."""
    failing: Counter[RuntimeCache] = Counter()
    checked: Counter[RuntimeCache] = Counter()
    for result in results:
        if not isinstance(result.verdict, Starts | FailsToStart):
            continue
        for runtime in result.item.runtimes:
            checked[runtime] += 1
            if result.fails:
                failing[runtime] += 1
    ordered = sorted(failing, key=lambda r: (-failing[r], r.language, r.version, r.image_name))
    return tuple(RuntimeFailures(r, failing[r], checked[r]) for r in ordered)


def shared_packages(failing: Sequence[ItemHealth]) -> list[tuple[str, str, int]]:
    """(language, name, failing items using it): shared by two or more failing items (or the
    one failing item's packages), most shared first, at most `MAX_PACKAGES`."""
    counts: Counter[str] = Counter()
    for result in failing:
        counts.update(result.packages or ())
    least = 2 if len(failing) > 1 else 1
    ranked = sorted((key for key, n in counts.items() if n >= least), key=lambda k: (-counts[k], k))
    found = []
    for key in ranked[:MAX_PACKAGES]:
        language, _, name = key.partition(":")
        found.append((language, name, counts[key]))
    return found


def by_package(
    results: Sequence[ItemHealth], users_of: Callable[[str], list[PackageUse]] | None
) -> tuple[PackageFailures, ...]:
    """The packages the failing items share; with `users_of` (the packages API's rows of a
    package name), how many of the items found to start or fail use each, suspects first."""
    failing = [result for result in results if result.fails]
    judged = {
        result.guid: result.item.bundle_id
        for result in results
        if isinstance(result.verdict, Starts | FailsToStart)
    }
    groups = []
    for language, name, count in shared_packages(failing):
        users = None
        if users_of is not None:
            rows = users_of(name)
            users = len(
                {
                    row.content_guid
                    for row in rows
                    if row.language == language
                    and row.content_guid in judged
                    and row.bundle_id == judged[row.content_guid]
                }
            )
        label = _LANGUAGES.get(language, language)
        groups.append(PackageFailures(label, name, count, len(failing), users))
    groups.sort(key=lambda g: (-g.failing, (g.users or g.failing) - g.failing, g.name))
    return tuple(groups)
