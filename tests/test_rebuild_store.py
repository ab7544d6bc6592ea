"""RebuildStore + RebuildEngine without Slack: plan, start, launch, and rebuilds on two servers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ADMIN_KEY

from bot.connect import ConnectClient, ContentFilter
from bot.services.audit import AuditStore
from bot.services.rebuilds import Progress, RebuildEngine, RebuildStore
from bot.store import Database
from sim.connect_server import FakeConnect

PUBLISHED = ContentFilter(published=True)
BUILD_POST = r"/content/[^/]+/build$"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/x.db")
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def second_connect() -> Iterator[tuple[FakeConnect, ConnectClient]]:
    """A second Connect server with the same (deterministic) content, so the same GUIDs."""
    with FakeConnect(api_keys={ADMIN_KEY: "administrator"}, build_seconds=0.2) as server:
        client = ConnectClient(server.url, ADMIN_KEY, backoff=0.01)
        try:
            yield server, client
        finally:
            client.close()


def _engine(
    db: Database, clients: Callable[[str | None], ConnectClient], audit: AuditStore | None = None
) -> RebuildEngine:
    me = "test-rebuild-store"
    return RebuildEngine(
        db, clients, instance_id=me, is_alive=lambda holder: holder == me, audit=audit
    )


def _plan(store: RebuildStore, client: ConnectClient, server: str | None) -> int:
    summary = store.plan(
        client,
        server=server,
        requested_by="UREQ",
        channel="COPS",
        description="everything published",
        parallelism=4,
        content_filter=PUBLISHED,
    )
    assert summary.server == server
    return summary.rebuild_id


def _wait_finished(store: RebuildStore, rebuild_id: int, timeout: float = 30.0) -> Progress:
    deadline = time.monotonic() + timeout
    while True:
        progress = store.progress(rebuild_id)
        assert progress is not None
        if progress.finished:
            return progress
        if time.monotonic() > deadline:
            raise AssertionError(f"rebuild {rebuild_id} did not finish: {progress}")
        time.sleep(0.05)


def _build_posts(fake: FakeConnect) -> int:
    return fake.count("POST", BUILD_POST)


def test_plan_start_launch_builds_every_item_on_its_server(
    db: Database, fake_connect: FakeConnect, connect: ConnectClient
) -> None:
    store, audit = RebuildStore(db), AuditStore(db)
    asked: list[str | None] = []

    def clients(name: str | None) -> ConnectClient:
        asked.append(name)
        return connect

    engine = _engine(db, clients, audit)
    try:
        rebuild_id = _plan(store, connect, "main")
        guids = sorted(item.guid for item in store.items(rebuild_id))
        assert len(guids) == store.summary(rebuild_id).total == 14
        assert _build_posts(fake_connect) == 0  # planning builds nothing

        assert store.start(rebuild_id, started_by="UADMIN")
        assert not store.start(rebuild_id, started_by="UADMIN")  # only a plan starts
        engine.launch(rebuild_id)
        progress = _wait_finished(store, rebuild_id)
    finally:
        engine.close()

    assert progress.state == "done"
    assert progress.server == "main"
    assert progress.counts == {"succeeded": 14}
    assert {item.state for item in store.items(rebuild_id)} == {"succeeded"}
    assert sorted(fake_connect.builds_started()) == guids
    assert _build_posts(fake_connect) == 14
    assert asked == ["main"]  # the driver looked the server's client up once, at its start
    record = audit.recent(1)[0]
    assert (record.action, record.outcome, record.server) == ("rebuild", "done", "main")
    assert record.actor == "UADMIN"
    assert store.active_ids() == []


def test_two_servers_build_on_their_own_connect_and_do_not_skip_each_other(
    db: Database,
    fake_connect: FakeConnect,
    connect: ConnectClient,
    second_connect: tuple[FakeConnect, ConnectClient],
) -> None:
    fake_b, connect_b = second_connect
    store = RebuildStore(db)
    engine = _engine(db, {"a": connect, "b": connect_b}.__getitem__)
    try:
        on_a = _plan(store, connect, "a")
        assert store.start(on_a, started_by="UADMIN")  # active on a: its items are taken
        # The same GUIDs on a again are duplicates of the running rebuild ...
        again_on_a = store.summary(_plan(store, connect, "a"))
        assert (again_on_a.total, again_on_a.skipped) == (0, 14)
        assert store.close_plan(again_on_a.rebuild_id, "discarded")
        # ... but on b they are other content: nothing is skipped.
        on_b = _plan(store, connect_b, "b")
        summary_b = store.summary(on_b)
        assert (summary_b.total, summary_b.skipped) == (14, 0)
        assert {item.guid for item in store.items(on_b)} == {
            item.guid for item in store.items(on_a)
        }
        assert store.start(on_b, started_by="UADMIN")
        assert store.summary(on_b).skipped == 0  # start re-checks duplicates on b only

        engine.launch(on_a)
        engine.launch(on_b)
        done_a = _wait_finished(store, on_a)
        done_b = _wait_finished(store, on_b)
    finally:
        engine.close()

    for done, server in ((done_a, "a"), (done_b, "b")):
        assert (done.state, done.server, done.counts) == ("done", server, {"succeeded": 14})
    # Each simulator received only its own rebuild's build POSTs.
    assert sorted(fake_connect.builds_started()) == sorted(i.guid for i in store.items(on_a))
    assert sorted(fake_b.builds_started()) == sorted(i.guid for i in store.items(on_b))
    assert _build_posts(fake_connect) == _build_posts(fake_b) == 14


def test_rebuilds_without_a_server_name_are_duplicates_of_each_other(
    db: Database, connect: ConnectClient
) -> None:
    """Rows from before servers had names (server NULL) still skip each other's items."""
    store = RebuildStore(db)
    first = _plan(store, connect, None)
    assert store.start(first, started_by="UADMIN")
    second = store.summary(_plan(store, connect, None))
    assert (second.total, second.skipped) == (0, 14)
    named = store.summary(_plan(store, connect, "a"))
    assert (named.total, named.skipped) == (14, 0)
