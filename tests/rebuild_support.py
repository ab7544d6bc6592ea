"""Helpers for the rebuild tests: drive a stack through signed requests, read what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.store import Database, Rebuild, RebuildItem
from sim.connect_server import FakeConnect
from sim.process import BotProcess
from sim.slack import FakeSlack, Message
from sim.stack import ADMIN, OPS_CHANNEL, Stack

PLAN_TITLE = "Rebuild plan #"


def plan_cards(slack: FakeSlack, channel: str = OPS_CHANNEL) -> list[Message]:
    """Plan cards; once started, each card is the rebuild's progress message."""
    return [
        m
        for m in slack.messages(channel, include_broadcasts=False)
        if m.text.startswith((PLAN_TITLE, "Rebuild #"))
    ]


def wait_card(slack: FakeSlack, count: int = 1, timeout: float = 10) -> Message:
    """The `count`-th plan card in the ops channel, once posted."""
    assert slack.wait_for(lambda s: len(plan_cards(s)) >= count, timeout), "no plan card"
    return plan_cards(slack)[count - 1]


def rebuild_id_of(card: Message) -> int:
    return int(card.text.split("#")[1].split(":")[0])


def wait_final(slack: FakeSlack, ts: str, timeout: float = 30) -> Message:
    """The broadcast final summary in the rebuild's thread."""

    def done(s: FakeSlack) -> bool:
        return any(r.reply_broadcast for r in s.thread(OPS_CHANNEL, ts))

    assert slack.wait_for(done, timeout, interval=0.02), "no final summary"
    return next(r for r in slack.thread(OPS_CHANNEL, ts) if r.reply_broadcast)


def plan(stack: Stack, text: str = "rebuild", *, count: int = 1, user: str = ADMIN) -> Message:
    response = stack.requests.command(text, user_id=user)
    assert response.status_code == 200
    return wait_card(stack.slack, count)


def items(db: Database, rebuild_id: int) -> list[RebuildItem]:
    with db.session() as session:
        rows = session.query(RebuildItem).filter_by(rebuild_id=rebuild_id).all()
        return sorted(rows, key=lambda r: (r.wave, r.position))


def rebuild_row(db: Database, rebuild_id: int) -> Rebuild:
    with db.session() as session:
        row = session.get(Rebuild, rebuild_id)
        assert row is not None
        return row


def published(connect: FakeConnect) -> list[dict[str, Any]]:
    return [item for item in connect.content() if item["bundle_id"] is not None]


def ephemeral_texts(slack: FakeSlack, user: str = ADMIN) -> list[str]:
    return [e.all_text() for e in slack.ephemerals(OPS_CHANNEL, user)]


def wait_ephemeral(slack: FakeSlack, fragment: str, user: str = ADMIN, timeout: float = 5) -> str:
    def found(s: FakeSlack) -> bool:
        return any(fragment in text for text in ephemeral_texts(s, user))

    assert slack.wait_for(found, timeout), (
        f"no ephemeral with {fragment!r}: {ephemeral_texts(slack, user)}"
    )
    return next(text for text in ephemeral_texts(slack, user) if fragment in text)


# --- the bot as a real process ----------------------------------------------------------------


def start_bot_process(
    connect: FakeConnect, slack: FakeSlack, database_url: str, workdir: Path
) -> BotProcess:
    return BotProcess(
        connect_url=connect.url,
        slack_api_url=slack.api_url,
        database_url=database_url,
        workdir=workdir,
    )
