"""Crash safety of a cache deletion, with a real bot process killed for real (SIGKILL).

At each point of a confirmed deletion the bot is killed and started again; the restarted bot
reconciles the journal with Connect. Each case asserts the final card, the audit record and
how many DELETEs Connect received: never two, and no card left saying "Deleting…".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rebuild_support import start_bot_process
from sqlalchemy import select

from bot.store import AuditEntry, Database, DeletionTarget, PendingAction
from sim.connect_seed import demo_seed
from sim.connect_server import FakeConnect
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

TARGET = ("Python", "3.11.3", "Local")
SLOW = 3.0  # seconds a fault holds a request: the kill comes while it is held


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeConnect, FakeSlack, str]]:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"}, seed=demo_seed(), cache_delete_seconds=0.2
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    try:
        yield connect, slack, f"sqlite:///{tmp_path / 'bot.db'}"
    finally:
        slack.stop()
        connect.stop()


def _real_deletes(connect: FakeConnect) -> int:
    return sum(
        1
        for r in connect.requests
        if r.method == "DELETE" and isinstance(r.json, dict) and r.json.get("dry_run") is False
    )


def _real_delete_arrived(connect: FakeConnect) -> bool:
    """A real DELETE reached Connect (it may still be held there by a fault)."""
    bodies = [body for method, _, body in list(connect.arrivals) if method == "DELETE"]
    return any(json.loads(body).get("dry_run") is False for body in bodies if body)


def _listed(connect: FakeConnect) -> bool:
    return any((c["language"], c["version"], c["image_name"]) == TARGET for c in connect.caches())


def _journal(db: Database) -> list[str]:
    with db.session() as session:
        return [row.state for row in session.scalars(select(DeletionTarget)).all()]


def _pending_state(db: Database) -> str | None:
    with db.session() as session:
        row = session.scalars(select(PendingAction)).first()
        return row.state if row else None


def _audit(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [(row.action, row.outcome) for row in rows]


def _card(slack: FakeSlack) -> Message:
    assert slack.wait_for(
        lambda s: any("Confirm" in m.button_labels() for m in s.messages(OPS_CHANNEL)), 15
    ), "no confirmation card"
    return next(m for m in slack.messages(OPS_CHANNEL) if "Confirm" in m.button_labels())


# Each point: how to hold the bot there (a fault), and what the database shows once it is held.
Arrange = Callable[[FakeConnect, FakeSlack], None]
POINTS: dict[str, tuple[Arrange, Callable[[Database], bool]]] = {
    # Claimed, the card update to "Deleting…" in flight, nothing sent to Connect yet.
    "after the claim": (
        lambda connect, slack: slack.set_latency("chat.update", SLOW),
        lambda db: _pending_state(db) == "confirmed" and _journal(db) == ["planned"],
    ),
    # The DELETE has left and Connect holds it: outcome unknown to the bot.
    "DELETE in flight": (
        lambda connect, slack: connect.inject_faults(latency=SLOW, paths=r"caches/runtime$"),
        lambda db: _journal(db) == ["sent"],
    ),
    # Connect took the DELETE (task id known) and the task is running.
    "task running": (
        lambda connect, slack: setattr(connect, "cache_delete_seconds", SLOW),
        lambda db: _journal(db) == ["running"],
    ),
}


@pytest.mark.parametrize("point", [*POINTS, "DELETE answered, card not updated"])
def test_kill_during_a_deletion_then_restart(
    world: tuple[FakeConnect, FakeSlack, str], tmp_path: Path, point: str
) -> None:
    connect, slack, database_url = world
    db = Database(database_url)
    first = start_bot_process(connect, slack, database_url, tmp_path)
    try:
        with SlackRequests(first.events_url, SIGNING_SECRET, slack) as requests:
            requests.command("caches delete -l python -V 3.11.3")
            card = _card(slack)
            value = card.find_element("cache_delete_confirm")[1]["value"]
            if point in POINTS:
                arrange, held = POINTS[point]
                arrange(connect, slack)
            else:
                # Let "Deleting…" through quickly, then hold the final card update.
                connect.cache_delete_seconds = 1.0

                def held(db: Database) -> bool:
                    return _journal(db) == ["succeeded"]

            calls_before = len(slack.calls_to("chat.update"))
            requests.click(OPS_CHANNEL, card.ts, "cache_delete_confirm", value=value)
            if point == "DELETE answered, card not updated":
                assert slack.wait_for(lambda _: _journal(db) == ["running"], 15, interval=0.01)
                slack.set_latency("chat.update", SLOW)
            assert slack.wait_for(lambda _: held(db), 15, interval=0.01), _journal(db)
            if point == "DELETE in flight":  # journalled `sent` before it leaves: let it land
                assert slack.wait_for(lambda _: _real_delete_arrived(connect), 15)
            if point in ("after the claim", "DELETE answered, card not updated"):
                # The card update is held in flight by the fake: kill the bot while it waits.
                arrived = calls_before + (1 if point == "after the claim" else 2)
                assert slack.wait_for(
                    lambda s: s.arrived("chat.update") >= arrived, 15, interval=0.01
                )
        first.kill()
    finally:
        first.stop()
    # What the killed process had in flight reaches the fakes after their latency; let it land
    # before the next process starts, so nothing stale arrives later.
    if point == "after the claim" or point == "DELETE answered, card not updated":
        assert slack.wait_for(
            lambda s: len(s.calls_to("chat.update")) >= s.arrived("chat.update"), 10, interval=0.05
        )
    if point == "DELETE in flight":
        assert slack.wait_for(lambda _: _real_deletes(connect) == 1, 10, interval=0.05)
    slack.clear_faults()
    connect.clear_faults()
    connect.cache_delete_seconds = 0.2
    if point != "DELETE answered, card not updated":  # there the held update lands anyway
        assert "Deleting" in slack.message(OPS_CHANNEL, card.ts).all_text()

    second = start_bot_process(connect, slack, database_url, tmp_path)
    try:
        # Reconciled: the card says it is finished and what the restart changed.
        assert slack.wait_for(
            lambda s: "restarted" in s.message(OPS_CHANNEL, card.ts).all_text(),
            timeout=45,
            interval=0.1,
        ), slack.message(OPS_CHANNEL, card.ts).all_text()
        final = slack.message(OPS_CHANNEL, card.ts).all_text()
        assert ":white_check_mark: deleted" in final
        assert "deletion finished" in final and "Deleting" not in final
        assert _real_deletes(connect) == 1  # never deleted twice
        assert not _listed(connect)
        # The card is updated before the action's row is marked done: wait for the row too.
        assert slack.wait_for(lambda _: _pending_state(db) == "done", 10, interval=0.05)
        audit = _audit(db)
        assert ("cache_delete", "succeeded") in audit
        assert not any(outcome == "in_progress" for _, outcome in audit)
        assert audit.count(("cache_delete_confirm", "confirmed")) == 1
    finally:
        second.stop()
        db.dispose()


def test_a_stale_confirmation_is_not_acted_on_after_a_restart(
    world: tuple[FakeConnect, FakeSlack, str], tmp_path: Path
) -> None:
    """Killed right after the claim, restarted after the confirmation's TTL: nothing is sent,
    and the card says so."""
    connect, slack, database_url = world
    db = Database(database_url)
    first = start_bot_process(connect, slack, database_url, tmp_path)
    try:
        with SlackRequests(first.events_url, SIGNING_SECRET, slack) as requests:
            requests.command("caches delete -l python -V 3.11.3")
            card = _card(slack)
            value = card.find_element("cache_delete_confirm")[1]["value"]
            slack.set_latency("chat.update", SLOW)
            requests.click(OPS_CHANNEL, card.ts, "cache_delete_confirm", value=value)
            assert slack.wait_for(lambda s: s.arrived("chat.update") >= 1, 15, interval=0.01)
            assert _pending_state(db) == "confirmed" and _journal(db) == ["planned"]
        first.kill()
    finally:
        first.stop()
    assert slack.wait_for(lambda s: len(s.calls_to("chat.update")) >= 1, 10, interval=0.05)
    slack.clear_faults()  # the held update has landed; nothing stale arrives later
    # The confirmation is older than the TTL by the time the bot is back.
    from datetime import timedelta

    with db.session() as session:
        row = session.scalars(select(PendingAction)).one()
        assert row.decided_at is not None
        row.decided_at = row.decided_at - timedelta(hours=1)
    second = start_bot_process(connect, slack, database_url, tmp_path)
    try:
        assert slack.wait_for(
            lambda s: "deletion finished" in s.message(OPS_CHANNEL, card.ts).all_text(), 30
        )
        final = slack.message(OPS_CHANNEL, card.ts).all_text()
        assert "too old" in final and ":x: *failed*" in final
        assert _real_deletes(connect) == 0 and _listed(connect)
        assert "Retry" in " ".join(slack.message(OPS_CHANNEL, card.ts).button_labels())
    finally:
        second.stop()
        db.dispose()
