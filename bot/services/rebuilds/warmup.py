"""The warm-up cover: which items to build first so that every runtime is built once, cold.

Pure: no database, no Connect. `planning.choose_warmup` reads the candidates from the plan's
rows and promotes the positions `cover_runtimes` returns to the warm-up wave.

A runtime is a key (language, version and image); an item covers one runtime, or two (an item
using R and Python). The cover is the fewest items covering every runtime not covered yet:
items covering two runtimes are paired by a maximum matching (R runtimes on one side, Python on
the other), and each runtime left gets an item of its own, preferably one covering no runtime
covered already (so no cache warms twice). Among equals, the best-ranked item wins (`rank`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

Runtimes = tuple[str, ...]  # the runtime keys one item uses: one or two
CHEAPEST_TRIES = 20_000  # pair sets `cheapest_cover` compares at most (else the matching's)


class Candidate(NamedTuple):
    """The best item of one runtime combination."""

    interactive: bool
    position: int  # in the plan
    seconds: float = 0.0  # its estimated build (0: unknown)


def rank(candidate: Candidate) -> tuple[float, bool, int]:
    """Shortest estimate first (a cold build costs a multiple of it), then interactive, then
    plan order: the smaller, the better."""
    return (candidate.seconds, not candidate.interactive, candidate.position)


def cover_runtimes(
    candidates: Mapping[Runtimes, Candidate], covered: Iterable[str] = ()
) -> list[int]:
    """Positions (sorted) of the fewest candidates covering every runtime not in `covered`."""
    done = set(covered)
    needed = {key for combo in candidates for key in combo} - done
    ranked = sorted(candidates, key=lambda combo: rank(candidates[combo]))
    chosen = _pairs(ranked, needed)
    for combo in chosen:
        done.update(combo)
    for combo in ranked:
        for key in combo:
            if key not in done:
                pick = _single(ranked, key, done)
                chosen.append(pick)
                done.update(pick)
    return sorted({candidates[combo].position for combo in chosen})


def cheapest_cover(
    candidates: Mapping[Runtimes, Candidate], covered: Iterable[str] = ()
) -> list[int]:
    """`cover_runtimes`'s number of items, at the least estimated seconds: every set of as
    many disjoint two-runtime candidates as the fewest cover pairs is compared, each runtime
    left taking its cheapest candidate (a maximum matching alone may pair long builds). With
    no estimates, or more than `CHEAPEST_TRIES` sets to compare, `cover_runtimes`'s."""
    done = set(covered)
    fewest = cover_runtimes(candidates, done)
    if not any(c.seconds for c in candidates.values()):
        return fewest
    needed = {key for combo in candidates for key in combo} - done
    pairs = [combo for combo in candidates if len(combo) == 2 and set(combo) <= needed]
    size = len(needed) - len(fewest)  # the pairs of a fewest cover
    if size <= 0 or math.comb(len(pairs), size) > CHEAPEST_TRIES:
        return fewest

    def cheapest(key: str) -> Runtimes:
        having = [combo for combo in candidates if key in combo]
        return min(having, key=lambda combo: (len(combo), rank(candidates[combo])))

    def cost(chosen: Iterable[Runtimes]) -> float:
        return sum(candidates[combo].seconds for combo in set(chosen))

    best = [combo for combo in candidates if candidates[combo].position in fewest]
    for chosen in itertools.combinations(pairs, size):
        paired = [key for combo in chosen for key in combo]
        if len(set(paired)) < len(paired):
            continue
        cover = list(chosen) + [cheapest(key) for key in sorted(needed - set(paired))]
        if cost(cover) < cost(best) and len(set(cover)) <= len(fewest):
            best = cover
    return sorted({candidates[combo].position for combo in best})


def cover_each_runtime(
    candidates: Mapping[Runtimes, Candidate], covered: Iterable[str] = ()
) -> list[int]:
    """Positions (sorted) of the best single-runtime candidate of each runtime not in
    `covered`, then the fewest candidates covering what is left (runtimes only items using two
    use). For a plan without durations, ordered by visits: each runtime is warmed by the item
    visitors wait on most, which has to be built anyway, rather than by a pair of unknown
    length that would hold two runtimes back."""
    singles: dict[Runtimes, Candidate] = {
        combo: c for combo, c in candidates.items() if len(combo) == 1
    }
    chosen = cover_runtimes(singles, covered)
    done = set(covered) | {combo[0] for combo, c in singles.items() if c.position in chosen}
    return sorted(set(chosen) | set(cover_runtimes(candidates, done)))


def _pairs(ranked: list[Runtimes], needed: set[str]) -> list[Runtimes]:
    """A maximum matching of the two-runtime combinations within `needed` (augmenting paths,
    best-ranked first)."""
    adjacent: dict[str, list[Runtimes]] = {}
    for combo in ranked:
        if len(combo) == 2 and set(combo) <= needed:
            adjacent.setdefault(combo[0], []).append(combo)
    partner: dict[str, str] = {}  # second key -> first key of its pair
    pair_of: dict[str, Runtimes] = {}  # first key -> its pair

    def augment(first: str, seen: set[str]) -> bool:
        for combo in adjacent[first]:
            second = combo[1]
            if second in seen:
                continue
            seen.add(second)
            if second not in partner or augment(partner[second], seen):
                partner[second] = first
                pair_of[first] = combo
                return True
        return False

    for first in adjacent:
        augment(first, set())
    return [combo for first, combo in pair_of.items() if partner.get(combo[1]) == first]


def _single(ranked: list[Runtimes], key: str, done: set[str]) -> Runtimes:
    """The best combination covering `key`, one covering nothing done already if there is one."""
    having = [combo for combo in ranked if key in combo]
    fresh = [combo for combo in having if not set(combo) & done]
    return (fresh or having)[0]
