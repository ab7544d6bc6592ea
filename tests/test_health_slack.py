"""`/connect health` end to end through the fake Slack and the Connect simulator; its parser and
its view with hostile Connect strings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.connect import ContentItem, RuntimeCache
from bot.services.health import (
    CheckRow,
    CouldNotCheck,
    Counts,
    FailsToStart,
    HealthReport,
    ItemHealth,
    PackageFailures,
    Progress,
    RuntimeFailures,
    Skipped,
    Starts,
)
from bot.slack import parser
from bot.slack.views import (
    health_failed_view,
    health_history_view,
    health_progress_view,
    health_render_confirm_view,
    health_started_view,
    health_thread_replies,
    health_view,
)
from sim.stack import Stack, start_stack
from tests.slack_helpers import wait_message
from tests.test_escaping import HOSTILE, SERVER, assert_safe_message, text_objects
from tests.test_views import all_text


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack() as running:
        assert running.runtime.services.health is not None  # bot/runtime.py builds it
        yield running


def test_health_takes_the_rebuild_filters() -> None:
    command = parser.parse("health --uses-package sf --content-type shiny -n prod")
    assert isinstance(command, parser.Health)
    assert command.packages == ("sf",)
    assert command.filter.content_types == frozenset({"shiny"})
    assert command.server == "prod"
    assert "content using sf" in command.description
    refused = parser.parse("health --parallelism 3")
    assert isinstance(refused, parser.ParseError)
    assert "--parallelism" in refused.message


def test_health_card_names_what_fails_and_why(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    stack.connect.clear_requests()

    stack.requests.command("health")
    message = wait_message(stack, lambda m: " checked: " in m.all_text(), timeout=20)

    text = message.all_text()
    assert "14 checked: 7 start, 2 fail to start, 0 could not be checked, 5 skipped" in text
    assert "Sales Dashboard" in text and "Executive KPIs" in text
    assert "libgdal.so.30: cannot open shared object file" in text
    assert "`sf` (R): 2 of 2 failing items (used by 2 checked item(s))" in text
    assert "R 4.3.0 · `Local`: 2 of 2 checked item(s) fail" in text
    assert "Plumber Scoring API" not in text  # a healthy API answering / with 404
    assert stack.connect.count("GET", "^/content/") == 9  # each interactive item, once
    assert stack.connect.count("POST", "/render$") == 0


def _report(value: str) -> HealthReport:
    item = ContentItem.from_json(
        {
            "guid": "g-1",
            "title": value,
            "app_mode": "shiny",
            "bundle_id": "1",
            "r_version": "4.3.0",
            "image_name": value,
            "dashboard_url": f"{SERVER}/connect/#/apps/g-1",
        }
    )
    results = (
        ItemHealth(item, FailsToStart(value, summary=value), packages=(f"r:{value}",)),
        ItemHealth(item, CouldNotCheck(value)),
        ItemHealth(item, Skipped(value)),
        ItemHealth(item, Starts()),
    )
    return HealthReport(
        server=value,
        items=results,
        by_runtime=(RuntimeFailures(RuntimeCache("R", value, value), 1, 2),),
        by_package=(PackageFailures("R", value, 1, 1, 1),),
        rendered=False,
        notes=(value,),
    )


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_connect_strings_are_inert_in_the_health_card(value: str) -> None:
    assert_safe_message(health_view(_report(value), server_label=value))


def test_hostile_title_still_shows_escaped() -> None:
    """Escaping hides nothing: the title and the log line are there, as text."""
    data = health_view(_report("Q3 <!channel> & @here report")).to_dict()
    joined = "\n".join([data["text"], *(o["text"] for o in text_objects(data))])
    assert "Q3 &lt;!channel&gt; &amp; @\u2060here report" in joined


def _progress(value: str) -> Progress:
    row = CheckRow(
        id=7,
        server=value,
        requested_by="UREQ1",
        channel="C1",
        card_ts="1.1",
        state="running",
        description=value,
        criteria=None,
        render=False,
        total=40,
        counts=Counts(1, 2, 3, 4),
        summary={},
        error=None,
        reported=False,
        driver="me",
        created_at=datetime.now(UTC),
        finished_at=None,
    )
    return Progress(row, Counts(1, 2, 3, 4), 2)


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_strings_are_inert_in_the_progress_thread_and_failure(value: str) -> None:
    assert_safe_message(health_started_view(value, server_label=value))
    assert_safe_message(health_progress_view(_progress(value), server_label=value))
    assert_safe_message(health_failed_view(value, server_label=value))
    report = _report(value)
    many = dataclasses.replace(report, items=report.items[:1] * 40)
    replies = health_thread_replies(many)
    assert replies
    for reply in replies:
        assert_safe_message(reply)
    assert_safe_message(health_view(many, server_label=value, check_id=3, threaded=True))


def test_render_and_history_parse_and_bad_input_is_answered() -> None:
    command = parser.parse("health --render --content-type rmd-static")
    assert isinstance(command, parser.Health) and command.render
    assert not parser.parse("health").render  # type: ignore[union-attr]
    assert isinstance(parser.parse("health history -n prod"), parser.HealthHistory)
    refused = parser.parse("health history --render")
    assert isinstance(refused, parser.ParseError)
    assert "takes no options" in refused.message


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_strings_are_inert_in_the_history(value: str) -> None:
    done = _progress(value).row
    rows = [
        dataclasses.replace(done, state="done"),
        dataclasses.replace(done, id=8, state="failed", error=value),
        dataclasses.replace(done, id=9),
    ]
    assert_safe_message(
        health_history_view(rows, lambda _c, _t: f"{SERVER}/x", several_servers=True)
    )
    assert_safe_message(
        health_render_confirm_view(value, 3, "pending-1", "UADMIN1", server_label=value)
    )


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            Counts(1, 2, 3, 4),
            "10 of 40 items so far (1 start, 2 fail to start, 3 could not be checked, 4 skipped);",
        ),
        (
            Counts(1, 2, 3, 4, unvisited=3),
            "10 of 40 items so far (1 start, 2 fail to start, 3 could not be checked, 4 skipped"
            " (3 nobody visited));",
        ),
    ],
)
def test_the_progress_line_counts_what_visited_within_left_out(counts, expected) -> None:
    progress = dataclasses.replace(_progress("all content"), counts=counts)
    text = " ".join(all_text(health_progress_view(progress)).split())
    assert expected in text
