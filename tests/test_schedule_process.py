"""Scheduled rebuilds with the bot as a real process, on the real clock: killed with SIGKILL
shortly before a start and started again; a cancelled schedule; starts found late inside and
outside the grace (their time moved back in the database while the bot is down, as elapsed
time would); and three replicas on PostgreSQL starting one schedule once.

Each scenario waits for one `--in 1m` start (the parser's shortest), so the scenarios share
their processes and assert everything around that one minute.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from rebuild_support import items, plan_cards, rebuild_id_of, rebuild_row, wait_card, wait_final
from sqlalchemy import select, update
from test_replicas import Cluster

from bot.store import AuditEntry, Database, Rebuild, utcnow
from sim.connect_seed import demo_seed, generated_seed
from sim.connect_server import FakeConnect
from sim.process import BotProcess
from sim.slack import FakeSlack, Message
from sim.slack_client import SlackRequests
from sim.stack import (
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SECOND_ADMIN,
    SIGNING_SECRET,
    start_workspace,
)
from tests.conftest import needs_postgres


def _build_times(connect: FakeConnect, guids: set[str]) -> list[float]:
    """When Connect was asked to build any of `guids` (epoch seconds)."""
    pattern = re.compile(r"/content/([0-9a-f-]+)/build$")
    times = []
    for record in connect.requests:
        match = pattern.search(record.path)
        if record.method == "POST" and match and match.group(1) in guids:
            times.append(record.time)
    return times


def _guids(connect: FakeConnect, mode: str) -> set[str]:
    return {i["guid"] for i in connect.content() if i["bundle_id"] and i["app_mode"] == mode}


def _schedule(slack: FakeSlack, requests: SlackRequests, text: str, count: int) -> Message:
    requests.command(text)
    card = wait_card(slack, count, timeout=15)
    requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule")
    assert slack.wait_for(
        lambda s: "Scheduled for" in s.message(OPS_CHANNEL, card.ts).all_text(), 10
    ), "not scheduled"
    return card


def _thread_texts(slack: FakeSlack, card: Message) -> list[str]:
    return [m.all_text() for m in slack.thread(OPS_CHANNEL, card.ts)]


def _summaries(slack: FakeSlack, card: Message) -> list[Message]:
    return [m for m in slack.thread(OPS_CHANNEL, card.ts) if m.reply_broadcast]


def test_kill_before_the_start_restart_cancelled_late_and_missed(tmp_path: Path) -> None:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"}, seed=demo_seed(), build_seconds=0.2
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    db = Database(url)
    bots: list[BotProcess] = []

    def start_bot() -> BotProcess:
        bots.append(
            BotProcess(
                connect_url=connect.url,
                slack_api_url=slack.api_url,
                database_url=url,
                workdir=tmp_path,
                extra_env={"BOT_SWEEP_SECONDS": "5"},
            )
        )
        return bots[-1]

    try:
        first = start_bot()
        with SlackRequests(first.events_url, SIGNING_SECRET, slack) as requests:
            cancelled = _schedule(slack, requests, "rebuild -t python-dash --in 1m", 1)
            due = _schedule(slack, requests, "rebuild -t shiny --in 1m", 2)
            late = _schedule(slack, requests, "rebuild -t rmd-static --in 30m", 3)
            missed = _schedule(slack, requests, "rebuild -t api --in 30m", 4)
            requests.command(f"rebuild cancel {rebuild_id_of(cancelled)}")
        ids = {
            name: rebuild_id_of(card)
            for name, card in [
                ("cancelled", cancelled),
                ("due", due),
                ("late", late),
                ("missed", missed),
            ]
        }
        assert slack.wait_for(lambda _: rebuild_row(db, ids["cancelled"]).state == "cancelled", 10)
        start_at = rebuild_row(db, ids["due"]).scheduled_for
        assert start_at is not None
        assert rebuild_row(db, ids["cancelled"]).scheduled_for < start_at

        # SIGKILL about 30 s before the start.
        wait = (start_at - utcnow()).total_seconds() - 30
        assert wait > 0, "scheduling took too long for this test"
        time.sleep(wait)
        first.kill()
        # While it is down, time passes for two of them: one 10 min late, one 2 h late.
        now = utcnow()
        with db.session() as session:
            for name, back in (("late", timedelta(minutes=10)), ("missed", timedelta(hours=2))):
                session.execute(
                    update(Rebuild).where(Rebuild.id == ids[name]).values(scheduled_for=now - back)
                )

        second = start_bot()
        ready = time.time()
        # At start-up: the one 10 min late runs (inside the default grace of an hour) ...
        wait_final(slack, late.ts, timeout=30)
        assert any("10 min late: the bot was not running" in t for t in _thread_texts(slack, late))
        late_builds = _build_times(connect, _guids(connect, "rmd-static"))
        assert late_builds and min(late_builds) - ready < 10
        # ... the one 2 h late is missed: said in its thread and on its card, audited.
        assert slack.wait_for(lambda _: rebuild_row(db, ids["missed"]).state == "missed", 10)
        assert any("was not started" in t for t in _thread_texts(slack, missed))
        assert "Missed its start" in slack.message(OPS_CHANNEL, missed.ts).all_text()
        with db.session() as session:
            outcomes = {
                (row.target, row.outcome)
                for row in session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "rebuild_start")
                ).all()
            }
        assert (f"rebuild #{ids['missed']}", "missed") in outcomes
        assert (f"rebuild #{ids['late']}", "started") in outcomes

        # The one due in a minute: nothing before its time, built right after, one summary.
        wait_final(slack, due.ts, timeout=90)
        shiny = _build_times(connect, _guids(connect, "shiny"))
        assert shiny and min(shiny) >= start_at.timestamp()
        assert min(shiny) - start_at.timestamp() < 10
        assert Counter(row.state for row in items(db, ids["due"])) == {"succeeded": 2}
        assert len(_summaries(slack, due)) == 1
        assert sum("started by" in t for t in _thread_texts(slack, due)) == 1
        assert f"scheduled-start-{ids['due']}: started" in second.log_path.read_text()

        # The cancelled one's time passed before the start above: nothing of it was built.
        assert _build_times(connect, _guids(connect, "python-dash")) == []
        assert rebuild_row(db, ids["cancelled"]).state == "cancelled"
        assert items(db, ids["cancelled"]) and all(
            row.state == "queued" for row in items(db, ids["cancelled"])
        )
        assert len(plan_cards(slack)) == 4
    finally:
        for bot in bots:
            bot.stop()
        db.dispose()
        slack.stop()
        connect.stop()


@needs_postgres
def test_three_replicas_start_a_schedule_once(postgres_url: str, tmp_path: Path) -> None:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"},
        seed=generated_seed(24),
        build_seconds=0.3,
        build_limit=6,
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    cluster = Cluster(connect, slack, postgres_url, tmp_path)
    try:
        # A sweep every 5 s: the replicas that did not schedule it set their timers from the
        # database; the reminder 45 s ahead, so it falls inside the minute.
        replicas = cluster.start(3, BOT_SWEEP_SECONDS="5", BOT_SCHEDULE_REMINDER_SECONDS="45")
        with cluster.requests(replicas[0]) as requests:
            requests.command("rebuild --in 1m --parallelism 4")
        card = wait_card(slack, timeout=20)
        with cluster.requests(replicas[2]) as requests:
            requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule", user_id=SECOND_ADMIN)
        rebuild_id = rebuild_id_of(card)
        assert slack.wait_for(
            lambda _: rebuild_row(cluster.db, rebuild_id).state == "scheduled", 10
        )
        start_at = rebuild_row(cluster.db, rebuild_id).scheduled_for
        assert start_at is not None

        assert slack.wait_for(lambda s: len(_summaries(s, card)) >= 1, 120, interval=0.2)
        texts = _thread_texts(slack, card)
        assert sum("starts <!date^" in t for t in texts) == 1  # one reminder
        assert sum("Starting scheduled rebuild" in t for t in texts) == 1
        assert sum("started by" in t for t in texts) == 1
        rows = items(cluster.db, rebuild_id)
        assert Counter(row.state for row in rows) == {"succeeded": 24}
        built = Counter(connect.builds_started())
        assert set(built.values()) == {1} and set(built) == {row.guid for row in rows}
        assert min(_build_times(connect, set(built))) >= start_at.timestamp()
        # The summary is posted before the lease is released: once it is, all is said.
        assert slack.wait_for(lambda _: rebuild_row(cluster.db, rebuild_id).driver is None, 10)
        assert len(_summaries(slack, card)) == 1
        # Every replica's timer fired; exactly one started it.
        fired = [
            re.findall(rf"scheduled-start-{rebuild_id}: (\S+)", r.log_path.read_text())
            for r in replicas
        ]
        assert sorted(o for found in fired for o in found) in (
            ["lost", "lost", "started"],
            ["lost", "not-scheduled", "started"],
            ["not-scheduled", "not-scheduled", "started"],
        ), fired
        with cluster.db.session() as session:
            starts = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "rebuild_start",
                    AuditEntry.target == f"rebuild #{rebuild_id}",
                )
            ).all()
        assert [row.outcome for row in starts] == ["started"]
        assert starts[0].actor == SECOND_ADMIN
    finally:
        cluster.stop()
        slack.stop()
        connect.stop()
