"""What Connect remembers of each item's last environment restore: the only duration estimate
a first rebuild has.

The bot estimates builds from its own history (`estimates`). Before its first rebuild on a
server it has none, and the warm-up is then a gamble: a cold build takes several times the
item's build, every item of its runtime waits for it, and one slow warm-up decides how long
visitors wait (bench/rebuild.py --scenario visitors). Connect lists each item's recent jobs
(`GET v1/content/{guid}/jobs`, connect-api-2.md §6); the restore its deployment (or a later
build) ran, `packrat_restore` or `python_restore`, says how long the build took then.

Only the warm-up candidates are asked: the CANDIDATES best items of each runtime combination
(most visited, then interactive, then plan order: the items `choose_warmup` would take),
WORKERS at a time. An item whose jobs Connect cannot list, or with no finished restore, has no
estimate; a combination with none is warmed as without estimates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from bot.connect import ConnectClient, ConnectError, Job

CANDIDATES = 3  # per runtime combination
WORKERS = 8  # job listings asked at once
MAX_ASKED = 120  # job listings per plan at most (a server with very many runtimes)


class Ranked(NamedTuple):
    """A planned item as the warm-up choice ranks it."""

    guid: str
    runtimes: tuple[str, ...]
    visitors: int
    interactive: bool
    position: int


def candidates(items: Iterable[Ranked], per_runtimes: int = CANDIDATES) -> list[str]:
    """The GUIDs of the best `per_runtimes` items of each runtime combination, best first
    across combinations (so a cap keeps every combination's best)."""
    ranked = sorted(items, key=lambda i: (-i.visitors, not i.interactive, i.position))
    taken: dict[tuple[str, ...], list[str]] = {}
    for item in ranked:
        if item.runtimes:
            chosen = taken.setdefault(item.runtimes, [])
            if len(chosen) < per_runtimes:
                chosen.append(item.guid)
    rounds = [
        [chosen[n] for chosen in taken.values() if n < len(chosen)] for n in range(per_runtimes)
    ]
    return [guid for round_ in rounds for guid in round_]


def last_restore_seconds(jobs: Iterable[Job]) -> float | None:
    """How long the newest successful restore took (Connect's times are whole seconds)."""
    spans = [
        (job.end_time, job.start_time)
        for job in jobs
        if job.restores and job.succeeded and job.start_time and job.end_time
    ]
    if not spans:
        return None
    end, start = max(spans)
    return max(0.0, (end - start).total_seconds())


def restore_seconds(client: ConnectClient, guids: Sequence[str]) -> dict[str, float]:
    """Seconds of the last restore of each of `guids` (the first MAX_ASKED) that has one."""

    def one(guid: str) -> tuple[str, float | None]:
        try:
            return guid, last_restore_seconds(client.jobs.list(guid))
        except ConnectError:  # not listed: no estimate, and the plan goes on
            return guid, None

    asked = list(guids)[:MAX_ASKED]
    if not asked:
        return {}
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="restores") as pool:
        found = list(pool.map(one, asked))
    return {guid: seconds for guid, seconds in found if seconds is not None}
