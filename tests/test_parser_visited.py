"""`--visited-within DAYS` on `rebuild` (issue 20): table and property tests of the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.connect import ContentFilter
from bot.slack.parser import ParseError, RebuildPlan, parse


def plan(days: int | None, parallelism: int | None = None, **fields: object) -> RebuildPlan:
    return RebuildPlan(
        ContentFilter(published=True, **fields),  # type: ignore[arg-type]
        parallelism,
        "all published content" if not fields else "",
        visited_within=days,
    )


GOOD = [
    ("rebuild --visited-within 30d", 30),
    ("rebuild --visited-within=30d", 30),
    ("rebuild --visited-within 30", 30),
    ("rebuild --visited-within 2w", 14),
    ("rebuild --visited-within 1day", 1),
    ("rebuild --visited-within 365d", 365),
    ("rebuild --visited-within 7d --visited-within 7", 7),  # the same twice is one
    ("rebuild", None),
]


@pytest.mark.parametrize(("text", "days"), GOOD)
def test_visited_within(text: str, days: int | None) -> None:
    assert parse(text) == plan(days)


def test_visited_within_with_other_options() -> None:
    parsed = parse("rebuild --parallelism 3 --visited-within 30d --at 02:00")
    assert isinstance(parsed, RebuildPlan)
    assert (parsed.visited_within, parsed.parallelism) == (30, 3)
    assert parsed.when is not None


BAD = [
    ("rebuild --visited-within", "needs a number of days"),
    ("rebuild --visited-within --parallelism 2", "needs a number of days"),
    ("rebuild --visited-within 30m", "takes days or weeks"),
    ("rebuild --visited-within -3d", "needs a number of days"),
    ("rebuild --visited-within 0d", "1 to 365 days"),
    ("rebuild --visited-within 400d", "1 to 365 days"),
    ("rebuild --visited-within 7d --visited-within 30d", "given twice"),
    ("content search --visited-within 7d", "understand"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_visited_within_refused(text: str, message: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, ParseError)
    assert message in parsed.message


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 365), st.sampled_from(["", "d", "day", "days", "D"]), st.booleans())
def test_any_day_count_parses(days: int, unit: str, inline: bool) -> None:
    option = f"--visited-within={days}{unit}" if inline else f"--visited-within {days}{unit}"
    parsed = parse(f"rebuild {option}")
    assert isinstance(parsed, RebuildPlan)
    assert parsed.visited_within == days


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_any_value_parses_or_is_refused_with_a_message(value: str) -> None:
    parsed = parse(f"rebuild --visited-within={value}")
    assert isinstance(parsed, (RebuildPlan, ParseError))
    if isinstance(parsed, RebuildPlan):
        assert parsed.visited_within is not None and 1 <= parsed.visited_within <= 365
