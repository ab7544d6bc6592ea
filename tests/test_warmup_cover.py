"""The warm-up cover (`bot.services.rebuilds.warmup`), pure: a table of candidates (the best item
of each runtime combination) and the positions the cover promotes to the warm-up wave."""

from __future__ import annotations

import pytest

from bot.services.rebuilds.warmup import Candidate, Runtimes, cover_runtimes, rank

R43, R42, PY311, PY312 = "R 4.3.0", "R 4.2.1", "Python 3.11.3", "Python 3.12.1"

CASES: list[tuple[str, dict[Runtimes, Candidate], list[str], list[int]]] = [
    # (case, candidates, covered already, positions chosen)
    ("empty", {}, [], []),
    ("single runtime", {(R43,): Candidate(True, 4)}, [], [4]),
    ("single runtime, covered already", {(R43,): Candidate(True, 4)}, [R43], []),
    (
        "one R+Python item covers both",
        {
            (R43, PY311): Candidate(False, 3),
            (R43,): Candidate(True, 0),
            (PY311,): Candidate(True, 1),
        },
        [],
        [3],
    ),
    (
        "the pair, and one item for the runtime left",
        {
            (R43, PY311): Candidate(False, 3),
            (R43,): Candidate(True, 0),
            (PY311,): Candidate(True, 1),
            (R42,): Candidate(False, 5),
        },
        [],
        [3, 5],
    ),
    (
        "a covered runtime: no cache warms twice",
        {
            (R43, PY311): Candidate(False, 3),
            (R43,): Candidate(True, 0),
            (PY311,): Candidate(True, 1),
            (R42,): Candidate(False, 5),
        },
        [R43],
        [1, 5],
    ),
    (
        "two pairs sharing Python: the matching keeps one, a single covers the other R",
        {
            (R43, PY311): Candidate(True, 0),
            (R42, PY311): Candidate(False, 1),
            (R42,): Candidate(False, 2),
        },
        [],
        [0, 2],
    ),
    (
        "two disjoint pairs: two items for four runtimes",
        {(R43, PY311): Candidate(False, 0), (R42, PY312): Candidate(False, 1)},
        [],
        [0, 1],
    ),
    (
        "tie on estimate: the interactive item wins",
        {(R43, PY311): Candidate(False, 0, 10.0), (R43, PY312): Candidate(True, 1, 10.0)},
        [PY311, PY312],
        [1],
    ),
    (
        "tie on estimate and kind: plan order wins",
        {(R43, PY311): Candidate(True, 2, 10.0), (R43, PY312): Candidate(True, 1, 10.0)},
        [PY311, PY312],
        [1],
    ),
    (
        "the shortest known build wins over interactive",
        {(R43, PY311): Candidate(True, 0, 90.0), (R43, PY312): Candidate(False, 1, 30.0)},
        [PY311, PY312],
        [1],
    ),
]


@pytest.mark.parametrize(
    ("candidates", "covered", "chosen"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_cover(
    candidates: dict[Runtimes, Candidate], covered: list[str], chosen: list[int]
) -> None:
    assert cover_runtimes(candidates, covered) == chosen


def test_every_runtime_is_covered_by_the_fewest_items() -> None:
    for _, candidates, covered, chosen in CASES:
        runtimes = {key for combo in candidates for key in combo} - set(covered)
        picked = [combo for combo, c in candidates.items() if c.position in chosen]
        assert runtimes <= {key for combo in picked for key in combo}


def test_rank_orders_by_estimate_then_interactive_then_position() -> None:
    ranked = sorted(
        [
            Candidate(False, 0, 5.0),
            Candidate(True, 3, 5.0),
            Candidate(True, 1, 5.0),
            Candidate(False, 9),
        ],
        key=rank,
    )
    assert ranked == [
        Candidate(False, 9),
        Candidate(True, 1, 5.0),
        Candidate(True, 3, 5.0),
        Candidate(False, 0, 5.0),
    ]
