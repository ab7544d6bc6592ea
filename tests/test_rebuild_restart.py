"""Restart safety with a real process: SIGKILL the bot mid-rebuild, start it again."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from rebuild_support import (
    items,
    plan,
    rebuild_id_of,
    rebuild_row,
    start_bot_process,
    wait_card,
    wait_final,
)

from bot.runtime import build_runtime
from bot.store import Database
from sim.connect_seed import generated_seed
from sim.connect_server import FakeConnect
from sim.slack import FakeSlack
from sim.slack_client import SlackRequests
from sim.stack import (
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    sim_settings,
    start_stack,
    start_workspace,
)

ITEMS = 40


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return request.getfixturevalue("postgres_url")  # skips without BOT_TEST_POSTGRES_URL


def test_sigkill_mid_rebuild_then_restart_finishes_without_building_twice(
    tmp_path: Path, database_url: str
) -> None:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"},
        seed=generated_seed(ITEMS),
        build_seconds=0.4,
        build_limit=4,
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    db = Database(database_url)
    bots: list = []
    try:
        bots.append(start_bot_process(connect, slack, database_url, tmp_path))
        with SlackRequests(bots[0].events_url, SIGNING_SECRET, slack) as requests:
            requests.command("rebuild --parallelism 4")
            card = wait_card(slack, timeout=15)
            requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        rebuild_id = rebuild_id_of(card)

        def mid_rebuild() -> bool:
            """A third built, and builds in flight (on a loaded machine a poll can miss them)."""
            states = [row.state for row in items(db, rebuild_id)]
            return states.count("succeeded") >= 12 and "building" in states

        assert slack.wait_for(lambda _: mid_rebuild(), timeout=20, interval=0.02)
        bots[0].kill()
        killed_at = time.time()
        before = {row.guid: row for row in items(db, rebuild_id)}
        posted_before = Counter(connect.builds_started())
        finished = {g for g, row in before.items() if row.state in ("succeeded", "failed")}
        building = {g: row.task_id for g, row in before.items() if row.state == "building"}
        # A POST answered after the last commit: built on Connect, still `queued` here.
        in_flight = {g for g in posted_before if before[g].state == "queued"}
        assert building, "the kill should catch builds in flight"
        assert all(task_id for task_id in building.values())

        bots.append(start_bot_process(connect, slack, database_url, tmp_path))
        ready_at = time.time()
        # A request journaled but not yet arrived at the kill waits out its timeout (~45 s).
        wait_final(slack, card.ts, timeout=75)

        after = items(db, rebuild_id)
        assert Counter(row.state for row in after) == {"succeeded": ITEMS}
        built = Counter(connect.builds_started())
        assert set(built) == {row.guid for row in after}
        for guid in finished | set(building):
            assert built[guid] == 1, f"{guid} was {before[guid].state} at the kill"
        # A request in flight at the kill is found among Connect's jobs, not sent again.
        assert set(built.values()) == {1}, {g: n for g, n in built.items() if n > 1}
        assert in_flight <= set(built)
        # The running builds were re-attached by task id, not started again.
        for guid, task_id in building.items():
            polls = [
                r
                for r in connect.requests
                if r.path.endswith(f"/tasks/{task_id}") and r.time > ready_at - 1
            ]
            assert polls, f"task {task_id} was not polled after the restart"
            assert next(row for row in after if row.guid == guid).task_id == task_id
        # The restarted process picked the rebuild up at once.
        new_posts = [r.time for r in connect.requests if r.method == "POST" and r.time > killed_at]
        assert new_posts and min(new_posts) - ready_at < 3.0
        # The thread was told each milestone once, across both lives.
        texts = [r.all_text() for r in slack.thread(OPS_CHANNEL, card.ts)]
        assert sum("started by" in t for t in texts) == 1
        assert sum("Warm-up finished" in t for t in texts) == 1
        assert sum(f"{ITEMS} succeeded, 0 failed" in t for t in texts) == 1
        assert f"100% ({ITEMS}/{ITEMS})" in slack.message(OPS_CHANNEL, card.ts).all_text()
    finally:
        for bot in bots:
            bot.stop()
        db.dispose()
        slack.stop()
        connect.stop()


def test_a_second_bot_on_the_same_database_waits_then_takes_over(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two runtimes, one PostgreSQL database: the lease keeps the rebuild to one driver; when
    the first bot shuts down, its running builds stay `building` and the second re-attaches
    them. (On SQLite a second process refuses to start: tests/test_replicas.py.)"""
    stack = start_stack(
        seed=generated_seed(16), build_seconds=0.3, workdir=tmp_path, bot_database_url=postgres_url
    )
    second = None
    try:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 2")
        rebuild_id = rebuild_id_of(card)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        assert slack.wait_for(lambda _: len(connect.builds_started()) >= 6, timeout=10)

        second = build_runtime(
            sim_settings(connect, slack, tmp_path, bot_database_url=postgres_url),
            start_scheduler=False,
        )
        engine = second.services.engine
        engine.tick(rebuild_id)
        assert not engine.driving(rebuild_id)  # the first bot holds the lease

        stack.requests.close()
        stack.runtime.close()  # shutdown, not cancel: builds in flight stay `building`
        at_close = {row.guid: row for row in items(db, rebuild_id)}
        building = {g: row.task_id for g, row in at_close.items() if row.state == "building"}
        assert building
        engine.tick(rebuild_id)
        assert engine.driving(rebuild_id)
        wait_final(slack, card.ts, timeout=20)

        after = {row.guid: row for row in items(db, rebuild_id)}
        assert Counter(row.state for row in after.values()) == {"succeeded": 16}
        assert set(Counter(connect.builds_started()).values()) == {1}
        for guid, task_id in building.items():
            assert after[guid].task_id == task_id  # re-attached, not rebuilt
        # The second bot posted the summary, then released the lease.
        assert slack.wait_for(lambda _: rebuild_row(db, rebuild_id).driver is None, timeout=10)
    finally:
        if second is not None:
            second.close()
        stack.slack.stop()
        stack.connect.stop()
