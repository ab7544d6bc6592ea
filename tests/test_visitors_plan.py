"""Visitors first, end to end (issue 20): the bot over signed requests on loopback, Connect's
usage from the simulator over HTTP. The order of a small hand-made plan, the card's coverage
line, `--visited-within` leaving out exactly the unvisited items, the progress message's share
of visits covered, and the card without usage."""

from __future__ import annotations

from datetime import timedelta

from rebuild_support import items, plan, rebuild_id_of, rebuild_row, wait_final
from test_schedule_flow import Clock, clocked, item, schedule_card

from bot.services.rebuilds import UNVISITED
from sim.connect_seed import Seed, make_cache, make_content_item
from sim.stack import OPS_CHANNEL, start_stack

# (title, app_mode, visits per day), newest deployment first (Connect's order)
SPECS = [
    ("Quiet App", "shiny", 1.0),
    ("Report", "rmd-static", 30.0),  # rendered: nobody waits on its build
    ("Busy App", "shiny", 20.0),
    ("Nobody App", "shiny", 0.0),
    ("Mid API", "api", 5.0),
    ("Old Report", "rmd-static", 0.0),
]


def _seed() -> Seed:
    content = [
        make_content_item(
            title=title,
            app_mode=mode,
            r_version="4.3.0",
            id=str(700 + index),
            last_deployed_time=f"2025-02-{20 - index:02d}T10:00:00Z",
        )
        for index, (title, mode, _) in enumerate(SPECS)
    ]
    return Seed(caches=[make_cache("R", "4.3.0")], content=content)


def _set_usage(stack: object) -> dict[str, str]:
    connect = stack.connect  # type: ignore[attr-defined]
    titles = {item["title"]: item["guid"] for item in connect.content()}
    for title, _, per_day in SPECS:
        connect.set_usage(titles[title], per_day)
    return titles


def test_the_most_visited_interactive_items_go_first_and_the_card_says_what_it_buys() -> None:
    with start_stack(
        seed=_seed(), build_seconds=0.1, connect_options={"version": "2025.04.0"}
    ) as stack:
        _set_usage(stack)
        card = plan(stack, "rebuild --parallelism 1")
        rebuild_id = rebuild_id_of(card)
        rows = items(stack.runtime.db, rebuild_id)
        # No history: most visited first among the apps and APIs (140, 35, 7 visits a week);
        # then nobody waits (unvisited, rendered): Connect's order.
        assert [(row.wave, row.title) for row in rows] == [
            (0, "Busy App"),  # the warm-up: of the runtime's items, the most visited
            (1, "Mid API"),
            (1, "Quiet App"),
            (2, "Report"),
            (2, "Nobody App"),
            (2, "Old Report"),
        ]
        assert [row.visitors for row in rows] == [140, 35, 7, 0, 0, 0]
        text = card.all_text()
        # 140 of 182 visits (76 %) wait on the first build; 175 (96 %) on the first two.
        assert "the first 2 build(s) cover 96 % of last week's visits" in text
        assert rebuild_row(stack.runtime.db, rebuild_id).usage["source"] == "hits"
        assert stack.connect.count("GET", "instrumentation/content/hits") == 1

        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(stack.slack, card.ts, timeout=20)
        done = stack.slack.message(OPS_CHANNEL, card.ts)
        assert "100 % of visits covered" in done.all_text()
        # Start used the usage kept with the plan: Connect was not asked again.
        assert stack.connect.count("GET", "instrumentation/content/hits") == 1


def test_visited_within_leaves_out_exactly_the_unvisited_items_and_lists_them() -> None:
    with start_stack(seed=_seed(), build_seconds=0.1) as stack:  # 2024.08: visits + Shiny usage
        titles = _set_usage(stack)
        card = plan(stack, "rebuild --visited-within 30d")
        rows = items(stack.runtime.db, rebuild_id_of(card))
        left = sorted(row.title for row in rows if row.error == UNVISITED)
        assert left == ["Nobody App", "Old Report"]
        assert {row.state for row in rows if row.error == UNVISITED} == {"skipped"}
        assert all(row.state == "queued" for row in rows if row.error != UNVISITED)
        assert {row.guid for row in rows if row.error == UNVISITED} == {
            titles["Nobody App"],
            titles["Old Report"],
        }
        text = card.all_text()
        assert "Rebuild plan #" in card.text and ": 4 item(s)" in card.text
        assert "Left to build on first visit: 2 item(s) nobody visited in the last 30 days" in text
        assert "*Nobody App*, *Old Report*" in text
        assert "already queued or building" not in text
        assert stack.connect.count("GET", "instrumentation/content/visits") >= 2  # 7 and 30 days
        assert stack.connect.count("GET", "instrumentation/shiny/usage") >= 2


def test_without_usage_the_card_says_why_and_the_order_is_the_usual_one() -> None:
    options = {"version": "2024.09.1", "usage_api": False}
    with start_stack(seed=_seed(), build_seconds=0.1, connect_options=options) as stack:
        _set_usage(stack)
        card = plan(stack, "rebuild --visited-within 30d")
        rows = items(stack.runtime.db, rebuild_id_of(card))
        assert "Connect 2024.09 has no usage API: building in the usual order." in card.all_text()
        assert not any(row.error == UNVISITED for row in rows)  # nothing left out
        # Today's order: the newest interactive item warms the runtime, then Connect's order.
        assert [(row.wave, row.title) for row in rows] == [
            (0, "Quiet App"),
            (1, "Busy App"),
            (1, "Nobody App"),
            (1, "Mid API"),
            (2, "Report"),
            (2, "Old Report"),
        ]
        assert all(row.visitors is None for row in rows)


def test_a_scheduled_rebuild_asks_for_fresh_usage_at_its_start() -> None:
    options = {"version": "2025.04.0"}
    with start_stack(
        seed=_seed(), build_seconds=0.1, connect_options=options, bot_two_person_rule=False
    ) as stack:
        titles = _set_usage(stack)
        rebuild_id = schedule_card(stack, "rebuild --visited-within 30d --in 30m")
        left = {r.title for r in items(stack.runtime.db, rebuild_id) if r.error == UNVISITED}
        assert left == {"Nobody App", "Old Report"}
        asked = stack.connect.count("GET", "instrumentation/content/hits")
        stack.connect.set_usage(titles["Nobody App"], 50.0)  # visited since the plan
        stack.connect.set_usage(titles["Quiet App"], 0.0)  # and nobody visits this any more
        scheduled = item(stack, rebuild_id)
        schedules = clocked(stack, Clock(scheduled.scheduled_for + timedelta(seconds=1)))
        assert schedules.fire(rebuild_id) == "started"
        assert stack.connect.count("GET", "instrumentation/content/hits") > asked
        rows = items(stack.runtime.db, rebuild_id)
        left = {r.title for r in rows if r.error == UNVISITED}
        assert left == {"Quiet App", "Old Report"}
        assert scheduled.thread_ts is not None
        wait_final(stack.slack, scheduled.thread_ts, timeout=20)
        built = set(stack.connect.builds_started())
        assert titles["Nobody App"] in built and titles["Quiet App"] not in built


def test_visitors_first_on_postgres(postgres_url: str) -> None:
    """The order, the usage merged into the plan's row (`jsonb ||`) and the progress share."""
    with start_stack(
        seed=_seed(),
        build_seconds=0.1,
        connect_options={"version": "2025.04.0"},
        bot_database_url=postgres_url,
    ) as stack:
        _set_usage(stack)
        card = plan(stack, "rebuild --parallelism 1 --visited-within 30d")
        rebuild_id = rebuild_id_of(card)
        rows = items(stack.runtime.db, rebuild_id)
        queued = [(row.wave, row.title) for row in rows if row.state == "queued"]
        assert queued == [(0, "Busy App"), (1, "Mid API"), (1, "Quiet App"), (2, "Report")]
        usage = rebuild_row(stack.runtime.db, rebuild_id).usage
        assert usage is not None and usage["within_days"] == 30 and usage["coverage_items"] == 2
        assert "the first 2 build(s) cover 96 % of last week's visits" in card.all_text()
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(stack.slack, card.ts, timeout=20)
        assert "100 % of visits covered" in stack.slack.message(OPS_CHANNEL, card.ts).all_text()
