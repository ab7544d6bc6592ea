"""`health --visited-within DAYS` (issue 20): its parser, and end to end (signed requests on
loopback, the Connect simulator's usage over HTTP, the fake Slack) that only the visited items
are requested, the card lists the others, and without usage everything is checked, saying why."""

from __future__ import annotations

import pytest
from test_visitors_plan import _seed, _set_usage

from bot.connect import ContentFilter
from bot.services.health import UNVISITED, HealthReport
from bot.services.outcomes import Actor
from bot.slack.parser import Health, ParseError, parse
from bot.slack.views import health_view
from sim.stack import ADMIN, OPS_CHANNEL, Stack, start_stack
from tests.slack_helpers import wait_ephemeral, wait_message
from tests.test_views import all_text

GOOD = [
    ("health --visited-within 30d", 30),
    ("health --visited-within=2w", 14),
    ("health --visited-within 7", 7),
    ("health --visited-within 7d --visited-within 7", 7),
    ("health", None),
]


@pytest.mark.parametrize(("text", "days"), GOOD)
def test_health_takes_visited_within(text: str, days: int | None) -> None:
    parsed = parse(text)
    assert isinstance(parsed, Health)
    assert parsed.visited_within == days
    assert parsed.filter == ContentFilter(published=True)
    within = f"; visited within {days} day(s)" if days else ""
    assert parsed.description == f"all published content{within}"


def test_health_visited_within_with_other_options() -> None:
    parsed = parse("health --render --visited-within 30d --content-type shiny -n prod")
    assert isinstance(parsed, Health)
    assert (parsed.visited_within, parsed.render, parsed.server) == (30, True, "prod")
    assert parsed.filter.content_types == frozenset({"shiny"})


BAD = [
    ("health --visited-within", "needs a number of days"),
    ("health --visited-within --render", "needs a number of days"),
    ("health --visited-within 30m", "takes days or weeks"),
    ("health --visited-within 0d", "1 to 365 days"),
    ("health --visited-within 400d", "1 to 365 days"),
    ("health --visited-within 7d --visited-within 30d", "given twice"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_visited_within_is_refused_as_on_rebuild(text: str, message: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, ParseError)
    assert message in parsed.message
    assert parsed.usage is not None and "--visited-within 30d" in parsed.usage
    assert "/connect health" in parsed.usage


def _probed(stack: Stack, guids: dict[str, str]) -> set[str]:
    """The titles whose content URL Connect was asked for."""
    return {
        title for title, guid in guids.items() if stack.connect.count("GET", f"^/content/{guid}/")
    }


def _card(stack: Stack) -> str:
    return wait_message(stack, lambda m: " checked: " in m.all_text(), timeout=20).all_text()


def test_health_visited_within_checks_exactly_the_visited_items_and_lists_the_others() -> None:
    with start_stack(seed=_seed()) as stack:  # 2024.08: visits + Shiny usage
        guids = _set_usage(stack)
        stack.connect.clear_requests()
        stack.requests.command("health --visited-within 30d")
        text = _card(stack)
        assert _probed(stack, guids) == {"Quiet App", "Busy App", "Mid API"}
        counts = "3 start, 0 fail to start, 0 could not be checked, 3 skipped (1 nobody visited)"
        assert f"6 checked: {counts}" in text
        assert "Not checked: 1 item(s) nobody visited in the last 30 days: *Nobody App*" in text
        assert "Old Report" not in text  # rendered: skipped as without the option
        assert stack.connect.count("GET", "instrumentation/content/visits") >= 1
        # The history keeps the figure (in the check's summary: the row has no column for it).
        stack.requests.command("health history")
        history = wait_ephemeral(stack, "Health checks: last 1", ADMIN).all_text()
        assert f"6 checked: {counts}" in history


def test_health_visited_within_without_usage_checks_everything_and_says_why() -> None:
    options = {"version": "2024.09.1", "usage_api": False}
    with start_stack(seed=_seed(), connect_options=options) as stack:
        guids = _set_usage(stack)
        stack.connect.clear_requests()
        stack.requests.command("health --visited-within 30d")
        text = _card(stack)
        assert _probed(stack, guids) == {"Quiet App", "Busy App", "Nobody App", "Mid API"}
        assert "Connect 2024.09 has no usage API: `--visited-within` not applied" in text
        assert "Not checked" not in text


def test_health_render_visited_within_renders_only_the_visited_documents() -> None:
    with start_stack(seed=_seed()) as stack:
        guids = _set_usage(stack)
        stack.requests.command("health --render --visited-within 30d")
        card = wait_message(stack, lambda m: "Confirm" in m.button_labels())
        assert "render again* its 1 rendered document(s)" in card.all_text()  # not Old Report
        stack.connect.clear_requests()
        stack.requests.click(OPS_CHANNEL, card.ts, "health_render_confirm")
        assert stack.slack.wait_for(
            lambda s: " checked: " in s.message(OPS_CHANNEL, card.ts).all_text(), 30
        ), "the confirmation card never showed the result"
        renders = [r.path for r in stack.connect.requests if r.method == "POST"]
        assert [path for path in renders if path.endswith("/render")] == [
            f"/__api__/v1/content/{guids['Report']}/render"
        ]
        assert _probed(stack, guids) == {"Quiet App", "Busy App", "Mid API"}
        text = stack.slack.message(OPS_CHANNEL, card.ts).all_text()
        assert "nobody visited in the last 30 days: *Nobody App*, *Old Report*" in text


def test_an_unstored_check_leaves_out_the_unvisited_items_too() -> None:
    with start_stack(seed=_seed()) as stack:
        guids = _set_usage(stack)
        service = stack.runtime.services.health
        assert service is not None
        stack.connect.clear_requests()
        report = service.check(
            Actor(ADMIN, OPS_CHANNEL), None, ContentFilter(published=True), visited_within=30
        )
        assert isinstance(report, HealthReport)
        assert _probed(stack, guids) == {"Quiet App", "Busy App", "Mid API"}
        assert report.of(guids["Nobody App"]).verdict == UNVISITED
        assert report.visited_within == 30
        assert "Not checked: 1 item(s) nobody visited in the last 30 days" in (
            all_text(health_view(report))
        )
