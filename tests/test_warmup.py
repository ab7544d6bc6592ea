"""The warm-up builds each cold runtime (language, version, image) once, and each runtime's
other items start as soon as its own warm-up build is finished; a runtime whose cache Connect
lists makes nothing wait. Within a priority class the longest known builds go first."""

from __future__ import annotations

from datetime import datetime

from rebuild_support import items, plan, rebuild_id_of, wait_final

from bot.services.rebuilds.planning import item_runtime_keys
from bot.store import RebuildItem
from sim.connect_seed import Seed, make_cache, make_content_item
from sim.stack import OPS_CHANNEL, start_stack

R43, R42, PY311 = "R 4.3.0 (Local)", "R 4.2.1 (Local)", "Python 3.11.3 (Local)"


def _seed(*specs: tuple[str, str, str | None, str | None], cached: bool = False) -> Seed:
    """(title, app_mode, r_version, py_version), newest deployment first; every runtime cache
    missing (cold, after a system change), or all of them listed (`cached`)."""
    content = [
        make_content_item(
            title=title,
            app_mode=mode,
            r_version=r_version,
            py_version=py_version,
            id=str(500 + index),
            last_deployed_time=f"2025-01-{28 - index:02d}T10:00:00Z",
        )
        for index, (title, mode, r_version, py_version) in enumerate(specs)
    ]
    caches = [make_cache("R", "4.3.0"), make_cache("R", "4.2.1"), make_cache("Python", "3.11.3")]
    return Seed(caches=caches if cached else [], content=content)


def _keys(row: RebuildItem) -> tuple[str, ...]:
    return item_runtime_keys(row.runtimes, row.runtime)


def _assert_each_runtime_warmed_once(rows: list[RebuildItem]) -> None:
    """Per runtime: exactly one build ran before its warm-up build finished (that one)."""
    for key in {k for row in rows for k in _keys(row)}:
        using = [row for row in rows if key in _keys(row) and row.state != "skipped"]
        warmer = min((row for row in using if row.wave == 0), key=lambda r: r.position)
        assert warmer.finished_at is not None
        early = [row for row in using if _started(row) < warmer.finished_at]
        assert early == [warmer], (key, [row.title for row in early])


def _started(row: RebuildItem) -> datetime:
    assert row.started_at is not None
    return row.started_at


def test_mixed_r_and_python_items_warm_the_shared_r_runtime_once() -> None:
    seed = _seed(
        ("Mixed App", "shiny", "4.3.0", "3.11.3"),
        ("R App", "shiny", "4.3.0", None),
        ("R Report", "rmd-static", "4.3.0", None),
        ("Python App", "python-dash", None, "3.11.3"),
        ("Mixed Report", "rmd-static", "4.2.1", "3.11.3"),
        ("Old R App", "shiny", "4.2.1", None),
    )
    with start_stack(seed=seed, build_seconds=0.2) as stack:
        slack, db = stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        rebuild_id = rebuild_id_of(card)
        rows = items(db, rebuild_id)
        warmup = [row for row in rows if row.wave == 0]
        # Two items cover the three runtimes: the mixed app (R 4.3.0 and Python 3.11.3), and
        # an R 4.2.1 item of its own; the R-only app of R 4.3.0 is not a second warm-up.
        assert sorted(row.title for row in warmup) == ["Mixed App", "Old R App"]
        assert "1. Warm-up: 2 item(s)" in card.all_text()
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts, timeout=15)
        rows = items(db, rebuild_id)
        assert {row.state for row in rows} == {"succeeded"}
        _assert_each_runtime_warmed_once(rows)
        # Connect was asked once per item.
        assert sorted(stack.connect.builds_started()) == sorted(row.guid for row in rows)


def test_a_runtime_starts_its_builds_before_another_runtimes_slow_warm_up_ends() -> None:
    seed = _seed(
        ("Slow Python App", "python-dash", None, "3.11.3"),
        ("Python Report", "jupyter-static", None, "3.11.3"),
        ("R App", "shiny", "4.3.0", None),
        ("R Report", "rmd-static", "4.3.0", None),
        ("R Notes", "rmd-static", "4.3.0", None),
    )
    with start_stack(seed=seed, build_seconds=0.1) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 3")
        rebuild_id = rebuild_id_of(card)
        by_title = {row.title: row for row in items(db, rebuild_id)}
        assert by_title["Slow Python App"].wave == 0 and by_title["R App"].wave == 0
        connect.set_build_duration(by_title["Slow Python App"].guid, 2.0)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts, timeout=20)
        rows = {row.title: row for row in items(db, rebuild_id)}
        slow_end = rows["Slow Python App"].finished_at
        assert slow_end is not None
        # R's builds ran while Python's warm-up was still building ...
        for title in ("R Report", "R Notes"):
            assert _started(rows[title]) < slow_end, title
            assert rows[title].finished_at is not None and rows[title].finished_at < slow_end
        # ... and Python's other item waited for its own warm-up.
        assert _started(rows["Python Report"]) >= slow_end
        _assert_each_runtime_warmed_once(list(rows.values()))


def test_runtimes_whose_cache_is_listed_wait_for_no_warm_up() -> None:
    seed = _seed(
        ("Slow Python App", "python-dash", None, "3.11.3"),
        ("Python Report", "jupyter-static", None, "3.11.3"),
        ("Python Notes", "jupyter-static", None, "3.11.3"),
        cached=True,
    )
    with start_stack(seed=seed, build_seconds=0.1) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 3")
        rebuild_id = rebuild_id_of(card)
        by_title = {row.title: row for row in items(db, rebuild_id)}
        assert by_title["Slow Python App"].wave == 0
        connect.set_build_duration(by_title["Slow Python App"].guid, 1.5)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts, timeout=20)
        rows = {row.title: row for row in items(db, rebuild_id)}
        slow_end = rows["Slow Python App"].finished_at
        assert slow_end is not None
        # Python 3.11.3's cache is listed: its other builds ran beside the warm-up one.
        for title in ("Python Report", "Python Notes"):
            assert _started(rows[title]) < slow_end, title


def test_the_second_rebuild_starts_the_longest_builds_first_and_warms_with_short_ones() -> None:
    seed = _seed(
        ("App A", "shiny", "4.3.0", None),
        ("App B", "shiny", "4.3.0", None),
        ("App C", "shiny", "4.3.0", None),
        ("Report D", "rmd-static", "4.3.0", None),
        ("Report E", "rmd-static", "4.3.0", None),
    )
    seconds = {"App A": 0.05, "App B": 0.4, "App C": 0.2, "Report D": 0.12, "Report E": 0.3}
    with start_stack(seed=seed, build_seconds=0.1) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        for item in connect.content():
            connect.set_build_duration(item["guid"], seconds[item["title"]])
        first = plan(stack, "rebuild --parallelism 2")
        # No history yet: Connect's order, the newest interactive item warms R 4.3.0.
        rows = items(db, rebuild_id_of(first))
        assert [row.title for row in rows] == ["App A", "App B", "App C", "Report D", "Report E"]
        stack.requests.click(OPS_CHANNEL, first.ts, "rebuild_start")
        wait_final(slack, first.ts, timeout=20)

        second = plan(stack, "rebuild --parallelism 1", count=2)  # one at a time: a strict order
        rows = items(db, rebuild_id_of(second))
        # The shortest known interactive build warms the runtime; then longest first in each
        # class: interactive B (0.4 s) before C (0.2 s), rendered E (0.3 s) before D.
        assert [(row.wave, row.title) for row in rows] == [
            (0, "App A"),
            (1, "App B"),
            (1, "App C"),
            (2, "Report E"),
            (2, "Report D"),
        ]
        stack.requests.click(OPS_CHANNEL, second.ts, "rebuild_start")
        wait_final(slack, second.ts, timeout=20)
        built = [r.path.split("/")[-2] for r in connect.requests if r.path.endswith("/build")]
        titles = {item["guid"]: item["title"] for item in connect.content()}
        assert [titles[guid] for guid in built[5:]] == [
            "App A",
            "App B",
            "App C",
            "Report E",
            "Report D",
        ]
