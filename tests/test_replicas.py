"""Several replicas on one PostgreSQL database, as real processes killed and stopped for real.

Any Slack request may reach any replica. The tests spread clicks over them, kill the replica
that drives a rebuild (SIGKILL) or stop it as a rolling update does (SIGTERM), and check what
Connect received and what Slack was sent: one DELETE per confirmation, each item built exactly
once (a request in flight at a kill is found among Connect's jobs), one start reply and one
summary.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from rebuild_support import items, rebuild_id_of, rebuild_row, wait_card
from sqlalchemy import select

from bot.store import AuditEntry, Database, Rebuild
from sim.connect_seed import demo_seed, generated_seed
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
    SECOND_ADMIN,
    SIGNING_SECRET,
    start_workspace,
)
from tests.conftest import needs_postgres

ITEMS = 60


class Cluster:
    """Replicas of the bot on one database, with one fake Slack and one Connect simulator."""

    def __init__(self, connect: FakeConnect, slack: FakeSlack, url: str, workdir: Path) -> None:
        self.connect, self.slack, self.url, self.workdir = connect, slack, url, workdir
        self.replicas: list[BotProcess] = []
        self.db = Database(url)

    def start(self, count: int = 1, **env: str) -> list[BotProcess]:
        started = [
            BotProcess(
                connect_url=self.connect.url,
                slack_api_url=self.slack.api_url,
                database_url=self.url,
                workdir=self.workdir,
                extra_env={"BOT_ADMIN_USERS": f"{ADMIN},{SECOND_ADMIN}", **env},
            )
            for _ in range(count)
        ]
        self.replicas += started
        return started

    def alive(self) -> list[BotProcess]:
        return [r for r in self.replicas if r.proc.poll() is None]

    def requests(self, replica: BotProcess) -> SlackRequests:
        return SlackRequests(replica.events_url, SIGNING_SECRET, self.slack)

    def driver_of(self, rebuild_id: int) -> BotProcess | None:
        with self.db.session() as session:
            holder = session.scalar(select(Rebuild.driver).where(Rebuild.id == rebuild_id))
        by_instance = {r.instance_id: r for r in self.alive()}
        return by_instance.get(holder or "")

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self.db.dispose()


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"},
        seed=generated_seed(ITEMS),
        build_seconds=0.4,
        build_limit=6,
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    running = Cluster(connect, slack, postgres_url, tmp_path)
    try:
        yield running
    finally:
        running.stop()
        slack.stop()
        connect.stop()


def _thread(slack: FakeSlack, card: Message) -> list[Message]:
    return slack.thread(OPS_CHANNEL, card.ts)


def _summaries(slack: FakeSlack, card: Message) -> list[Message]:
    return [m for m in _thread(slack, card) if m.reply_broadcast]


def _start_replies(slack: FakeSlack, card: Message) -> list[Message]:
    return [m for m in _thread(slack, card) if "started by" in m.all_text()]


def _plan_and_start(cluster: Cluster, replicas: list[BotProcess]) -> tuple[Message, int]:
    with cluster.requests(replicas[0]) as requests:
        requests.command("rebuild --parallelism 4")
    card = wait_card(cluster.slack, timeout=20)
    with cluster.requests(replicas[-1]) as requests:  # Start on another replica
        requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
    return card, rebuild_id_of(card)


def _succeeded(cluster: Cluster, rebuild_id: int) -> int:
    return sum(row.state == "succeeded" for row in items(cluster.db, rebuild_id))


def _assert_finished_once(cluster: Cluster, card: Message, rebuild_id: int) -> None:
    slack = cluster.slack
    assert slack.wait_for(lambda s: len(_summaries(s, card)) >= 1, 90, interval=0.1)
    assert rebuild_row(cluster.db, rebuild_id).state == "done"
    rows = items(cluster.db, rebuild_id)
    assert Counter(row.state for row in rows) == {"succeeded": len(rows)}
    built = Counter(cluster.connect.builds_started())
    assert built == Counter({row.guid for row in rows}), {g: n for g, n in built.items() if n > 1}
    # Re-sent only what Connect never received: a replica killed between the journal write and
    # the request leaving (a window a loaded machine widens). What Connect did receive, the
    # taker found among its jobs.
    for row in rows:
        if row.resent:
            posts = [
                r
                for r in cluster.connect.requests
                if r.method == "POST" and r.path.endswith(f"/content/{row.guid}/build")
            ]
            assert len(posts) == 1, f"{row.guid} was re-sent although Connect had its request"
    assert len(_summaries(slack, card)) == 1
    assert len(_start_replies(slack, card)) == 1


@needs_postgres
def test_ten_concurrent_confirms_over_three_replicas_delete_once(cluster: Cluster) -> None:
    cluster.connect.stop()
    cluster.connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"}, seed=demo_seed(), cache_delete_seconds=0.3
    ).start()
    replicas = cluster.start(3)
    with cluster.requests(replicas[0]) as requests:
        requests.command("caches delete -l python -V 3.11.3")
    slack = cluster.slack
    assert slack.wait_for(
        lambda s: any("Confirm" in m.button_labels() for m in s.messages(OPS_CHANNEL)), 20
    )
    card = next(m for m in slack.messages(OPS_CHANNEL) if "Confirm" in m.button_labels())
    value = card.find_element("cache_delete_confirm")[1]["value"]
    barrier = threading.Barrier(10)

    def click(n: int) -> None:
        with cluster.requests(replicas[n % 3]) as requests:
            barrier.wait()
            requests.click(
                OPS_CHANNEL,
                card.ts,
                "cache_delete_confirm",
                value=value,
                user_id=(ADMIN, SECOND_ADMIN)[n % 2],
            )

    threads = [threading.Thread(target=click, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert slack.wait_for(
        lambda s: "deletion finished" in s.message(OPS_CHANNEL, card.ts).all_text(), 30
    )
    deletes = [
        r
        for r in cluster.connect.requests
        if r.method == "DELETE" and isinstance(r.json, dict) and r.json.get("dry_run") is False
    ]
    assert len(deletes) == 1
    with cluster.db.session() as session:
        confirms = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "cache_delete_confirm", AuditEntry.outcome == "confirmed"
            )
        ).all()
    assert len(confirms) == 1


@needs_postgres
def test_killing_the_driving_replica_twice_loses_nothing(cluster: Cluster) -> None:
    replicas = cluster.start(3)
    card, rebuild_id = _plan_and_start(cluster, replicas)
    for at in (10, 30):
        assert cluster.slack.wait_for(
            lambda _, at=at: _succeeded(cluster, rebuild_id) >= at, 60, interval=0.05
        )
        driver = cluster.driver_of(rebuild_id)
        assert driver is not None, "no live replica holds the rebuild's lease"
        driver.kill()
        # Another replica takes the lease within 30 s (the lock dies with the process).
        assert cluster.slack.wait_for(
            lambda _: cluster.driver_of(rebuild_id) is not None, 30, interval=0.1
        ), "nobody took over"
    _assert_finished_once(cluster, card, rebuild_id)


@needs_postgres
def test_a_rolling_restart_mid_rebuild_loses_and_doubles_nothing(cluster: Cluster) -> None:
    replicas = cluster.start(2)
    card, rebuild_id = _plan_and_start(cluster, replicas)
    for at in (10, 30):
        assert cluster.slack.wait_for(
            lambda _, at=at: _succeeded(cluster, rebuild_id) >= at, 60, interval=0.05
        )
        cluster.start(1)  # the new pod first, as a Deployment's rolling update does
        old = cluster.driver_of(rebuild_id) or cluster.alive()[0]
        assert old.terminate() == 0  # SIGTERM: leases released, nothing new dispatched
    _assert_finished_once(cluster, card, rebuild_id)


@needs_postgres
def test_sigterm_with_build_requests_in_flight_builds_each_item_once(cluster: Cluster) -> None:
    """Connect answers build requests after 10 s; the replica driving the rebuild gets SIGTERM
    while they are in flight. It waits for their answers and records them before it lets go
    of the lease, so the other replica follows those builds by their task ids."""
    replicas = cluster.start(2)
    connect = cluster.connect
    connect.inject_faults(latency=10.0, paths=r"/build$")
    card, rebuild_id = _plan_and_start(cluster, replicas)
    assert cluster.slack.wait_for(
        lambda _: connect.arrived("POST", r"/build$") >= 4, 20, interval=0.05
    )
    in_flight = connect.arrived("POST", r"/build$")
    assert len(connect.builds_started()) < in_flight  # held by the delay: unanswered
    driver = cluster.driver_of(rebuild_id)
    assert driver is not None
    sent = time.monotonic()
    assert driver.terminate(timeout=60) == 0
    assert time.monotonic() - sent > 5  # it waited for the answers
    connect.clear_faults()  # the rest go at full speed
    # Every request the stopped replica sent was answered and recorded before it let go.
    building = {r.guid: r.task_id for r in items(cluster.db, rebuild_id) if r.task_id}
    assert set(building) == set(connect.builds_started()) and len(building) >= in_flight
    _assert_finished_once(cluster, card, rebuild_id)
    after = {r.guid: r.task_id for r in items(cluster.db, rebuild_id)}
    assert all(after[guid] == task_id for guid, task_id in building.items())


@needs_postgres
def test_a_replica_whose_clock_is_90_s_ahead_takes_no_live_lease(cluster: Cluster) -> None:
    """Its heartbeat checks (every 5 s, during a rebuild of several times that) see the
    driving replica's heartbeats in the database's time, not as 90 s old."""
    cluster.connect.build_seconds = 1.0  # a rebuild of ~15 s: several checks of the skewed one
    plain = cluster.start(1)
    skewed = cluster.start(1, BOT_TEST_CLOCK_OFFSET_SECONDS="90")
    card, rebuild_id = _plan_and_start(cluster, skewed + plain)  # started on the plain one
    assert cluster.slack.wait_for(
        lambda _: cluster.driver_of(rebuild_id) is not None, 20, interval=0.05
    )
    assert cluster.driver_of(rebuild_id) is plain[0]
    _assert_finished_once(cluster, card, rebuild_id)
    log = skewed[0].log_path.read_text()
    assert "took the lease over" not in log and "driving it" not in log


@needs_postgres
def test_a_timed_job_runs_once_with_three_replicas(cluster: Cluster) -> None:
    """The expiry sweep is scheduled in every replica and ticks every second: each expired
    request gets one card update and one audit record. A second request, expired later,
    shows that sweeps went on after the first (an event to wait for, not a sleep)."""
    cluster.connect.stop()
    cluster.connect = FakeConnect(api_keys={CONNECT_KEY: "administrator"}, seed=demo_seed()).start()
    replicas = cluster.start(3, BOT_CONFIRM_TTL_SECONDS="2", BOT_SWEEP_SECONDS="1")
    slack = cluster.slack
    cards: list[Message] = []
    for n, text in enumerate(("caches delete -l python -V 3.11.3", "caches delete -l r -V 4.3.0")):
        with cluster.requests(replicas[n]) as requests:
            requests.command(text)
        seen = {c.ts for c in cards}

        def new_card(s: FakeSlack, seen: set[str] = seen) -> Message | None:
            fresh = [m for m in s.messages(OPS_CHANNEL) if m.ts not in seen]
            return next((m for m in fresh if "Confirm" in m.button_labels()), None)

        assert slack.wait_for(lambda s, f=new_card: f(s) is not None, 20)
        card = new_card(slack)
        assert card is not None
        cards.append(card)
        assert slack.wait_for(
            lambda s, card=card: "expired" in s.message(OPS_CHANNEL, card.ts).all_text(),
            20,
            interval=0.05,
        )
    for card in cards:
        updates = [c for c in slack.calls_to("chat.update") if c.params.get("ts") == card.ts]
        assert len(updates) == 1, f"{len(updates)} updates of one expired card"
    with cluster.db.session() as session:
        expired = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "cache_delete_request", AuditEntry.outcome == "expired"
            )
        ).all()
    assert len(expired) == 2


def test_a_second_process_on_one_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    connect = FakeConnect(api_keys={CONNECT_KEY: "administrator"}, seed=demo_seed()).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    first = BotProcess(
        connect_url=connect.url, slack_api_url=slack.api_url, database_url=url, workdir=tmp_path
    )
    try:
        with pytest.raises(RuntimeError) as refused:
            BotProcess(
                connect_url=connect.url,
                slack_api_url=slack.api_url,
                database_url=url,
                workdir=tmp_path,
                start_timeout=20,
            )
        assert "Another connect-bot process is using the SQLite database" in str(refused.value)
        assert "PostgreSQL" in str(refused.value)
        assert first.proc.poll() is None  # the first one is untouched
    finally:
        first.stop()
        slack.stop()
        connect.stop()
