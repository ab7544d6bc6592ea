"""The owners of failed rebuild items hear about it by direct message: one DM per owner per
rebuild, with only their own items; owners not in Slack are named in the thread summary.

End to end through `start_stack` (the real runtime, the Connect simulator's
`GET v1/users/{guid}` and the fake Slack's `users.lookupByEmail` / `conversations.open`), plus
the lookup chain (`bot.services.owners.Owners`) on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from rebuild_support import plan, rebuild_id_of, rebuild_row, wait_final
from sqlalchemy import update

from bot.connect import ConnectClient
from bot.services.rebuilds import DirectoryError, ItemView, OwnerLookups, Owners
from bot.slack import rebuild_progress
from bot.slack.rebuild_progress import RebuildReporter, slack_owners
from bot.slack.text import esc
from bot.store import Rebuild
from sim.connect_seed import Seed, make_cache, make_content_item
from sim.connect_server import FakeConnect
from sim.slack import FakeSlack, Message
from sim.stack import ADMIN, OPS_CHANNEL, SECOND_ADMIN, VIEWER, Stack, start_stack

# name -> (Connect guid, Connect username, Slack user id or None when not in Slack)
OWNERS: dict[str, tuple[str, str, str | None]] = {
    "ana": ("a0a0a0a0-0000-4000-8000-00000000000a", "ana", "U0ANA"),
    "ben": ("b0b0b0b0-0000-4000-8000-00000000000b", "ben", "U0BEN"),
    "cyd": ("c0c0c0c0-0000-4000-8000-00000000000c", "cyd<!here>", None),
    "dee": ("d0d0d0d0-0000-4000-8000-00000000000d", "dee", "U0DEE"),  # nothing fails
}
# (title, app_mode, r_version, py_version, owner, fails)
ITEMS: list[tuple[str, str, str | None, str | None, str, bool]] = [
    ("Ana's Sales Dashboard", "shiny", "4.3.0", None, "ana", True),
    ("Ana's Forecast API", "python-fastapi", None, "3.11.3", "ana", True),
    ("Ana's Quarterly Report", "rmd-static", "4.3.0", None, "ana", False),
    ("<!channel> Ben & <Ops>", "python-dash", None, "3.11.3", "ben", True),
    ("Cyd's Churn Model", "python-streamlit", None, "3.11.3", "cyd", True),
    ("Dee's Landing Page", "static", None, None, "dee", False),
    ("Dee's Metrics", "shiny", "4.3.0", None, "dee", False),
]
BEN_ERROR = "pip could not install <dash==9.9> @here"


def email(name: str) -> str:
    return f"{name}@connect.example"


def owner_seed() -> Seed:
    content = [
        make_content_item(
            guid=f"{index:08d}-1111-4000-8000-000000000000",
            title=title,
            app_mode=mode,
            r_version=r_version,
            py_version=py_version,
            bundle_id=str(100 + index),
            owner_guid=OWNERS[owner][0],
            id=str(9000 + index),
        )
        for index, (title, mode, r_version, py_version, owner, _) in enumerate(ITEMS)
    ]
    owners = [
        {"guid": guid, "username": username, "first_name": name.title(), "email": email(name)}
        for name, (guid, username, _) in OWNERS.items()
    ]
    caches = [make_cache("R", "4.3.0"), make_cache("Python", "3.11.3")]
    return Seed(caches=caches, content=content, owners=owners)


def by_title(connect: FakeConnect) -> dict[str, dict[str, Any]]:
    return {item["title"]: item for item in connect.content()}


def owner_stack(**overrides: Any) -> Stack:
    stack = start_stack(seed=owner_seed(), build_seconds=0.05, **overrides)
    slack = stack.slack
    for name, (_, _, user_id) in OWNERS.items():
        if user_id is not None:
            slack.add_user(user_id, name, email=email(name))
    # bot/runtime.py wires the lookups when BOT_NOTIFY_OWNERS is on (the default), and not off.
    assert (stack.runtime.reporter.owners is not None) == stack.runtime.settings.bot_notify_owners
    titles = by_title(stack.connect)
    stack.connect.fail_builds(
        titles[title]["guid"] for title, *_, fails in ITEMS if fails and "Ben" not in title
    )
    stack.connect.fail_builds([titles["<!channel> Ben & <Ops>"]["guid"]], error=BEN_ERROR)
    return stack


def run_rebuild(stack: Stack) -> tuple[int, Message]:
    card = plan(stack, "rebuild")
    stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
    return rebuild_id_of(card), card


def flags(stack: Stack, rebuild_id: int) -> dict[str, Any]:
    return dict(rebuild_row(stack.runtime.db, rebuild_id).progress or {})


def wait_reported(stack: Stack, rebuild_id: int, timeout: float = 20) -> None:
    assert stack.slack.wait_for(
        lambda _: flags(stack, rebuild_id).get("final_reported"), timeout, interval=0.05
    ), flags(stack, rebuild_id)


def dm_text(slack: FakeSlack, user_id: str) -> str:
    return "\n".join(m.all_text() for m in slack.direct_messages(user_id))


def test_each_owner_in_slack_gets_one_dm_with_only_their_items() -> None:
    with owner_stack() as stack:
        connect, slack = stack.connect, stack.slack
        titles = by_title(connect)
        rebuild_id, card = run_rebuild(stack)
        summary = wait_final(slack, card.ts)
        wait_reported(stack, rebuild_id)

        # Exactly one DM per owner found in Slack; nothing for the owner whose items all
        # succeeded, nor for anyone else.
        assert slack.dm_recipients() == {"U0ANA": 1, "U0BEN": 1}
        for nobody in ("U0DEE", ADMIN, SECOND_ADMIN, VIEWER):
            assert slack.direct_messages(nobody) == []
        ana, ben = dm_text(slack, "U0ANA"), dm_text(slack, "U0BEN")

        # Each DM holds its owner's failed items, and only those.
        for title, mode, _, _, owner, fails in ITEMS:
            guid = titles[title]["guid"]
            for name, text in (("ana", ana), ("ben", ben)):
                mine = owner == name and fails
                assert (f"/connect/#/apps/{guid}/logs|Logs>" in text) == mine, (title, name)
                assert (esc(title) in text) == mine, (title, name)
                if mine:
                    assert f"/connect/#/apps/{guid}|Open in Connect>" in text
                    assert f"`{mode}`" in text
        rows = {row.title: row for row in stack.runtime.services.rebuild_store.items(rebuild_id)}
        for title in ("Ana's Sales Dashboard", "Ana's Forecast API"):
            error = rows[title].error
            assert error and esc(error) in ana  # Connect's own error line
        assert esc(BEN_ERROR) in ben and "&lt;!channel&gt; Ben &amp; &lt;Ops&gt;" in ben
        assert "2 items you own" in ana and "an item you own" in ben
        for message in slack.direct_messages("U0ANA") + slack.direct_messages("U0BEN"):
            assert not [m for m in message.mentions() if m.startswith("!")]

        # The summary names who is told by DM (mentions) and the owner not in Slack, with why.
        text = summary.all_text()
        assert "<@U0ANA>" in text and "<@U0BEN>" in text and "<@U0DEE>" not in text
        assert "`cyd&lt;!here&gt;`: no Slack account has their Connect email" in text
        assert "Cyd's Churn Model" in text
        assert not [m for m in summary.mentions() if m.startswith("!")]
        thread = [slack.message(OPS_CHANNEL, card.ts), *slack.thread(OPS_CHANNEL, card.ts)]
        assert all("connect.example" not in m.all_text() for m in thread)  # never an email
        assert thread[-1] is summary  # the DMs come after the summary, nothing more in the thread

        # Looked up once per owner of a failed item: Connect users, then Slack by email.
        assert connect.count("GET", r"^/__api__/v1/users/") == 3
        assert len(slack.calls_to("users.lookupByEmail")) == 3
        assert len(slack.calls_to("conversations.open")) == 2
        recorded = flags(stack, rebuild_id)
        assert set(recorded["owners_notified"]) == {OWNERS["ana"][0], OWNERS["ben"][0]}
        assert recorded["owner_lookups"][OWNERS["cyd"][0]]["reason"] == "no_account"
        assert rebuild_row(stack.runtime.db, rebuild_id).driver is None  # the lease is released


def test_a_restart_between_dms_neither_repeats_nor_loses_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rebuild_progress, "DM_SPACING", 60.0)  # the second DM waits
    with owner_stack() as stack:
        slack, runtime = stack.slack, stack.runtime
        rebuild_id, card = run_rebuild(stack)
        wait_final(slack, card.ts)
        assert slack.wait_for(
            lambda s: (
                len(s.dm_recipients()) == 1 and flags(stack, rebuild_id).get("owners_notified")
            ),
            timeout=10,
        )
        runtime.reporter.close()  # the process "dies" with one DM sent and one to go
        # close() joined the reporter's thread, the one that sends DMs: none is under way.
        assert not any(t.name == "rebuild-reporter" and t.is_alive() for t in threading.enumerate())
        first = dict(slack.dm_recipients())
        assert len(first) == 1 and not flags(stack, rebuild_id).get("final_reported")

        monkeypatch.setattr(rebuild_progress, "DM_SPACING", 0.0)
        successor = RebuildReporter(
            runtime.services.rebuild_store,
            runtime.reporter.poster,
            instance_id=runtime.coordinator.instance_id,
            owners=slack_owners(runtime.services.servers.client, runtime.reporter.poster),
        ).start()
        try:
            successor.watch(rebuild_id)
            wait_reported(stack, rebuild_id)
        finally:
            successor.close()
        assert slack.dm_recipients() == {"U0ANA": 1, "U0BEN": 1}
        broadcasts = [r for r in slack.thread(OPS_CHANNEL, card.ts) if r.reply_broadcast]
        assert len(broadcasts) == 1  # the summary is not posted again
        # The lookups were kept with the rebuild: nobody was asked again.
        assert stack.connect.count("GET", r"^/__api__/v1/users/") == 3
        assert len(slack.calls_to("users.lookupByEmail")) == 3


def test_a_dm_slack_refuses_is_said_in_the_thread() -> None:
    with owner_stack() as stack:
        slack = stack.slack
        slack.fail("conversations.open", "user_disabled")  # the first owner's DM
        rebuild_id, card = run_rebuild(stack)
        wait_final(slack, card.ts)
        wait_reported(stack, rebuild_id)
        told = slack.dm_recipients()
        assert len(told) == 1 and set(told.values()) == {1}
        refused = ({"U0ANA", "U0BEN"} - set(told)).pop()
        last = slack.thread(OPS_CHANNEL, card.ts)[-1]
        assert f"Slack refused the direct message to <@{refused}> (user_disabled)" in (
            last.all_text()
        )
        assert not last.reply_broadcast


def test_bot_notify_owners_false_sends_no_dm() -> None:
    with owner_stack(bot_notify_owners=False) as stack:
        slack = stack.slack
        rebuild_id, card = run_rebuild(stack)
        summary = wait_final(slack, card.ts)
        wait_reported(stack, rebuild_id)
        assert slack.dm_recipients() == {}
        assert slack.calls_to("users.lookupByEmail") == []
        assert slack.calls_to("conversations.open") == []
        assert stack.connect.count("GET", r"^/__api__/v1/users/") == 0
        assert "direct message" not in summary.all_text()
        assert "4 failed" in summary.all_text()


# --- the lookup chain on its own ---------------------------------------------------------------

KEY = "owners-admin-key"


class Directory:
    """A chat directory by email, recording what it was asked."""

    def __init__(self, people: dict[str, str], failing: frozenset[str] = frozenset()) -> None:
        self.people, self.failing = people, failing
        self.asked: list[str] = []

    def user_by_email(self, address: str) -> str | None:
        self.asked.append(address)
        if address in self.failing:
            raise DirectoryError("ratelimited")
        return self.people.get(address)


def item(index: int, owner: str | None) -> ItemView:
    return ItemView(
        id=index,
        guid=f"item-{index}",
        title=f"Item {index}",
        app_mode="shiny",
        runtime="R 4.3.0 (Local)",
        wave=1,
        state="failed",
        error="boom",
        dashboard_url=None,
        task_id=None,
        owner_guid=owner,
    )


@pytest.fixture
def users_connect() -> Iterator[FakeConnect]:
    owners = [
        {"guid": "g-ana", "username": "ana", "email": "ana@connect.example"},
        {"guid": "g-ana2", "username": "ana-admin", "email": "ANA@connect.example"},
        {"guid": "g-nomail", "username": "nomail", "email": ""},
        {"guid": "g-absent", "username": "absent", "email": "absent@connect.example"},
        {"guid": "g-flaky", "username": "flaky", "email": "flaky@connect.example"},
    ]
    fake = FakeConnect(api_keys={KEY: "administrator"}, seed=Seed([], [], owners))
    with fake:
        yield fake.start()


def test_owners_lookup_chain_reasons_and_cache(users_connect: FakeConnect) -> None:
    client = ConnectClient(users_connect.url, KEY, backoff=0.01)
    directory = Directory(
        {"ana@connect.example": "U0ANA"}, failing=frozenset({"flaky@connect.example"})
    )
    owners = Owners(lambda server: client, directory)
    failed = [
        item(1, "g-ana"),
        item(2, "g-nomail"),
        item(3, "g-ana"),
        item(4, "g-gone"),
        item(5, "g-absent"),
        item(6, "g-flaky"),
        item(7, None),
        item(8, "g-ana2"),
    ]
    lookups = OwnerLookups()
    outcome = owners.resolve(None, failed, lookups)

    assert [(o.guid, o.user_id, [i.id for i in o.items]) for o in outcome.found] == [
        ("g-ana", "U0ANA", [1, 3]),
        ("g-ana2", "U0ANA", [8]),  # same person, two Connect accounts
    ]
    assert [(o.guid, o.username, o.reason, o.detail) for o in outcome.missing] == [
        ("g-nomail", "nomail", "no_email", ""),
        ("g-gone", "", "unknown_user", ""),
        ("g-absent", "absent", "no_account", ""),
        ("g-flaky", "flaky", "lookup_error", "ratelimited"),
    ]
    assert [i.id for i in outcome.unowned] == [7]
    # One Connect request per owner; the email shared by two accounts is asked once.
    assert users_connect.count("GET", r"^/__api__/v1/users/") == 6
    assert sorted(directory.asked) == [
        "absent@connect.example",
        "ana@connect.example",
        "flaky@connect.example",
    ]

    # Kept for the rebuild (as JSON in its progress flags): asked again, nobody is asked.
    again = owners.resolve(None, failed, OwnerLookups.from_json(lookups.to_json()))
    assert again == outcome
    assert users_connect.count("GET", r"^/__api__/v1/users/") == 6 and len(directory.asked) == 3

    # A server that is no longer configured: its owners cannot be asked.
    def gone(server: str | None) -> ConnectClient:
        raise LookupError(server)

    lost = Owners(gone, directory).resolve("old", [item(9, "g-ana")])
    assert [(o.reason, o.detail) for o in lost.missing] == [
        ("connect_error", "server no longer configured")
    ]
    client.close()


def test_a_dm_sent_but_not_recorded_is_found_in_the_dm_channel_and_not_sent_again() -> None:
    """A crash between Slack's answer to a DM and its record: the next holder of the lease
    reads the DM channel (the DM carries the rebuild id and owner in its metadata)."""
    with owner_stack() as stack:
        slack, runtime = stack.slack, stack.runtime
        rebuild_id, card = run_rebuild(stack)
        wait_final(slack, card.ts)
        wait_reported(stack, rebuild_id)
        runtime.reporter.close()
        assert slack.dm_recipients() == {"U0ANA": 1, "U0BEN": 1}
        ben = OWNERS["ben"][0]
        [dm] = slack.direct_messages("U0BEN")
        assert dm.metadata == {
            "event_type": "connect_bot_owner_dm",
            "event_payload": {"rebuild_id": rebuild_id, "owner": ben},
        }
        # As the database was at the crash: Ben's DM claimed, not recorded; the lease held.
        told = [g for g in flags(stack, rebuild_id)["owners_notified"] if g != ben]
        progress = {**flags(stack, rebuild_id), "owners_notified": told, "owner_dm_sending": ben}
        progress.pop("final_reported")
        me = runtime.coordinator.instance_id
        with runtime.db.session() as session:
            session.execute(
                update(Rebuild)
                .where(Rebuild.id == rebuild_id)
                .values(progress=progress, driver=me, lease_token="t" * 32)
            )

        successor = RebuildReporter(
            runtime.services.rebuild_store,
            runtime.reporter.poster,
            instance_id=me,
            owners=slack_owners(runtime.services.servers.client, runtime.reporter.poster),
        ).start()
        try:
            successor.watch(rebuild_id)
            wait_reported(stack, rebuild_id)
        finally:
            successor.close()
        assert slack.dm_recipients() == {"U0ANA": 1, "U0BEN": 1}
        looks = slack.calls_to("conversations.history")
        assert [c.params["channel"] for c in looks] == [slack.dm_channel("U0BEN")]
        assert ben in flags(stack, rebuild_id)["owners_notified"]
        assert len([r for r in slack.thread(OPS_CHANNEL, card.ts) if r.reply_broadcast]) == 1
