"""Table tests of what the visitors-first order says (issue 20): the plan card's coverage line
or why there is no usage, the items left to build on first visit, and the progress message's
share of visits covered. Pure views; hostile titles and reasons stay inert."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack.views.visitors import coverage_line, percent, span, unvisited_text
from sim.slack import validate_blocks
from tests.test_views import HOSTILE, NOW, all_text, plan, plan_card, progress, tokens
from tests.test_views import v as views

KNOWN = {"known": True, "days": 7, "reason": None, "source": "hits", "within_days": None}


@pytest.mark.parametrize(
    ("usage", "line"),
    [
        (None, None),
        (
            {**KNOWN, "coverage_share": 0.8, "coverage_seconds": 720.0, "visited_items": 40},
            ":bar_chart: *Visitors first:* the first 12 minutes cover 80 % of last week's"
            " visits (40 visited app(s) and API(s), most visits per build minute first).",
        ),
        (
            {**KNOWN, "days": 30, "coverage_share": 0.8549, "coverage_seconds": 45.0},
            ":bar_chart: *Visitors first:* the first 45 seconds cover 85 % of the last 30 days'"
            " visits (0 visited app(s) and API(s), most visits per build minute first).",
        ),
        (
            {**KNOWN, "coverage_share": 0.9, "coverage_seconds": None, "coverage_items": 3},
            ":bar_chart: *Visitors first:* the first 3 build(s) cover 90 % of last week's"
            " visits (0 visited app(s) and API(s), most visits per build minute first).",
        ),
        (
            {"known": False, "days": 7, "reason": "Connect 2024.09 has no usage API"},
            ":bar_chart: Connect 2024.09 has no usage API: building in the usual order.",
        ),
        (
            {**KNOWN, "coverage_share": None},
            ":bar_chart: No visits to these apps and APIs in last week's usage:"
            " building in the usual order.",
        ),
    ],
)
def test_coverage_line(usage: dict[str, Any] | None, line: str | None) -> None:
    assert coverage_line(usage) == line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1 seconds"), (45, "45 seconds"), (720, "12 minutes"), (9000, "2.5 hours")],
)
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


@pytest.mark.parametrize(("share", "text"), [(0.8, "80 %"), (0.7999, "79 %"), (1.0, "100 %")])
def test_percent_rounds_down(share: float, text: str) -> None:
    assert percent(share) == text


def test_the_card_lists_what_is_left_to_build_on_first_visit() -> None:
    summary = plan(
        skipped=12,
        unvisited=12,
        unvisited_titles=["Old report", "Q3 deck"],
        usage={**KNOWN, "within_days": 30, "coverage_share": 0.8, "coverage_seconds": 600.0},
    )
    text = all_text(plan_card(summary))
    assert "Left to build on first visit: 12 item(s) nobody visited in the last 30 days" in text
    assert "*Old report*, *Q3 deck*, +10 more" in text
    assert "the first 10 minutes cover 80 %" in text
    assert "already queued or building" not in text  # not counted as duplicates
    assert "Visited apps and APIs, most visits per build minute first: 3" in text


def test_hostile_titles_and_reasons_stay_inert_on_the_card() -> None:
    summary = plan(
        skipped=1,
        unvisited=1,
        unvisited_titles=[HOSTILE],
        usage={"known": False, "days": 7, "reason": HOSTILE},
    )
    message = plan_card(summary)
    assert tokens(message) == ["@" + plan().requested_by]  # the requester, nothing else
    assert validate_blocks(message.to_dict()["blocks"]) == []
    assert "&lt;!channel&gt;" in unvisited_text(1, [HOSTILE], 7)


@pytest.mark.parametrize(
    ("visitors", "served", "shown"),
    [(None, 0, None), (200, 50, "25 % of visits covered"), (200, 200, "100 % of visits covered")],
)
def test_progress_shows_the_share_of_visits_covered(
    visitors: int | None, served: int, shown: str | None
) -> None:
    message = views.progress_view(progress(visitors=visitors, visitors_served=served), now=NOW)
    text = all_text(message)
    if shown is None:
        assert "of visits covered" not in text
    else:
        assert shown in text


@pytest.mark.parametrize(
    ("usage", "said"),
    [
        (None, "then 3 interactive app(s) and API(s), then 2 rendered or static item(s)."),
        (
            {**KNOWN, "coverage_share": 0.8, "coverage_seconds": 60.0},
            "then 3 visited app(s) and API(s), most visits per build minute first, then 2"
            " item(s) nobody waits on.",
        ),
    ],
)
def test_start_reply_says_the_order(usage: dict[str, Any] | None, said: str) -> None:
    message = views.start_reply(progress(), plan(usage=usage))
    assert said in all_text(message)
