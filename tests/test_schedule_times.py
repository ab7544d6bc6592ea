"""`--at` / `--in` made instants: pure table tests with a fixed clock, DST edges included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.services.times import (
    After,
    AtDateTime,
    AtTime,
    BadTime,
    Proposal,
    local_label,
    refusal,
    resolve,
    zone_named,
)

PARIS = ZoneInfo("Europe/Paris")
LA = ZoneInfo("America/Los_Angeles")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("when", "zone", "now", "expected"),
    [
        # Later today in the person's zone.
        (AtTime(2, 0), PARIS, utc(2026, 1, 10, 0, 30), utc(2026, 1, 10, 1, 0)),
        # Already past today there: tomorrow.
        (AtTime(2, 0), PARIS, utc(2026, 1, 10, 1, 30), utc(2026, 1, 11, 1, 0)),
        # The same words, two zones, two instants.
        (AtTime(2, 0), LA, utc(2026, 1, 10, 12, 0), utc(2026, 1, 11, 10, 0)),
        (AtTime(2, 0), TOKYO, utc(2026, 1, 10, 12, 0), utc(2026, 1, 10, 17, 0)),
        # "Today" is the person's date, not UTC's: 23:00 UTC is already tomorrow in Tokyo.
        (AtTime(9, 0), TOKYO, utc(2026, 1, 10, 23, 0), utc(2026, 1, 11, 0, 0)),
        # Across the spring-forward night: 03:00 the next day is CEST (+2), not CET.
        (AtTime(3, 0), PARIS, utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 1, 0)),
        # Autumn: 02:30 happens twice in Paris; the first one (CEST, +2) is taken.
        (AtTime(2, 30), PARIS, utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 0, 30)),
        # A date and time, in the zone, with that day's offset (summer in LA: -7).
        (AtDateTime(datetime(2026, 7, 4, 2, 0)), LA, utc(2026, 7, 1), utc(2026, 7, 4, 9, 0)),
        (AtDateTime(datetime(2026, 1, 4, 2, 0)), LA, utc(2026, 1, 1), utc(2026, 1, 4, 10, 0)),
        # A delay needs no zone.
        (After(timedelta(minutes=30)), None, utc(2026, 1, 1), utc(2026, 1, 1, 0, 30)),
        (After(timedelta(hours=2)), None, utc(2026, 1, 1), utc(2026, 1, 1, 2, 0)),
    ],
)
def test_when_resolves_to_the_instant_meant(
    when: object, zone: ZoneInfo | None, now: datetime, expected: datetime
) -> None:
    at = resolve(when, zone, now)  # type: ignore[arg-type]
    assert at == expected
    assert at.tzinfo is UTC


@pytest.mark.parametrize(
    ("when", "zone", "now", "fragment"),
    [
        # 02:30 does not exist in Paris on 2026-03-29 (02:00 -> 03:00).
        (AtTime(2, 30), PARIS, utc(2026, 3, 28, 22, 0), "does not exist on 2026-03-29"),
        (AtDateTime(datetime(2026, 3, 8, 2, 15)), LA, utc(2026, 3, 1), "does not exist"),
        (AtDateTime(datetime(2026, 1, 1, 2, 0)), PARIS, utc(2026, 1, 2), "has passed"),
        (AtDateTime(datetime(2026, 3, 1, 2, 0)), PARIS, utc(2026, 1, 1), "more than 30 days"),
        (After(timedelta(days=31)), None, utc(2026, 1, 1), "more than 30 days"),
        (AtTime(2, 0), None, utc(2026, 1, 1), "don't know your time zone"),
    ],
)
def test_times_that_cannot_be_scheduled_are_refused_with_an_example(
    when: object, zone: ZoneInfo | None, now: datetime, fragment: str
) -> None:
    with pytest.raises(BadTime) as caught:
        resolve(when, zone, now)  # type: ignore[arg-type]
    assert fragment in caught.value.message


def test_the_limits() -> None:
    now = utc(2026, 1, 1)
    assert refusal(now, now) is not None
    assert refusal(now + timedelta(seconds=1), now) is None
    assert refusal(now + timedelta(days=30), now) is None
    assert refusal(now + timedelta(days=30, seconds=1), now) is not None


def test_zones_and_labels() -> None:
    assert zone_named("Europe/Paris") == PARIS
    assert zone_named("Mars/Olympus") is None
    assert zone_named("") is None and zone_named(None) is None
    assert zone_named("../etc/passwd") is None
    at = utc(2026, 12, 24, 1, 0)
    assert local_label(at, PARIS) == "Thu 24 Dec 02:00 Europe/Paris"
    assert local_label(at, None) == "Thu 24 Dec 01:00 UTC"
    proposal = Proposal(at, "Europe/Paris")
    assert Proposal.from_json(proposal.to_json()) == proposal
    assert Proposal.from_json({"at": "2026-12-24T01:00"}) is None  # naive: refused
    assert Proposal.from_json(None) is None
