"""A first rebuild (no history) chooses its warm-up by Connect's record of each candidate's
last restore; once the bot has history it asks Connect nothing of the kind."""

from __future__ import annotations

import pytest
from rebuild_support import items, plan, rebuild_id_of, wait_final
from test_warmup import _seed

from bot.connect import Job
from bot.services.rebuilds.restores import Ranked, candidates, last_restore_seconds
from sim.stack import OPS_CHANNEL, start_stack


def _ranked(guid: str, runtimes: tuple[str, ...], visitors: int = 0, *, interactive: bool = True,
            position: int = 0) -> Ranked:  # fmt: skip
    return Ranked(guid, runtimes, visitors, interactive, position)


R, PY, BOTH = ("R 4.3",), ("Python 3.11",), ("Python 3.11", "R 4.3")


@pytest.mark.parametrize(
    ("rows", "per", "expected"),
    [
        ([], 3, []),
        # Most visited first, then interactive, then plan order; at most `per` a combination.
        (
            [
                _ranked("r1", R, 5, position=3),
                _ranked("r2", R, 9, position=4),
                _ranked("r3", R, 0, position=0),
                _ranked("r4", R, 0, interactive=False, position=1),
                _ranked("r5", R, 0, position=2),
            ],
            3,
            ["r2", "r1", "r3"],
        ),
        # Each combination's best before any combination's second (a cap keeps them all).
        (
            [
                _ranked("r1", R, 9, position=0),
                _ranked("r2", R, 8, position=1),
                _ranked("p1", PY, 1, position=2),
                _ranked("b1", BOTH, 0, position=3),
                _ranked("x", (), 99, position=4),  # no runtime: never a warm-up
            ],
            2,
            ["r1", "p1", "b1", "r2"],
        ),
    ],
)
def test_candidates(rows: list[Ranked], per: int, expected: list[str]) -> None:
    assert candidates(rows, per) == expected


def _job(tag: str, start: str | None, end: str | None, *, status: int = 1, code: int | None = 0):
    return Job.from_json(
        {"key": "k", "tag": tag, "status": status, "start_time": start, "end_time": end,
         "exit_code": code}
    )  # fmt: skip


T = "2026-11-30T10:00:{:02d}Z"


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([], None),
        ([_job("run_app", T.format(0), T.format(30))], None),  # not a restore
        ([_job("packrat_restore", T.format(0), T.format(12))], 12.0),
        ([_job("python_restore", T.format(0), T.format(7))], 7.0),
        ([_job("packrat_restore", T.format(0), T.format(9), code=1)], None),  # it failed
        ([_job("packrat_restore", T.format(0), None, status=0, code=None)], None),  # running
        (
            [  # the newest successful one
                _job("packrat_restore", T.format(0), T.format(20)),
                _job("packrat_restore", T.format(30), T.format(33)),
                _job("packrat_restore", T.format(40), T.format(59), code=1),
            ],
            3.0,
        ),
    ],
)
def test_last_restore_seconds(jobs: list[Job], expected: float | None) -> None:
    assert last_restore_seconds(jobs) == expected


def test_a_first_rebuild_warms_with_the_quickest_restore_and_a_later_one_asks_nothing() -> None:
    seed = _seed(
        ("App A", "shiny", "4.3.0", None),
        ("App B", "shiny", "4.3.0", None),
        ("App C", "shiny", "4.3.0", None),
        ("Report D", "rmd-static", "4.3.0", None),
    )  # no cache listed: R 4.3.0 is cold
    restores = {"App A": 4.0, "App B": 1.0, "App C": 2.0, "Report D": 0.0}
    with start_stack(seed=seed, build_seconds=0.1) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        guid = {item["title"]: item["guid"] for item in connect.content()}
        connect.set_build_durations({guid[t]: s for t, s in restores.items()})
        assert connect.record_deployments() == 4
        connect.set_build_durations({g: 0.1 for g in guid.values()})  # this rebuild's builds

        first = plan(stack, "rebuild --parallelism 2")
        rows = items(db, rebuild_id_of(first))
        # Without Connect's restores App A (the newest interactive item) would warm R 4.3.0.
        assert [row.title for row in rows if row.wave == 0] == ["App B"]
        asked = {r.path.split("/")[-2] for r in connect.requests if r.path.endswith("/jobs")}
        assert asked == {guid["App A"], guid["App B"], guid["App C"]}  # the candidates only
        stack.requests.click(OPS_CHANNEL, first.ts, "rebuild_start")
        wait_final(slack, first.ts, timeout=20)

        mark = len(connect.requests)
        second = plan(stack, "rebuild --parallelism 2 --no-verify", count=2)
        assert rebuild_id_of(second) != rebuild_id_of(first)
        later = connect.requests[mark:]
        assert any(r.path.endswith("/v1/content") for r in later)  # it did ask Connect
        assert not [r for r in later if r.path.endswith("/jobs")]  # history: no restores asked
