"""A health check is stored like a rebuild: its card shows progress and then the result, its
verdicts are in the database, and a replica killed mid-check (SIGKILL) is taken over by another
that probes no item twice (counted at the Connect simulator, per content URL)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.store import Database, HealthCheck, HealthItem
from sim.connect_seed import generated_seed
from sim.connect_server import FakeConnect
from sim.process import BotProcess
from sim.slack import FakeSlack, Message
from sim.slack_client import SlackRequests
from sim.stack import (
    ADMIN,
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    Stack,
    start_stack,
    start_workspace,
)
from tests.conftest import needs_postgres
from tests.slack_helpers import dry_runs, real_deletes, stale_click, wait_ephemeral, wait_message

CONTENT_URL = re.compile(r"^/content/([^/]+)/$")
FINAL = " checked: "


def content_requests(connect: FakeConnect) -> Counter[str]:
    """GET {server}/content/{guid}/ per guid: each one may start a process."""
    found: Counter[str] = Counter()
    for record in list(connect.requests):
        match = CONTENT_URL.match(record.path)
        if record.method == "GET" and match:
            found[match.group(1)] += 1
    return found


def health_cards(slack: FakeSlack) -> list[Message]:
    return [m for m in slack.messages(OPS_CHANNEL) if "Content health" in m.all_text()]


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack() as running:
        yield running


def test_the_card_shows_the_result_in_place_and_the_check_is_stored(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    stack.connect.clear_requests()

    stack.requests.command("health")
    assert stack.slack.wait_for(
        lambda s: any(FINAL in m.all_text() for m in health_cards(s)), 20
    ), "no result"

    cards = health_cards(stack.slack)
    assert len(cards) == 1, "one card, updated in place"
    assert "14 checked: 7 start, 2 fail to start, 0 could not be checked, 5 skipped" in (
        cards[0].all_text()
    )
    db = stack.runtime.db
    with db.session() as session:
        check = session.scalars(select(HealthCheck)).one()
        verdicts = dict(
            session.execute(
                select(HealthItem.verdict, func.count())
                .where(HealthItem.check_id == check.id)
                .group_by(HealthItem.verdict)
            ).all()
        )
        assert (check.state, check.card_ts, check.requested_by) == ("done", cards[0].ts, ADMIN)
        assert (check.starts, check.fails, check.unchecked, check.skipped) == (7, 2, 0, 5)
        assert verdicts == {"starts": 7, "fails": 2, "skipped": 5}
    assert stack.slack.wait_for(lambda _: _reported(db, check.id), 10), "lease kept"
    assert set(content_requests(stack.connect).values()) == {1}


def _reported(db: Database, check_id: int) -> bool:
    with db.session() as session:
        check = session.get(HealthCheck, check_id)
        return check is not None and check.reported and check.driver is None


# ---- replicas (real processes on one PostgreSQL database) ----------------------------------

ITEMS = 48


@pytest.fixture
def world(postgres_url: str, tmp_path: Path) -> Iterator[tuple[FakeConnect, FakeSlack, str, Path]]:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"}, seed=generated_seed(ITEMS), start_seconds=0.4
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    try:
        yield connect, slack, postgres_url, tmp_path
    finally:
        slack.stop()
        connect.stop()


def _replica(connect: FakeConnect, slack: FakeSlack, url: str, workdir: Path) -> BotProcess:
    return BotProcess(
        connect_url=connect.url,
        slack_api_url=slack.api_url,
        database_url=url,
        workdir=workdir,
        extra_env={"BOT_HEALTH_CONCURRENCY": "3"},
    )


@needs_postgres
@pytest.mark.parametrize("stop", ["kill", "terminate"])
def test_a_replica_killed_mid_check_is_taken_over_and_no_item_is_probed_twice(
    world: tuple[FakeConnect, FakeSlack, str, Path], stop: str
) -> None:
    """SIGKILL (the lease is judged stale by the holder's lost advisory lock) and SIGTERM (a
    rolling update: the holder gives the lease back)."""
    connect, slack, url, workdir = world
    connect.system_change("openblas", breaks={"Python": ["numpy"]})
    replicas = [_replica(connect, slack, url, workdir) for _ in range(2)]
    db = Database(url)
    try:
        first = replicas[0]
        with SlackRequests(first.events_url, SIGNING_SECRET, slack) as requests:
            requests.command("health")

        def verdicts(_: object = None) -> int:
            with db.session() as session:
                return int(
                    session.scalar(select(func.count()).where(HealthItem.verdict.is_not(None))) or 0
                )

        # Probing under way (the skipped items come first, in one batch, then the probes).
        assert slack.wait_for(lambda _: len(content_requests(connect)) >= 8, 30, interval=0.05)
        with db.session() as session:
            check = session.scalars(select(HealthCheck)).one()
            holder = check.driver
        by_instance = {r.instance_id: r for r in replicas}
        assert holder in by_instance, "no replica holds the check's lease"
        victim = by_instance[holder]
        survivor = next(r for r in replicas if r is not victim)
        probed_before_kill = sum(content_requests(connect).values())
        if stop == "kill":
            victim.kill()
        else:
            assert victim.terminate() == 0

        assert slack.wait_for(
            lambda s: any(FINAL in m.all_text() for m in health_cards(s)), 90, interval=0.2
        ), "the check never ended"
        with db.session() as session:
            check = session.get(HealthCheck, check.id)
            assert check is not None
            assert check.state == "done" and check.total == ITEMS
            tokens = set(session.scalars(select(HealthItem.claimed_by).distinct()))
            probed = session.scalar(select(func.count()).where(HealthItem.attempts > 0))
        assert slack.wait_for(lambda _: _reported(db, check.id), 20), "the survivor kept it"
        assert len(tokens - {None}) >= 2, "the survivor claimed no item"
        assert survivor.proc.poll() is None

        requested = content_requests(connect)
        assert probed_before_kill < sum(requested.values()), "nothing was left to take over"
        assert set(requested.values()) == {1}, {g: n for g, n in requested.items() if n > 1}
        assert len(requested) == probed  # every probed item requested once, none skipped
        cards = health_cards(slack)
        assert len(cards) == 1
        counts = check.starts, check.fails, check.unchecked, check.skipped
        assert (
            f"{ITEMS} checked: {counts[0]} start, {counts[1]} fail to start,"
            f" {counts[2]} could not be checked, {counts[3]} skipped"
        ) in cards[0].all_text()
        assert verdicts() == ITEMS
        resumed = survivor.log_path.read_text().count("judged from its job")
        print(f"probes taken over from the killed replica's jobs: {resumed}")
    finally:
        for replica in replicas:
            replica.stop()
        db.dispose()


# ---- the card's buttons and thread ---------------------------------------------------------


def _final_card(stack: Stack) -> Message:
    stack.requests.command("health")
    assert stack.slack.wait_for(
        lambda s: any(FINAL in m.all_text() for m in health_cards(s)), 30
    ), "no result"
    return next(m for m in health_cards(stack.slack) if FINAL in m.all_text())


def _guids(stack: Stack, titles: set[str]) -> set[str]:
    return {item["guid"] for item in stack.connect.content() if item["title"] in titles}


def test_rebuild_button_plans_exactly_the_failing_items(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    card = _final_card(stack)
    assert card.button_labels() == [
        "Delete the caches of these runtimes…",
        "Rebuild the 2 failing items",
    ]

    stack.requests.click(OPS_CHANNEL, card.ts, "health_rebuild")
    plan = wait_message(stack, lambda m: "Rebuild plan #" in m.text)
    assert plan.text.startswith("Rebuild plan #1: 2 item(s)")
    match = re.search(r"Rebuild plan #(\d+)", plan.text)
    assert match
    planned = {item.guid for item in stack.runtime.services.rebuild_store.items(int(match[1]))}
    assert planned == _guids(stack, {"Sales Dashboard", "Executive KPIs"})
    assert "Start" in " ".join(plan.button_labels())
    assert stack.connect.builds_started() == []


def test_delete_button_dry_runs_the_failing_runtimes_caches(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    card = _final_card(stack)

    stack.requests.click(OPS_CHANNEL, card.ts, "health_delete_caches")
    confirm = wait_message(stack, lambda m: "Confirm" in m.button_labels())
    assert "4.3.0" in confirm.all_text()
    assert [(r["language"], r["version"]) for r in dry_runs(stack)] == [("R", "4.3.0")]
    assert real_deletes(stack) == []


def test_a_stale_or_forged_button_value_changes_nothing(stack: Stack) -> None:
    stack.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    card = _final_card(stack)
    for value in ("999", "not-a-number"):
        stale_click(stack, card.ts, "health_rebuild", value)
    wait_ephemeral(stack, "nothing failing to act on", user=ADMIN)
    assert not [m for m in stack.slack.messages(OPS_CHANNEL) if "Rebuild plan" in m.text]
    assert dry_runs(stack) == []


@pytest.fixture
def big_stack() -> Iterator[Stack]:
    with start_stack(seed=generated_seed(120)) as running:
        yield running


def test_long_lists_go_to_the_cards_thread(big_stack: Stack) -> None:
    stack = big_stack
    for language, version in (("R", "4.3.0"), ("R", "4.2.1"), ("Python", "3.11.3")):
        stack.connect.remove_runtime(language, version)
    card = _final_card(stack)
    with stack.runtime.db.session() as session:
        failing = set(
            session.scalars(select(HealthItem.title).where(HealthItem.verdict == "fails"))
        )
    assert len(failing) > 15
    assert "all of them are in the thread" in card.all_text()
    # Only runtimes Connect no longer offers fail: no cache to delete, only the rebuild.
    assert card.button_labels() == [f"Rebuild the {len(failing)} failing items"]
    assert stack.slack.wait_for(
        lambda s: (
            {t for t in failing if any(t in r.all_text() for r in s.thread(OPS_CHANNEL, card.ts))}
            == failing
        ),
        10,
    ), "not every failing item is in the thread"
    # Items on a removed runtime fail without a request; the others were requested once each.
    with stack.runtime.db.session() as session:
        probed = set(session.scalars(select(HealthItem.guid).where(HealthItem.attempts > 0)))
    assert set(content_requests(stack.connect)) == probed
    assert set(content_requests(stack.connect).values()) == {1}


def test_the_card_shows_progress_at_most_every_few_seconds_then_the_result() -> None:
    with start_stack(connect_options={"start_seconds": 0.6}, bot_health_concurrency=1) as stack:
        stack.requests.command("health")
        assert stack.slack.wait_for(
            lambda s: any("items so far" in m.all_text() for m in health_cards(s)), 20
        ), "no progress shown"
        assert stack.slack.wait_for(
            lambda s: any(FINAL in m.all_text() for m in health_cards(s)), 30
        ), "no result"
        (card,) = health_cards(stack.slack)
        updates = [
            call
            for call in stack.slack.calls_to("chat.update")
            if call.params.get("ts") == card.ts and call.status == 200
        ]
        progress = [c.time for c in updates if "so far" in str(c.params.get("text"))]
        assert progress, "no progress update"
        assert all(b - a >= 2.9 for a, b in itertools.pairwise(progress))
        assert FINAL in str(updates[-1].params.get("text"))
