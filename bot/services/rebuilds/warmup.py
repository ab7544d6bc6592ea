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

from collections.abc import Iterable, Mapping
from typing import NamedTuple

Runtimes = tuple[str, ...]  # the runtime keys one item uses: one or two


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
