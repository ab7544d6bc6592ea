"""The visitors-first order (`bot.services.rebuilds.visitors`, pure): table tests on hand-made
cases with a known best order, and the coverage the card states."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.services.rebuilds.visitors import (
    Job,
    coverage,
    makespan,
    schedule,
    visitor_order,
    weighted_wait,
)
from bot.services.rebuilds.warmup import (
    Candidate,
    cheapest_cover,
    cover_each_runtime,
    cover_runtimes,
)


def keys(jobs: list[Job]) -> list[int]:
    return [job.key for job in jobs]


# One slot, no runtimes: the best order is known (Smith's rule is optimal on one machine).
#   A: 10 visits, 10 s (1/s) · B: 1 visit, 4 s (0.25/s) · C: 6 visits, 2 s (3/s)
#   D: nobody waits, 5 s · E: nobody waits, 8 s
HAND_MADE = [
    Job(0, (), 10, 10.0),
    Job(1, (), 1, 4.0),
    Job(2, (), 6, 2.0),
    Job(3, (), 0, 5.0),
    Job(4, (), 0, 8.0),
]


@pytest.mark.parametrize(
    ("jobs", "slots", "order", "wait"),
    [
        # C (ends 2) A (12) B (16), then the unvisited longest first: 6*2 + 10*12 + 1*16
        (HAND_MADE, 1, [2, 0, 1, 4, 3], 148.0),
        # Two slots: C and A start at once; B follows C: 6*2 + 10*10 + 1*6
        (HAND_MADE, 2, [2, 0, 1, 4, 3], 118.0),
        # No durations known (no history): most visited first, then the plan's order.
        ([Job(0, (), 1), Job(1, (), 0), Job(2, (), 9), Job(3, (), 0)], 1, [2, 0, 1, 3], 0.0),
    ],
)
def test_hand_made_order_and_its_wait(
    jobs: list[Job], slots: int, order: list[int], wait: float
) -> None:
    chosen = visitor_order(jobs)
    assert keys(chosen) == order
    assert weighted_wait(schedule(chosen, slots)) == wait


def test_the_hand_made_order_is_the_best_of_all_on_one_slot() -> None:
    best = min(weighted_wait(schedule(list(perm), 1)) for perm in itertools.permutations(HAND_MADE))
    assert weighted_wait(schedule(visitor_order(HAND_MADE), 1)) == best


def test_warm_up_of_the_most_visited_runtime_first_and_items_wait_for_their_warm_up() -> None:
    jobs = [
        Job(0, ("R 4.3",), 0, 6.0, warmup=True),  # warms R, whose items few visit
        Job(1, ("Py 3.11",), 0, 6.0, warmup=True),  # warms Python, whose items many visit
        Job(2, ("R 4.3",), 2, 2.0),
        Job(3, ("Py 3.11",), 50, 2.0),
        Job(4, ("Py 3.11",), 0, 9.0),
    ]
    chosen = visitor_order(jobs)
    assert keys(chosen) == [1, 0, 3, 2, 4]
    slots = {slot.job.key: slot for slot in schedule(chosen, 4)}
    assert slots[3].start == slots[1].end == 6.0  # waits for Python's warm-up only
    assert slots[2].start == slots[0].end == 6.0
    assert slots[4].start == 6.0
    assert makespan(slots.values()) == 15.0


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        # 80 % of 100 visits: C (60, ends 2) then A (30, ends 12): 90 % at 12 s
        ([Job(0, (), 30, 10.0), Job(1, (), 10, 20.0), Job(2, (), 60, 2.0)], (0.9, 12.0, 2)),
        # No durations: counted in builds
        ([Job(0, (), 85, 0.0), Job(1, (), 15, 0.0)], (0.85, None, 1)),
    ],
)
def test_coverage(jobs: list[Job], expected: tuple[float, float | None, int]) -> None:
    covered = coverage(schedule(visitor_order(jobs), 1))
    assert covered is not None
    assert (covered.share, covered.seconds, covered.items) == expected


def test_no_coverage_without_visits() -> None:
    assert coverage(schedule([Job(0, (), 0, 3.0)], 2)) is None


jobs_strategy = st.lists(
    st.tuples(st.integers(0, 50), st.floats(0.5, 100.0)), min_size=1, max_size=6
).map(lambda pairs: [Job(n, (), v, s) for n, (v, s) in enumerate(pairs)])


@settings(max_examples=60, deadline=None)
@given(jobs_strategy)
def test_smiths_rule_is_optimal_on_one_slot(jobs: list[Job]) -> None:
    best = min(weighted_wait(schedule(list(p), 1)) for p in itertools.permutations(jobs))
    assert weighted_wait(schedule(visitor_order(jobs), 1)) == pytest.approx(best)


@settings(max_examples=60, deadline=None)
@given(jobs_strategy, st.integers(1, 4))
def test_every_job_is_scheduled_once(jobs: list[Job], slots: int) -> None:
    placed = schedule(visitor_order(jobs), slots)
    assert sorted(keys([slot.job for slot in placed])) == [job.key for job in jobs]
    assert makespan(placed) <= sum(job.seconds for job in jobs) + 1e-9


R43, PY311 = "R 4.3.0", "Python 3.11.3"


@pytest.mark.parametrize(
    ("candidates", "covered", "chosen"),
    [
        # Each runtime by an item of its own, not by the pair of unknown length.
        (
            {
                (R43, PY311): Candidate(False, 3),
                (R43,): Candidate(True, 0),
                (PY311,): Candidate(True, 1),
            },
            [],
            [0, 1],
        ),
        # Python is used only with R: the pair warms it (R has its own).
        ({(R43, PY311): Candidate(False, 3), (R43,): Candidate(True, 0)}, [], [0, 3]),
        ({(R43,): Candidate(True, 0), (PY311,): Candidate(True, 1)}, [R43], [1]),
        ({}, [], []),
    ],
)
def test_cover_each_runtime(
    candidates: dict[tuple[str, ...], Candidate], covered: list[str], chosen: list[int]
) -> None:
    assert cover_each_runtime(candidates, covered) == chosen


R1, R2, P1, P2 = "R 4.3.0", "R 4.2.1", "Python 3.11.3", "Python 3.10.11"
# The maximum matching pairs R1-P2 and R2-P1 (110 s); R1-P1 and R2-P2 take 101 s.
TWO_PAIRS = {
    (R1, P1): Candidate(False, 0, 1.0),
    (R2, P2): Candidate(False, 1, 100.0),
    (R2, P1): Candidate(False, 2, 50.0),
    (R1, P2): Candidate(False, 3, 60.0),
}


@pytest.mark.parametrize(
    ("candidates", "covered", "matching", "cheapest"),
    [
        (TWO_PAIRS, [], [2, 3], [0, 1]),
        # R2 covered already: the cheapest pair, and P2's cheapest item.
        (TWO_PAIRS, [R2], [0, 3], [0, 3]),
        # No estimates: the matching's cover.
        ({key: c._replace(seconds=0.0) for key, c in TWO_PAIRS.items()}, [], [0, 1], [0, 1]),
    ],
)
def test_cheapest_cover(
    candidates: dict[tuple[str, ...], Candidate],
    covered: list[str],
    matching: list[int],
    cheapest: list[int],
) -> None:
    assert cover_runtimes(candidates, covered) == matching
    assert cheapest_cover(candidates, covered) == cheapest
