"""`health --render` (admins only, behind a confirmation card), `health history`, and the latest
result per server on App Home: through the fake Slack and the Connect simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.store import AuditEntry, HealthCheck, HealthItem
from sim.slack import Message
from sim.stack import ADMIN, OPS_CHANNEL, VIEWER, Stack, start_stack
from tests.slack_helpers import pending_rows, stale_click, wait_ephemeral, wait_message
from tests.test_health_state import FINAL, health_cards

RENDER = "/render$"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack() as running:
        yield running


def rendered_guids(stack: Stack) -> set[str]:
    """Published, unlocked rendered documents: what `--render` renders again."""
    modes = {"rmd-static", "quarto-static", "jupyter-static"}
    return {
        item["guid"]
        for item in stack.connect.content()
        if item["app_mode"] in modes and item.get("bundle_id") and not item.get("locked")
    }


def render_card(stack: Stack) -> Message:
    stack.requests.command("health --render")
    return wait_message(stack, lambda m: "Confirm" in m.button_labels())


def checks(stack: Stack) -> list[HealthCheck]:
    with stack.runtime.db.session() as session:
        return list(session.scalars(select(HealthCheck)))


def test_render_is_for_admins_only_and_changes_nothing_for_others(stack: Stack) -> None:
    stack.requests.command("health --render", user_id=VIEWER)
    wait_ephemeral(stack, "Only connect-bot administrators", user=VIEWER)
    assert pending_rows(stack) == [] and checks(stack) == []
    assert stack.connect.count("POST", RENDER) == 0
    with stack.runtime.db.session() as session:
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "health_render")
        ).all()
        assert [(a.actor, a.outcome) for a in denied] == [(VIEWER, "denied")]


def test_confirmed_render_renders_each_document_once_and_counts_it(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    card = render_card(stack)
    expected = rendered_guids(stack)
    assert expected
    assert f"render again* its {len(expected)} rendered document(s)" in card.all_text()
    assert stack.connect.count("POST", RENDER) == 0  # nothing before the Confirm
    assert checks(stack) == []

    stack.requests.click(OPS_CHANNEL, card.ts, "health_render_confirm")
    assert stack.slack.wait_for(
        lambda s: FINAL in s.message(OPS_CHANNEL, card.ts).all_text(), 30
    ), "the confirmation card never showed the result"
    (check,) = checks(stack)
    assert check.render and check.card_ts == card.ts
    assert stack.connect.count("POST", RENDER) == len(expected)
    with stack.runtime.db.session() as session:
        judged = dict(
            session.execute(
                select(HealthItem.guid, HealthItem.verdict).where(HealthItem.guid.in_(expected))
            ).all()
        )
    assert set(judged) == expected
    assert "skipped" not in judged.values()  # rendered, not skipped
    text = stack.slack.message(OPS_CHANNEL, card.ts).all_text()
    assert "they are not rendered again" not in text

    # A second Confirm (a click from a copy of the card) renders nothing more.
    (pending,) = pending_rows(stack)
    stale_click(stack, card.ts, "health_render_confirm", pending.id)
    wait_ephemeral(stack, "already handled", user=ADMIN)
    assert stack.connect.count("POST", RENDER) == len(expected)
    assert len(checks(stack)) == 1


def test_cancelled_render_requests_nothing(stack: Stack) -> None:
    card = render_card(stack)
    stack.requests.click(OPS_CHANNEL, card.ts, "health_render_cancel")
    assert stack.slack.wait_for(
        lambda s: "Cancelled by" in s.message(OPS_CHANNEL, card.ts).all_text(), 10
    )
    assert checks(stack) == []
    assert stack.connect.count("POST", RENDER) == 0
    assert stack.connect.count("GET", "^/content/") == 0


def test_history_lists_checks_newest_first_with_their_counts(stack: Stack) -> None:
    stack.requests.command("health history")
    wait_ephemeral(stack, "No health checks yet", user=ADMIN)

    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    stack.requests.command("health")
    assert stack.slack.wait_for(lambda s: any(FINAL in m.all_text() for m in health_cards(s)), 20)
    stack.requests.command("health --content-type shiny")
    assert stack.slack.wait_for(
        lambda s: sum(FINAL in m.all_text() for m in health_cards(s)) == 2, 20
    )

    stack.requests.command("health history", user_id=VIEWER)
    answer = wait_ephemeral(stack, "Health checks: last 2", user=VIEWER)
    text = answer.all_text()
    assert text.index("#2") < text.index("#1")
    assert "14 checked: 7 start, 2 fail to start, 0 could not be checked, 5 skipped" in text
    assert "shiny" in text

    stack.requests.command("health history -n nowhere")
    wait_ephemeral(stack, "nowhere", user=ADMIN)


def test_home_shows_the_latest_check_per_server(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    stack.requests.command("health")
    assert stack.slack.wait_for(lambda s: any(FINAL in m.all_text() for m in health_cards(s)), 20)

    stack.requests.app_home_opened(ADMIN)

    def shown(s) -> bool:
        home = s.views.home(ADMIN)
        return home is not None and "Latest content health check" in home.all_text()

    assert stack.slack.wait_for(shown, 5)
    home = stack.slack.views.home(ADMIN)
    assert "14 checked: 7 start, 2 fail to start" in home.all_text()
