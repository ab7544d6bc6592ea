"""Several replicas on one PostgreSQL database behave as one bot: each rebuild has one driver and
one reporter (the lease holder), a dead or hung holder is taken over, a driver that lost its
lease is fenced off, SIGTERM hands the work over at once, and flags are never lost.

The replicas run in this process, each with its own Database (connection pool), Coordinator
(instance id, advisory lock), engine, store and Connect API key (to tell their requests apart).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from conftest import needs_postgres
from sqlalchemy import update

from bot.connect import ConnectClient, ContentFilter
from bot.services.rebuilds import RebuildEngine, RebuildStore, leases
from bot.slack.poster import SlackPoster, make_web_client
from bot.slack.rebuild_progress import RebuildReporter
from bot.store import Database, Rebuild, RebuildItem, utcnow
from bot.store.coordination import Coordinator
from sim.connect_seed import generated_seed
from sim.connect_server import FakeConnect
from sim.slack import FakeSlack

pytestmark = needs_postgres

ITEMS = 20
KEYS = ("key-a", "key-b", "key-c")
CHANNEL = "C0OPS"


@dataclass
class Replica:
    name: str
    key: str
    db: Database
    coordinator: Coordinator
    client: ConnectClient
    engine: RebuildEngine
    store: RebuildStore
    reporter: RebuildReporter | None = None
    closed: bool = False

    @property
    def me(self) -> str:
        return self.coordinator.instance_id

    def kill(self) -> None:
        """As kill -9 does: its drivers stop where they are, nothing is released, and its
        advisory lock goes with its connection."""
        for driver in list(self.engine._drivers.values()):
            driver.stop()
        if self.reporter is not None:
            self.reporter.close()
        self.coordinator.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.reporter is not None:
            self.reporter.close()
        self.engine.close()
        self.coordinator.close()
        self.client.close()
        self.db.dispose()


@pytest.fixture
def fake() -> Iterator[FakeConnect]:
    with FakeConnect(
        api_keys={key: "administrator" for key in KEYS},
        seed=generated_seed(ITEMS),
        build_seconds=0.3,
        build_limit=16,
    ) as server:
        yield server


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_default_workspace()  # C0OPS
        yield server


@pytest.fixture
def replicas(postgres_url: str, fake: FakeConnect) -> Iterator[Callable[..., Replica]]:
    made: list[Replica] = []
    migrated = Database(postgres_url)
    migrated.migrate()
    migrated.dispose()

    def make(
        *,
        dead: Callable[[Replica], bool] | None = None,
        slack: FakeSlack | None = None,
        start_reporter: bool = True,
    ) -> Replica:
        name = "abc"[len(made)]
        db = Database(postgres_url)
        coordinator = Coordinator(db).start()
        client = ConnectClient(fake.url, KEYS[len(made)], backoff=0.01)

        def is_alive(holder: str | None) -> bool:
            others = [r for r in made if r.me == holder]
            if dead is not None and others and dead(others[0]):
                return False
            return coordinator.is_alive(holder)

        engine = RebuildEngine(
            db, lambda _server: client, instance_id=coordinator.instance_id, is_alive=is_alive
        )
        replica = Replica(name, KEYS[len(made)], db, coordinator, client, engine, RebuildStore(db))
        if slack is not None:
            poster = SlackPoster(make_web_client(slack.bot_token, slack.api_url))
            reporter = RebuildReporter(replica.store, poster, instance_id=replica.me)
            engine.subscribe(reporter.watch)
            replica.reporter = reporter.start() if start_reporter else reporter
        made.append(replica)
        return replica

    try:
        yield make
    finally:
        for replica in reversed(made):
            replica.close()


# ---- helpers ---------------------------------------------------------------------------------


def wait_until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_rebuild(replica: Replica, parallelism: int = 4) -> int:
    summary = replica.store.plan(
        replica.client,
        server=None,
        requested_by="UREQ",
        channel=CHANNEL,
        description="everything published",
        parallelism=parallelism,
        content_filter=ContentFilter(published=True),
    )
    assert summary.total == ITEMS
    assert replica.store.start(summary.rebuild_id, started_by="U0ADMIN")
    return summary.rebuild_id


def row(replica: Replica, rebuild_id: int) -> Rebuild:
    with replica.db.session() as session:
        found = session.get(Rebuild, rebuild_id)
        assert found is not None
        return found


def item_rows(replica: Replica, rebuild_id: int) -> dict[str, RebuildItem]:
    with replica.db.session() as session:
        rows = session.query(RebuildItem).filter_by(rebuild_id=rebuild_id).all()
        return {r.guid: r for r in rows}


def posts(fake: FakeConnect, key: str, since: float = 0.0) -> list[float]:
    """When build requests with that API key reached Connect."""

    def key_of(headers: dict[str, str]) -> str:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        return value.removeprefix("Key ")

    return [
        r.time
        for r in list(fake.requests)
        if r.method == "POST" and r.path.endswith("/build") and key_of(r.headers) == key
        if r.time >= since
    ]


def finished(replica: Replica, rebuild_id: int) -> bool:
    progress = replica.store.progress(rebuild_id)
    return progress is not None and progress.finished


def assert_built_once(fake: FakeConnect, replica: Replica, rebuild_id: int) -> None:
    """Every item succeeded, and Connect received exactly one build request for each: a
    request in flight when the lease moved is found by its job, never sent again."""
    rows = item_rows(replica, rebuild_id)
    assert Counter(r.state for r in rows.values()) == {"succeeded": ITEMS}
    built = Counter(fake.builds_started())
    assert built == Counter(set(rows)), {g: n for g, n in built.items() if n != 1}
    assert not any(r.resent for r in rows.values())


# ---- takeover --------------------------------------------------------------------------------


def test_a_dead_holder_is_taken_over_at_once(
    replicas: Callable[..., Replica], fake: FakeConnect
) -> None:
    a, b = replicas(), replicas()
    rebuild_id = start_rebuild(a)
    a.engine.launch(rebuild_id)
    b.engine.launch(rebuild_id)  # a was first: b does not drive it
    wait_until(lambda: len(fake.builds_started()) >= 6, "a's first builds")
    b.engine.watch()
    assert not b.engine.driving(rebuild_id) and row(b, rebuild_id).driver == a.me

    a.kill()
    killed = time.time()
    assert not b.coordinator.is_alive(a.me)
    b.engine.watch()  # the timed job, every few seconds
    assert b.engine.driving(rebuild_id) and row(b, rebuild_id).driver == b.me
    wait_until(lambda: finished(b, rebuild_id), "the rebuild to finish on b")
    assert posts(fake, b.key) and min(posts(fake, b.key)) - killed < 2.0
    assert not posts(fake, a.key, since=killed + 0.5)  # a's drivers were gone
    assert row(b, rebuild_id).state == "done"
    assert_built_once(fake, b, rebuild_id)


def test_a_hung_holder_is_taken_over_when_its_heartbeat_is_older_than_the_ttl(
    replicas: Callable[..., Replica], fake: FakeConnect
) -> None:
    a, b = replicas(), replicas()
    rebuild_id = start_rebuild(a)
    a.engine.launch(rebuild_id)
    wait_until(lambda: len(fake.builds_started()) >= 4, "a's first builds")
    for driver in list(a.engine._drivers.values()):
        driver.stop()  # hung: no heartbeats, yet its process (advisory lock) is alive
    wait_until(lambda: not a.engine.driving(rebuild_id), "a's driver to stop")
    b.engine.watch()
    assert not b.engine.driving(rebuild_id)  # alive, heartbeat fresh: still a's

    with a.db.session() as session:
        old = utcnow() - leases.LEASE_TTL - timedelta(seconds=1)
        session.execute(update(Rebuild).where(Rebuild.id == rebuild_id).values(heartbeat_at=old))
    b.engine.watch()
    assert b.engine.driving(rebuild_id)
    wait_until(lambda: finished(b, rebuild_id), "the rebuild to finish on b")
    assert_built_once(fake, b, rebuild_id)


def test_a_driver_that_lost_its_lease_is_fenced_and_stops_at_once(
    replicas: Callable[..., Replica], fake: FakeConnect
) -> None:
    """a goes on running after b took its lease (b sees a dead): a's writes are refused, it
    sends no more build requests, and b builds the rest. A request of a's in flight when the
    lease moved is found among Connect's jobs by b: nothing is built twice."""
    a = replicas()
    b = replicas(dead=lambda other: other is a)
    rebuild_id = start_rebuild(a, parallelism=4)
    a.engine.launch(rebuild_id)
    wait_until(lambda: len(fake.builds_started()) >= 6, "a's first builds")
    a_driver = a.engine._drivers[rebuild_id]

    b.engine.watch()
    assert b.engine.driving(rebuild_id) and row(b, rebuild_id).driver == b.me
    wait_until(a_driver.lost.is_set, "a to find its lease gone", timeout=10)
    wait_until(lambda: not a.engine.driving(rebuild_id), "a's driver to end", timeout=30)
    stopped = time.time()
    wait_until(lambda: finished(b, rebuild_id), "the rebuild to finish on b")

    # None after a stopped; those in flight when the lease moved were not sent again by b.
    assert not posts(fake, a.key, since=stopped)
    assert row(b, rebuild_id).state == "done" and row(b, rebuild_id).driver == b.me
    assert a.engine.renew(rebuild_id, a_driver.lease) is None
    assert_built_once(fake, b, rebuild_id)


def test_sigterm_waits_for_build_requests_in_flight_then_hands_over(
    replicas: Callable[..., Replica], fake: FakeConnect
) -> None:
    """Build requests take 1.5 s to be answered: SIGTERM (close) comes while some are in
    flight. They are answered and recorded before the lease is released; b re-attaches them
    by their task ids and sends none of them again."""
    a, b = replicas(), replicas()
    rebuild_id = start_rebuild(a, parallelism=4)
    fake.inject_faults(latency=1.5, paths=r"/build$")
    a.engine.launch(rebuild_id)
    wait_until(lambda: fake.arrived("POST", r"/build$") >= 4, "requests in flight")
    assert len(fake.builds_started()) < 4  # still held by the latency: in flight
    a.engine.close()
    closed = time.time()
    fake.clear_faults()
    at_close = item_rows(a, rebuild_id)
    assert row(a, rebuild_id).driver is None  # released: nobody waits for a TTL
    assert a.coordinator.is_alive(a.me)  # the process is still alive meanwhile
    # Every request that reached Connect was answered and recorded before the release.
    assert fake.arrived("POST", r"/build$") == len(fake.builds_started())
    running = {g: r.task_id for g, r in at_close.items() if r.state == "building"}
    assert set(running) == set(fake.builds_started()) and all(running.values())

    b.engine.watch()
    assert b.engine.driving(rebuild_id)
    wait_until(lambda: finished(b, rebuild_id), "the rebuild to finish on b")
    assert not posts(fake, a.key, since=closed)
    after = item_rows(b, rebuild_id)
    for guid, task_id in running.items():
        assert after[guid].task_id == task_id  # re-attached by its task, not built again
    assert_built_once(fake, b, rebuild_id)


# ---- reporting -------------------------------------------------------------------------------


def thread_texts(slack: FakeSlack, replica: Replica, rebuild_id: int) -> list[tuple[str, bool]]:
    ts = row(replica, rebuild_id).thread_ts
    if ts is None:
        return []
    return [(m.all_text(), m.reply_broadcast) for m in slack.thread(CHANNEL, ts)]


def count(texts: list[tuple[str, bool]], fragment: str) -> int:
    return sum(fragment in text for text, _ in texts)


def summaries(texts: list[tuple[str, bool]]) -> int:
    return sum(broadcast for _, broadcast in texts)


def test_one_start_reply_and_one_summary_when_the_lease_moves_mid_rebuild(
    replicas: Callable[..., Replica], fake: FakeConnect, slack: FakeSlack
) -> None:
    a, b = replicas(slack=slack), replicas(slack=slack)
    rebuild_id = start_rebuild(a, parallelism=2)
    a.engine.launch(rebuild_id)
    wait_until(lambda: count(thread_texts(slack, a, rebuild_id), "started by") == 1, "start")
    b.engine.watch()
    assert b.reporter is not None and b.reporter.watching() == []  # a reports it

    a.close()  # SIGTERM: reporter, then engine (leases released), then the advisory lock
    b.engine.watch()
    assert b.engine.driving(rebuild_id)
    wait_until(lambda: summaries(thread_texts(slack, b, rebuild_id)) >= 1, "the summary")
    wait_until(lambda: row(b, rebuild_id).driver is None, "b to release the lease")

    texts = thread_texts(slack, b, rebuild_id)
    assert count(texts, "started by") == 1
    assert summaries(texts) == 1 and count(texts, f"{ITEMS} succeeded, 0 failed") == 1
    assert count(texts, "Warm-up finished") == 1
    assert (row(b, rebuild_id).progress or {}).get("final_reported") is True
    b.engine.watch()  # reported and released: nobody takes it again
    assert row(b, rebuild_id).driver is None and b.reporter.watching() == []


def test_a_summary_the_holder_died_before_posting_is_posted_once_elsewhere(
    replicas: Callable[..., Replica], fake: FakeConnect, slack: FakeSlack
) -> None:
    a = replicas(slack=slack, start_reporter=False)  # it dies before its reporter says a word
    b, c = replicas(slack=slack), replicas(slack=slack)
    rebuild_id = start_rebuild(a)
    a.engine.launch(rebuild_id)
    wait_until(lambda: finished(a, rebuild_id), "the rebuild to finish on a")
    b.engine.watch()
    c.engine.watch()
    assert row(a, rebuild_id).driver == a.me  # kept until the summary is posted

    a.kill()
    threads = [threading.Thread(target=r.engine.watch) for r in (b, c)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    holder = row(b, rebuild_id).driver
    assert holder in (b.me, c.me)
    wait_until(lambda: summaries(thread_texts(slack, b, rebuild_id)) >= 1, "the summary")
    wait_until(lambda: row(b, rebuild_id).driver is None, "the lease to be released")
    b.engine.watch()
    c.engine.watch()
    # Only the holder's reporter ever watched it, and it is done with it.
    assert b.reporter is not None and c.reporter is not None
    assert b.reporter.watching() == c.reporter.watching() == []

    texts = thread_texts(slack, b, rebuild_id)
    assert count(texts, "started by") == 1 and summaries(texts) == 1
    assert len(slack.messages(CHANNEL, include_broadcasts=False)) == 1  # one progress card


# ---- flags -----------------------------------------------------------------------------------


def test_flags_set_at_once_by_two_replicas_are_all_kept(
    replicas: Callable[..., Replica],
) -> None:
    a, b = replicas(), replicas()
    rebuild_id = start_rebuild(a)
    barrier = threading.Barrier(3)

    def set_many(replica: Replica, prefix: str) -> None:
        barrier.wait()
        for n in range(40):
            replica.store.set_flags(rebuild_id, **{f"{prefix}{n}": n})

    def cancel() -> None:
        barrier.wait()
        assert b.store.cancel(rebuild_id, by="U0ADMIN").ok

    threads = [
        threading.Thread(target=set_many, args=(a, "a")),
        threading.Thread(target=set_many, args=(b, "b")),
        threading.Thread(target=cancel),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flags = row(a, rebuild_id).progress or {}
    assert {f"a{n}" for n in range(40)} | {f"b{n}" for n in range(40)} <= set(flags)
    assert all(flags[f"a{n}"] == n and flags[f"b{n}"] == n for n in range(40))
    assert flags["cancelled_by"] == "U0ADMIN" and "running_at_cancel" in flags
    assert row(a, rebuild_id).state == "cancelling"
