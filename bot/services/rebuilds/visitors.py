"""Visitors first: the build order that keeps visitors waiting least, and what it buys.

Pure: no database, no Connect. `planning.order_for_visitors` reads the plan's rows into `Job`s,
and writes back the order `visitor_order` returns.

The objective is the visitor-weighted wait: the sum, over the items, of the visits waiting on
each (an interactive item's visits; rendered and static content keeps serving its last output,
so nobody waits on it) times the time from Start until its build ends. The schedule:
1. the warm-up (one item per cold runtime, the cheapest: chosen by `warmup`) first, the items
   of the most visited runtimes first, since every item of a runtime waits for its warm-up;
2. the visited items by visits per second of build, most first (Smith's rule: optimal for one
   slot, and close to it on several);
3. the rest (unvisited, rendered, static) longest first, so that the last builds are short
   ones and every slot finishes at about the same time (the makespan stays near its bound).
Without history (no durations) step 2 is most visited first, and step 3 keeps the plan's
order (Connect's: newest deployment first); the warm-up is then chosen by Connect's record of
each candidate's last restore (`restores`).

`schedule` list-schedules an order on `slots` as the driver does (each item to the first free
slot, waiting for the warm-up of its own runtimes), for the coverage the plan card states.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, eq=False)  # by identity: `schedule` removes jobs by it
class Job:
    """One planned item: `key` its plan position, `visitors` the visits waiting on it,
    `seconds` its estimated build (0: unknown), `warmup` whether it warms its runtimes."""

    key: int
    runtimes: tuple[str, ...]
    visitors: int
    seconds: float = 0.0
    warmup: bool = False


@dataclass(frozen=True, slots=True)
class Slot:
    """When one job of a schedule starts and ends, in seconds from Start."""

    job: Job
    start: float
    end: float


def runtime_visitors(jobs: Iterable[Job]) -> dict[str, int]:
    """Visits waiting on each runtime (on the items using it)."""
    found: dict[str, int] = {}
    for job in jobs:
        for key in job.runtimes:
            found[key] = found.get(key, 0) + job.visitors
    return found


def visitor_order(jobs: Sequence[Job]) -> list[Job]:
    """The warm-up (most visited runtimes first), the visited items by visits per second of
    build, then the rest longest first (see the module docstring)."""
    by_runtime = runtime_visitors(jobs)
    warm = sorted(
        (job for job in jobs if job.warmup),
        key=lambda j: (-max((by_runtime[k] for k in j.runtimes), default=0), j.seconds, j.key),
    )
    visited = sorted(
        (job for job in jobs if not job.warmup and job.visitors > 0),
        key=lambda j: (-_density(j), -j.visitors, j.key),
    )
    rest = sorted(
        (job for job in jobs if not job.warmup and job.visitors <= 0),
        key=lambda j: (-j.seconds, j.key),
    )
    return warm + visited + rest


def _density(job: Job) -> float:
    """Visits per second of build (per job when no duration is known)."""
    return job.visitors / job.seconds if job.seconds > 0 else float(job.visitors)


def schedule(order: Sequence[Job], slots: int) -> list[Slot]:
    """List scheduling as the driver dispatches: whenever a slot is free, the first job in
    `order` whose runtimes' warm-up items have finished (a warm-up job waits only for an
    earlier warm-up of the same runtime)."""
    warmer: dict[str, int] = {}
    for job in order:
        if job.warmup:
            for key in job.runtimes:
                warmer.setdefault(key, job.key)
    finished_at: dict[int, float] = {}
    pending = list(order)
    running: list[tuple[float, int]] = []  # (end, key): a heap
    now = 0.0
    free = max(1, slots)
    result: list[Slot] = []
    while pending:
        chosen = None
        if free:
            chosen = next((j for j in pending if _ready(j, warmer, finished_at, now)), None)
        if chosen is None:
            if not running:  # nothing runs and nothing may start: a dependency never met
                chosen = pending[0]
            else:
                now, done = heapq.heappop(running)
                finished_at[done] = now
                free += 1
                continue
        pending.remove(chosen)
        end = now + chosen.seconds
        heapq.heappush(running, (end, chosen.key))
        free -= 1
        result.append(Slot(chosen, now, end))
    return result


def _ready(job: Job, warmer: dict[str, int], finished_at: dict[int, float], now: float) -> bool:
    for key in job.runtimes:
        first = warmer.get(key)
        if first is not None and first != job.key and finished_at.get(first, now + 1) > now:
            return False
    return True


def weighted_wait(slots: Iterable[Slot]) -> float:
    """Σ visitors x end (visitor-seconds; divide by the window's hours for visits/hour)."""
    return sum(slot.job.visitors * slot.end for slot in slots)


def makespan(slots: Iterable[Slot]) -> float:
    return max((slot.end for slot in slots), default=0.0)


@dataclass(frozen=True, slots=True)
class Coverage:
    """The first `seconds` of the schedule (or its first `items` builds, without durations)
    finish the items that `share` (0..1) of the visits wait on."""

    share: float
    seconds: float | None
    items: int


def coverage(slots: Sequence[Slot], target: float = 0.8) -> Coverage | None:
    """When the builds finished cover `target` of the visits waiting (None: no visits)."""
    total = sum(slot.job.visitors for slot in slots)
    if total <= 0:
        return None
    timed = any(slot.job.seconds > 0 for slot in slots)
    covered = 0
    by_end = sorted(slots, key=lambda s: s.end) if timed else list(slots)
    for count, slot in enumerate(by_end, start=1):
        covered += slot.job.visitors
        if covered >= target * total:
            return Coverage(covered / total, slot.end if timed else None, count)
    return Coverage(1.0, makespan(slots) if timed else None, len(by_end))
