"""The first rebuild's warm-up, replayed offline over many seeds (issue 20's "first rebuild"
bar, beyond the one seed `bench/rebuild.py --scenario visitors` runs live).

    .venv/bin/python bench/first_rebuild.py              # 60 seeds, a few seconds
    .venv/bin/python bench/first_rebuild.py --seeds 200

Each seed is a visitors scenario (160 items, 6 runtimes, 15 % of items using R and Python,
long-tailed durations, Zipf usage). The bot's first-rebuild order is rebuilt from its pure
parts (`visitor_order`, `warmup`, `restores.candidates`), as `planning.finish_plan` applies
them with no history: visits order, then the warm-up chosen either

* by visits alone (each runtime warmed by its most visited item: the bot before `restores`), or
* by Connect's last restore of the candidates (whole seconds, as Connect writes job times);

then list-scheduled on K = 4 slots with the true durations (a warm-up built cold takes 4x),
as `visitors.schedule` models the driver. The figure is the visitor-weighted wait against the
reference schedule of `bench/rebuild.py` (true durations, cheapest warm-up cover).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rebuild  # bench/rebuild.py: the scenario, the reference schedule, and the path

from bot.connect import ContentItem
from bot.services.rebuilds.estimates import Estimates
from bot.services.rebuilds.restores import Ranked, candidates
from bot.services.rebuilds.visitors import Job, schedule, visitor_order
from bot.services.rebuilds.warmup import (
    Candidate,
    cheapest_cover,
    cover_each_runtime,
    rank,
)
from sim.connect_seed import Seed, generated_seed, long_tailed_durations
from sim.connect_usage import zipf_rates

COLD_FACTOR, SLOTS, DAYS = 4.0, 4, 7


def scenario(seed: int) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, float]]:
    """Items (with a bundle), true warm durations, visits per day: `visitors_setup`'s recipe."""
    made = generated_seed(160, seed=seed, runtimes=rebuild.COLD_RUNTIMES, mixed_share=0.15)
    guids = [item["guid"] for item in made.content]
    durations = long_tailed_durations(
        guids, seed=seed + 1000, base=0.5, jitter=0.4, tail_share=0.1, tail_factor=6.0
    )
    items = [item for item in made.content if item.get("bundle_id") is not None]
    rates = zipf_rates([i["guid"] for i in made.content if i.get("published", True)], seed + 7)
    return items, durations, rates


def runtimes_of(item: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(f"{lang} {ver}" for lang, ver in rebuild.runtime_keys(item)))


def first_order(
    items: list[dict[str, Any]], rates: dict[str, float], restores: dict[str, float] | None
) -> list[Job]:
    """The bot's first-rebuild order: `restores` None is the warm-up by visits alone."""
    visits = [
        round(rates.get(item["guid"], 0.0) * DAYS) if ContentItem.from_json(item).interactive else 0
        for item in items
    ]
    jobs = [Job(n, runtimes_of(item), visits[n]) for n, item in enumerate(items)]
    position = {job.key: n for n, job in enumerate(visitor_order(jobs))}  # by visits
    known = Estimates(restores or {}, typical=math.inf)
    best: dict[tuple[str, ...], Candidate] = {}
    for job in jobs:
        if not job.runtimes:
            continue
        seconds = known(items[job.key]["guid"]) if restores else 0.0
        candidate = Candidate(job.visitors > 0, position[job.key], seconds)
        if job.runtimes not in best or rank(candidate) < rank(best[job.runtimes]):
            best[job.runtimes] = candidate
    chosen = set((cheapest_cover if restores else cover_each_runtime)(best))
    warm = {job.key for job in jobs if position[job.key] in chosen}
    return visitor_order([Job(j.key, j.runtimes, j.visitors, 0.0, j.key in warm) for j in jobs])


def connect_restores(
    items: list[dict[str, Any]], rates: dict[str, float], durations: dict[str, float]
) -> dict[str, float]:
    """What the bot reads of Connect: the candidates' restores, in whole seconds."""
    ranked = [
        Ranked(
            item["guid"],
            runtimes_of(item),
            round(rates.get(item["guid"], 0.0) * DAYS),
            ContentItem.from_json(item).interactive,
            n,
        )
        for n, item in enumerate(items)
    ]
    return {guid: float(math.floor(durations[guid])) for guid in candidates(ranked)}


def hourly_visits(items: list[dict[str, Any]], rates: dict[str, float]) -> dict[str, float]:
    """Visits per hour waiting on each item: interactive items only."""
    return {
        item["guid"]: rates.get(item["guid"], 0.0) / 24
        for item in items
        if ContentItem.from_json(item).interactive
    }


def wait(
    order: list[Job],
    items: list[dict[str, Any]],
    durations: dict[str, float],
    rates: dict[str, float],
) -> float:
    """The visitor-weighted wait of `order` list-scheduled with the true durations."""
    built = [
        Job(j.key, j.runtimes, j.visitors, durations[items[j.key]["guid"]]
            * (COLD_FACTOR if j.warmup else 1.0), j.warmup)
        for j in order
    ]  # fmt: skip
    hourly = hourly_visits(items, rates)
    return sum(hourly.get(items[s.job.key]["guid"], 0.0) * s.end for s in schedule(built, SLOTS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=60)
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {"by visits alone": [], "by Connect's restores": []}
    for seed in range(1, args.seeds + 1):
        items, durations, rates = scenario(seed)
        made = Seed(caches=[], content=items)
        setup = rebuild.Setup(made, durations, k=SLOTS, cold_factor=COLD_FACTOR, cold=True)
        reference, _ = rebuild.reference_wait(setup, hourly_visits(items, rates))
        for name, restores in (
            ("by visits alone", None),
            ("by Connect's restores", connect_restores(items, rates, durations)),
        ):
            order = first_order(items, rates, restores)
            ratios[name].append(wait(order, items, durations, rates) / reference)
    print(f"{args.seeds} seeds; the first rebuild's wait / the reference (bar 1.5):")
    for name, found in ratios.items():
        found.sort()
        print(
            f"  warm-up {name:22} mean {statistics.mean(found):.3f}"
            f"  median {statistics.median(found):.3f}  p90 {found[int(0.9 * len(found))]:.3f}"
            f"  worst {found[-1]:.3f}  above 1.5: {sum(r > 1.5 for r in found)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
