"""One final summary across processes (issue 17 §3), with the bot as a real process: a 429 on
the summary post and then SIGTERM, and a kill after the post reached Slack but before its ts
was stored. Either way the next process leaves exactly one summary in the thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rebuild_support import rebuild_id_of, rebuild_row, start_bot_process, wait_card, wait_final

from bot.store import Database
from sim.connect_seed import generated_seed
from sim.connect_server import FakeConnect
from sim.process import BotProcess
from sim.slack import FakeSlack, Message
from sim.slack_client import SlackRequests
from sim.stack import (
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    start_workspace,
)

ITEMS = 6
SUMMARY = "connect_bot_summary"


def is_summary(params: dict[str, Any]) -> bool:
    return (params.get("metadata") or {}).get("event_type") == SUMMARY


def summaries(slack: FakeSlack, ts: str) -> list[Message]:
    """Every summary in the thread: by its metadata, and by what a reader sees (broadcasts)."""
    thread = slack.thread(OPS_CHANNEL, ts)
    assert [r.ts for r in thread if r.reply_broadcast] == [
        r.ts for r in thread if (r.metadata or {}).get("event_type") == SUMMARY
    ]
    return [r for r in thread if r.reply_broadcast]


class World:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.connect = FakeConnect(
            api_keys={CONNECT_KEY: "administrator"},
            seed=generated_seed(ITEMS),
            build_seconds=0.1,
        ).start()
        self.slack = FakeSlack(
            bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET
        )
        self.slack.start()
        start_workspace(self.slack)
        self.url = url
        self.db = Database(self.url)
        self.bots: list[BotProcess] = []

    def bot(self) -> BotProcess:
        self.bots.append(start_bot_process(self.connect, self.slack, self.url, self.tmp_path))
        return self.bots[-1]

    def rebuild(self, bot: BotProcess) -> Message:
        with SlackRequests(bot.events_url, SIGNING_SECRET, self.slack) as requests:
            requests.command("rebuild --parallelism 2")
            card = wait_card(self.slack, timeout=15)
            requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        return card

    def reported(self, rebuild_id: int) -> bool:
        row = rebuild_row(self.db, rebuild_id)
        return bool((row.progress or {}).get("final_reported")) and row.driver is None

    def close(self) -> None:
        for bot in self.bots:
            bot.stop()
        self.db.dispose()
        self.slack.stop()
        self.connect.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bot.db'}"
    else:
        url = request.getfixturevalue("postgres_url")  # skips without BOT_TEST_POSTGRES_URL
    w = World(tmp_path, url)
    try:
        yield w
    finally:
        w.close()


def test_a_429_on_the_summary_then_sigterm_leaves_one_summary(world: World) -> None:
    slack = world.slack
    # Retry-After far longer than the shutdown: the old reporter slept it in its thread.
    slack.rate_limit("chat.postMessage", retry_after=60, when=is_summary)
    first = world.bot()
    card = world.rebuild(first)
    rebuild_id = rebuild_id_of(card)
    slack.wait_for_call(
        "chat.postMessage", lambda c: c.status == 429 and is_summary(c.params), timeout=30
    )
    assert first.terminate() == 0
    assert summaries(slack, card.ts) == []
    row = rebuild_row(world.db, rebuild_id)
    assert row.state == "done" and (row.progress or {}).get("summary_claimed")

    world.bot()  # the restart (or any other replica) takes the report over
    wait_final(slack, card.ts, timeout=30)
    assert slack.wait_for(lambda _: world.reported(rebuild_id), timeout=10)
    [summary] = summaries(slack, card.ts)
    assert f"{ITEMS} succeeded, 0 failed" in summary.all_text()
    assert rebuild_row(world.db, rebuild_id).progress["summary_ts"] == summary.ts
    # The claim was found without a ts: the thread was read (with metadata) before posting.
    looks = slack.calls_to("conversations.replies")
    assert looks and all(c.params.get("include_all_metadata") for c in looks)


def test_a_kill_after_the_summary_reached_slack_posts_nothing_more(world: World) -> None:
    slack = world.slack
    arrived = slack.hold("chat.postMessage", 2.0, when=is_summary)
    first = world.bot()
    card = world.rebuild(first)
    rebuild_id = rebuild_id_of(card)
    assert arrived.wait(30), "the summary was never posted"
    first.kill()  # its post is on the way: Slack stores it, its ts is never recorded here
    wait_final(slack, card.ts, timeout=10)
    assert "summary_ts" not in (rebuild_row(world.db, rebuild_id).progress or {})

    world.bot()
    assert slack.wait_for(lambda _: world.reported(rebuild_id), timeout=30)
    [summary] = summaries(slack, card.ts)
    assert rebuild_row(world.db, rebuild_id).progress["summary_ts"] == summary.ts
    assert slack.calls_to("conversations.replies")
    posts = [c for c in slack.calls_to("chat.postMessage") if is_summary(c.params)]
    assert len(posts) == 1
