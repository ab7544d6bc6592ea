"""Admin rights from user groups fail closed when Slack cannot be asked."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import pytest

from bot.services.authz import (
    ALLOWED,
    GROUPS_UNKNOWN,
    NOT_ADMIN,
    NOT_CONFIGURED,
    Authorizer,
    Decision,
)

ADMIN = "UADMIN"  # in BOT_ADMIN_USERS
MEMBER = "UMEMBER"  # in the admin user group (while Slack says so)
OTHER = "UOTHER"  # in neither
GROUP = "S0ADMINS"
CHANNEL = "C0OPS"
TOKEN = "xoxb-secret-token-1234"
DOWN = None  # Slack's answer for a step: the members, or DOWN (the lookup raises)


class FakeSlackError(Exception):
    """Like slack_sdk's SlackApiError: the text may carry secrets, the response an error code."""

    def __init__(self) -> None:
        super().__init__(f"The request to Slack failed (Authorization: Bearer {TOKEN})")
        self.response = {"ok": False, "error": "ratelimited"}


@dataclass
class FakeSlack:
    """`resolve_group` for the Authorizer: answers with `members`, or raises when down."""

    members: dict[str, frozenset[str] | None] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def __call__(self, group_id: str) -> list[str]:
        self.calls.append(group_id)
        answer = self.members.get(group_id, frozenset())
        if answer is None:
            raise FakeSlackError()
        return sorted(answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authorizer(slack: FakeSlack, clock: Clock, groups: tuple[str, ...] = (GROUP,)) -> Authorizer:
    return Authorizer(
        admin_users=[ADMIN],
        admin_groups=groups,
        resolve_group=slack,
        group_ttl=60,
        max_stale=300,
        retry_after=10,
        clock=clock,
    )


IN = frozenset({MEMBER})
EMPTY: frozenset[str] = frozenset()

# Each step: (seconds since start, Slack's answer for GROUP, who asks, the decision,
# how many lookups Slack has seen after the step).
Step = tuple[float, frozenset[str] | None, str, Decision, int]
SCENARIOS: dict[str, list[Step]] = {
    "a fresh answer is used without asking again": [
        (0, IN, MEMBER, ALLOWED, 1),
        (30, IN, MEMBER, ALLOWED, 1),
        (59, IN, OTHER, NOT_ADMIN, 1),
    ],
    "a failure within max_stale uses the last answer": [
        (0, IN, MEMBER, ALLOWED, 1),
        (100, DOWN, MEMBER, ALLOWED, 2),
        (100, DOWN, OTHER, NOT_ADMIN, 2),  # the last answer also says who is not in it
        (299, DOWN, MEMBER, ALLOWED, 3),
    ],
    "a failure past max_stale refuses a group member": [
        (0, IN, MEMBER, ALLOWED, 1),
        (300, DOWN, MEMBER, GROUPS_UNKNOWN, 2),
        (300, DOWN, OTHER, GROUPS_UNKNOWN, 2),
        (300, DOWN, ADMIN, ALLOWED, 2),  # BOT_ADMIN_USERS needs no lookup
    ],
    "no answer yet and a failure refuses": [
        (0, DOWN, MEMBER, GROUPS_UNKNOWN, 1),
        (0, DOWN, OTHER, GROUPS_UNKNOWN, 1),
        (0, DOWN, ADMIN, ALLOWED, 1),
    ],
    "Slack back after an outage": [
        (0, DOWN, MEMBER, GROUPS_UNKNOWN, 1),
        (10, IN, MEMBER, ALLOWED, 2),
        (11, DOWN, MEMBER, ALLOWED, 2),  # fresh again: no lookup
    ],
    "failed lookups back off while refusing": [
        (0, IN, MEMBER, ALLOWED, 1),
        (400, DOWN, MEMBER, GROUPS_UNKNOWN, 2),
        (401, DOWN, MEMBER, GROUPS_UNKNOWN, 2),
        (409.9, DOWN, MEMBER, GROUPS_UNKNOWN, 2),
        (410, DOWN, MEMBER, GROUPS_UNKNOWN, 3),
        (415, IN, MEMBER, GROUPS_UNKNOWN, 3),  # still backing off: Slack not asked yet
        (420, IN, MEMBER, ALLOWED, 4),
    ],
    "failed lookups back off while the last answer is usable": [
        (0, IN, MEMBER, ALLOWED, 1),
        (100, DOWN, MEMBER, ALLOWED, 2),
        (105, DOWN, MEMBER, ALLOWED, 2),
        (110, DOWN, MEMBER, ALLOWED, 3),
    ],
    "back-off does not outlive max_stale": [
        (0, IN, MEMBER, ALLOWED, 1),
        (295, DOWN, MEMBER, ALLOWED, 2),
        (300, DOWN, MEMBER, GROUPS_UNKNOWN, 2),  # no lookup, and the answer is now too old
    ],
    "removal from the group takes effect after the ttl": [
        (0, IN, MEMBER, ALLOWED, 1),
        (59, EMPTY, MEMBER, ALLOWED, 1),
        (60, EMPTY, MEMBER, NOT_ADMIN, 2),
        (61, IN, MEMBER, NOT_ADMIN, 2),
    ],
    "removal during an outage takes effect by max_stale": [
        (0, IN, MEMBER, ALLOWED, 1),
        (60, DOWN, MEMBER, ALLOWED, 2),
        (300, DOWN, MEMBER, GROUPS_UNKNOWN, 3),
        (310, EMPTY, MEMBER, NOT_ADMIN, 4),
    ],
}


@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_group_lookups(steps: list[Step]) -> None:
    slack, clock = FakeSlack(), Clock()
    authz = authorizer(slack, clock)
    start = clock.now
    for at, answer, user, expected, calls in steps:
        clock.now = start + at
        slack.members[GROUP] = answer
        assert authz.admin_in(user, CHANNEL) == expected, (at, user)
        assert len(slack.calls) == calls, (at, user)


TWO_GROUPS = [
    # (first group's answer, second group's answer, who asks, the decision)
    (DOWN, IN, MEMBER, ALLOWED),  # one group that answers is enough
    (IN, DOWN, MEMBER, ALLOWED),
    (DOWN, EMPTY, MEMBER, GROUPS_UNKNOWN),  # might be in the group Slack could not list
    (EMPTY, EMPTY, MEMBER, NOT_ADMIN),
    (DOWN, DOWN, ADMIN, ALLOWED),
]


@pytest.mark.parametrize(("first", "second", "user", "expected"), TWO_GROUPS)
def test_several_groups(
    first: frozenset[str] | None, second: frozenset[str] | None, user: str, expected: Decision
) -> None:
    slack = FakeSlack({"S1": first, "S2": second})
    authz = authorizer(slack, Clock(), groups=("S1", "S2"))
    assert authz.admin_in(user, CHANNEL) == expected


def test_the_refusal_says_slack_could_not_be_asked() -> None:
    decision = authorizer(FakeSlack({GROUP: DOWN}), Clock()).admin_in(MEMBER, CHANNEL)
    assert not decision.allowed
    for phrase in ("Slack could not be asked", "BOT_ADMIN_GROUPS", "nothing was changed"):
        assert phrase in decision.reason
    assert "Try again" in decision.reason and "operator" in decision.reason


def test_a_failure_is_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.services.authz"):
        authorizer(FakeSlack({GROUP: DOWN}), Clock()).admin_in(MEMBER, CHANNEL)
    text = caplog.text
    assert GROUP in text and "ratelimited" in text and "refusing" in text
    assert TOKEN not in text and "Bearer" not in text


def test_other_refusals_are_unchanged() -> None:
    slack = FakeSlack()
    assert Authorizer(resolve_group=slack).admin_in(MEMBER, CHANNEL) == NOT_CONFIGURED
    limited = Authorizer(admin_users=[ADMIN], allowed_channels=["C0OK"])
    assert not limited.admin_in(ADMIN, CHANNEL).allowed
    assert "BOT_ALLOWED_CHANNELS" in limited.admin_in(ADMIN, CHANNEL).reason
    assert limited.admin_in(ADMIN, "C0OK") == ALLOWED
    assert Authorizer(admin_users=[ADMIN]).admin_in(OTHER, CHANNEL) == NOT_ADMIN
    assert Authorizer(admin_groups=[GROUP]).admin_in(MEMBER, CHANNEL) == NOT_ADMIN  # no resolver
    assert slack.calls == []


def test_concurrent_checks_share_one_lookup() -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_failing(group_id: str) -> list[str]:
        calls.append(group_id)
        entered.set()
        release.wait(5)
        raise FakeSlackError()

    authz = Authorizer(admin_groups=[GROUP], resolve_group=slow_failing, clock=Clock())
    results: list[Decision] = []
    threads = [threading.Thread(target=lambda: results.append(authz.admin_in(MEMBER, CHANNEL)))]
    threads[0].start()
    assert entered.wait(5)
    threads.append(threading.Thread(target=lambda: results.append(authz.admin_in(MEMBER, CHANNEL))))
    threads[1].start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [GROUPS_UNKNOWN, GROUPS_UNKNOWN]
    assert calls == [GROUP]


def test_home_is_for_admins_and_members_of_the_allowed_channels() -> None:
    """BOT_ALLOWED_CHANNELS: Connect data on App Home for admins and the channels' members
    (conversations.members, cached like groups); fails closed when Slack cannot say."""
    channels, clock = FakeSlack({"C0OPS": frozenset({MEMBER}), "C0B": frozenset()}), Clock()
    authz = Authorizer(
        admin_users=[ADMIN],
        allowed_channels=["C0OPS", "C0B"],
        resolve_channel=channels,
        group_ttl=60,
        max_stale=300,
        retry_after=10,
        clock=clock,
    )
    assert authz.home(ADMIN) == ALLOWED and channels.calls == []  # admins: no lookup
    assert authz.home(MEMBER) == ALLOWED
    refused = authz.home(OTHER)
    assert not refused.allowed
    assert "<#C0B>, <#C0OPS>" in refused.reason and "ask in" in refused.reason
    assert sorted(channels.calls) == ["C0B", "C0OPS"]  # each asked once: cached
    channels.members["C0OPS"] = DOWN
    clock.now += 61
    assert authz.home(MEMBER) == ALLOWED  # the last answer, while not too old
    clock.now += 300
    assert not authz.home(MEMBER).allowed  # too old: refused until Slack answers
    assert "could not say" in authz.home(MEMBER).reason
    # Without BOT_ALLOWED_CHANNELS Home is everyone's, as before.
    assert Authorizer(admin_users=[ADMIN]).home(OTHER) == ALLOWED
