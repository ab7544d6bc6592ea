"""Package impact end to end over HTTP: `/connect impact --package`, its two buttons, and
`--uses-package` on content search and rebuild, against the Connect simulator."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sim.slack import Message
from sim.stack import ADMIN, OPS_CHANNEL, Stack, start_stack
from tests.slack_helpers import dry_runs, wait_ephemeral, wait_message

SF_TITLES = {"Sales Dashboard", "Executive KPIs", "Legacy Finance Report"}
OLD_SF_TITLE = "Inventory Explorer"  # sf only in an older bundle
NUMPY_TITLES = {"Churn Prediction API", "Forecast Explorer", "Legacy Model Dashboard"}


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack() as running:
        assert running.runtime.services.impact is not None  # bot/runtime.py builds it
        yield running


def guids(stack: Stack, titles: set[str]) -> set[str]:
    return {item["guid"] for item in stack.connect.content() if item["title"] in titles}


def impact_answer(stack: Stack, text: str) -> Message:
    stack.requests.command(text)
    return wait_message(stack, lambda m: "Impact of" in m.all_text())


def plan_items(stack: Stack, card: Message) -> set[str]:
    match = re.search(r"Rebuild plan #(\d+)", card.text)
    assert match, card.text
    items = stack.runtime.services.rebuild_store.items(int(match.group(1)))
    return {item.guid for item in items}


def test_impact_lists_runtimes_items_and_caches_of_active_bundles_only(stack: Stack) -> None:
    message = impact_answer(stack, "impact --package sf")
    text = message.all_text()
    assert "*3* published item(s)" in text and "*2* runtime(s)" in text
    assert "R 4.3.0" in text and "R 3.6.3" in text
    assert "rstudio/content-base:r3.6.3-py3.9.5-jammy" in text  # the off-host image
    for title in SF_TITLES:
        assert title in text
    assert OLD_SF_TITLE not in text  # sf only in an old bundle does not count
    assert "R 4.2.1" not in text
    assert "Delete these caches…" in message.button_labels()
    assert "Rebuild these 3 items" in message.button_labels()
    # One packages query for the command, asking for the name as given.
    calls = [r for r in stack.connect.requests if r.path.endswith("/v1/packages")]
    assert [r.query.get("name") for r in calls] == ["sf"]


def test_python_names_are_normalised_r_names_exact(stack: Stack) -> None:
    message = impact_answer(stack, "impact --package NumPy")
    text = message.all_text()
    assert "*3* published item(s)" in text
    for title in NUMPY_TITLES:
        assert title in text

    stack.requests.command("content search --uses-package num_py")  # num-py is not numpy
    eph = wait_ephemeral(stack, "content using num_py", user=ADMIN)
    assert "*0* content item(s)" in eph.all_text()

    stack.requests.command("content search --uses-package typing-Extensions")
    eph = wait_ephemeral(stack, "typing-Extensions", user=ADMIN)
    assert "*1* content item(s)" in eph.all_text() and "Ops Monitor" in eph.all_text()

    stack.requests.command("content search --uses-package SF")  # R: exact names only
    eph = wait_ephemeral(stack, "content using SF", user=ADMIN)
    assert "*0* content item(s)" in eph.all_text()


def test_content_search_uses_package_is_ored_and_combines_with_filters(stack: Stack) -> None:
    stack.requests.command("content search --uses-package sf --uses-package numpy -t shiny")
    eph = wait_ephemeral(stack, "content using sf or numpy", user=ADMIN)
    text = eph.all_text()
    assert "*2* content item(s)" in text
    assert "Sales Dashboard" in text and "Executive KPIs" in text
    assert "Legacy Finance Report" not in text


def test_delete_button_leads_to_a_dry_run_and_a_confirmation_card(stack: Stack) -> None:
    message = impact_answer(stack, "impact --package sf")
    stack.requests.click(OPS_CHANNEL, message.ts, "impact_delete_caches")
    card = wait_message(stack, lambda m: "Confirm" in m.button_labels())
    assert "4.3.0" in card.all_text() and "3.6.3" in card.all_text()
    runs = dry_runs(stack)
    assert sorted((r["language"], r["version"]) for r in runs) == [("R", "3.6.3"), ("R", "4.3.0")]


def test_rebuild_button_plans_exactly_the_items_using_the_package(stack: Stack) -> None:
    message = impact_answer(stack, "impact --package sf")
    stack.requests.click(OPS_CHANNEL, message.ts, "impact_rebuild")
    card = wait_message(stack, lambda m: "Rebuild plan #" in m.text)
    assert card.text.startswith("Rebuild plan #1: 3 item(s)")
    assert "content using sf" in card.all_text()
    assert plan_items(stack, card) == guids(stack, SF_TITLES)
    assert stack.connect.builds_started() == []


def test_rebuild_uses_package_plans_exactly_the_matching_published_items(stack: Stack) -> None:
    stack.requests.command("rebuild --uses-package sf")
    card = wait_message(stack, lambda m: "Rebuild plan #" in m.text)
    assert card.text.startswith("Rebuild plan #1: 3 item(s)")
    assert plan_items(stack, card) == guids(stack, SF_TITLES)

    stack.requests.command("rebuild --uses-package sf --r-version 4.3.0")
    second = wait_message(stack, lambda m: "Rebuild plan #2" in m.text)
    assert plan_items(stack, second) == guids(stack, {"Sales Dashboard", "Executive KPIs"})


def test_rebuild_with_no_match_plans_nothing(stack: Stack) -> None:
    sales = guids(stack, {"Sales Dashboard"}).pop()
    stack.requests.command(f"rebuild --uses-package numpy --guid {sales}")
    wait_ephemeral(stack, "Nothing to rebuild", user=ADMIN)
    assert [m for m in stack.slack.messages(OPS_CHANNEL) if "Rebuild plan" in m.text] == []


def test_connect_without_packages_api_gets_a_friendly_answer() -> None:
    with start_stack(connect_options={"packages_api": False}) as running:
        running.requests.command("impact --package sf")
        eph = wait_ephemeral(running, "2024.11.0", user=ADMIN)
        assert "no packages API" in eph.all_text() and "2024.08.0" in eph.all_text()
        running.requests.command("rebuild --uses-package sf")
        wait_ephemeral(running, "`--uses-package` need", user=ADMIN)
        assert [m for m in running.slack.messages(OPS_CHANNEL) if "Rebuild plan" in m.text] == []
