"""App Home: a signed `app_home_opened` (HTTP) or an events_api envelope (Socket Mode) makes the
bot views.publish that person's Home within 3 s; Home is republished (throttled, with `hash`)
when a rebuild it shows starts and ends; its buttons expand parts of it; the fake's
views.publish refuses what Slack refuses."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.connect import RuntimeCache
from bot.services.audit import AuditRecord
from bot.services.home import HomeOverview, RepublishThrottle, Section, ServerHome
from bot.services.rebuilds import Progress
from bot.services.schedules import Scheduled
from bot.slack.home_publisher import HomePublisher
from bot.slack.members import channel_members
from bot.slack.views import Actions, HomeActions, home_view
from bot.store import utcnow
from sim.connect_seed import generated_seed
from sim.slack import FakeSlack
from sim.slack.views_api import check_view
from sim.stack import ADMIN, APP_TOKEN, OPS_CHANNEL, SECOND_ADMIN, VIEWER, Stack, start_stack
from tests.rebuild_support import plan, rebuild_id_of, wait_final

DESTRUCTIVE = {
    Actions.CACHE_DELETE_START,
    Actions.CACHE_DELETE_SELECTED,
    Actions.CACHE_DELETE_CONFIRM,
    Actions.CACHE_DELETE_RETRY,
    Actions.REBUILD_START,
    Actions.REBUILD_CANCEL,
    Actions.REBUILD_AFFECTED,
}


# ---------------------------------------------------------------- wiring (until runtime.py)


def wire_home(stack: Stack, *, per_user: float = 0.3, spacing: float = 0.05) -> HomePublisher:
    """The runtime's own publisher (bot/runtime.py wires Home), with a test's throttle: the
    throttle itself is table-tested with a clock; here it only needs to be quick."""
    runtime = stack.runtime
    assert runtime.deps.services.home is not None
    publisher = runtime.home_publisher
    publisher.throttle = RepublishThrottle(per_user=per_user, spacing=spacing)
    return publisher


@contextmanager
def home_stack(**options) -> Iterator[tuple[Stack, HomePublisher]]:
    per_user = options.pop("per_user", 0.3)
    with start_stack(**options) as stack:
        publisher = wire_home(stack, per_user=per_user)
        yield stack, publisher


def publishes(slack: FakeSlack, user: str):
    return slack.views.publish_calls(user, ok=True)


def open_home(stack: Stack, user: str):
    """Open Home over HTTP; the views.publish that follows (asserted within 3 s)."""
    before = len(publishes(stack.slack, user))
    sent = time.time()
    response = stack.requests.app_home_opened(user)
    assert response.status_code == 200
    assert stack.slack.wait_for(lambda s: len(publishes(s, user)) > before, timeout=3)
    call = publishes(stack.slack, user)[before]
    assert call.time - sent < 3.0
    return call


def labels(stack: Stack, user: str) -> list[str]:
    home = stack.slack.views.home(user)
    assert home is not None
    return home.button_labels()


def assert_home_shape(view: dict) -> None:
    assert view["type"] == "home"
    assert 1 <= len(view["blocks"]) <= 100
    check_view(view)  # the fake's checks: Slack's block limits
    for block in view["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            assert element.get("style") != "danger"
            assert element.get("action_id") not in DESTRUCTIVE


# ---------------------------------------------------------------- opening Home (HTTP)


def test_home_opened_publishes_caches_for_everyone_and_the_audit_for_admins_only() -> None:
    with home_stack() as (stack, _publisher):
        slack = stack.slack
        audit = stack.runtime.services.audit
        audit.record(
            actor=ADMIN, action="cache_delete", outcome="succeeded", target="Python 9.9.9 (Local)"
        )
        caches = stack.connect.caches()

        admin_call = open_home(stack, ADMIN)
        assert "hash" not in admin_call.params  # nothing published before: no hash to guard
        assert_home_shape(admin_call.params["view"])
        admin = slack.views.home(ADMIN)
        text = admin.all_text()
        assert f"Runtime caches: {len(caches)}" in text
        first = sorted(caches, key=lambda c: (c["language"], c["version"]))[0]
        assert first["version"] in text
        assert "Audit log" in text and "Python 9.9.9 (Local)" in text
        assert "No rebuild is running." in text
        assert labels(stack, ADMIN) == ["List caches", "Rebuild history", "Plan a rebuild"]

        viewer_call = open_home(stack, VIEWER)
        assert_home_shape(viewer_call.params["view"])
        text = slack.views.home(VIEWER).all_text()
        assert f"Runtime caches: {len(caches)}" in text
        assert "Audit log" not in text and "Python 9.9.9" not in text and "cache_delete" not in text
        assert labels(stack, VIEWER) == ["List caches", "Rebuild history"]

        # Opening again shows the current state, guarded by the hash Slack sent in the event.
        shown_hash = admin.hash
        audit.record(actor=ADMIN, action="rebuild", outcome="succeeded", target="rebuild #7")
        again = open_home(stack, ADMIN)
        assert again.params["hash"] == shown_hash
        assert "rebuild #7" in slack.views.home(ADMIN).all_text()

        # The Messages tab fires the event too: no publish. Nor for a forged request.
        before = len(slack.views.publish_calls())
        assert stack.requests.app_home_opened(ADMIN, tab="messages").status_code == 200
        payload = slack.views.home_opened_event(VIEWER)
        forged = stack.requests.raw(
            json.dumps(payload),
            {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
        )
        assert forged.status_code == 401
        # The marker: a later Home opened by someone else is published; by then, and once the
        # bot's background work has ended, the two events above would have published too.
        open_home(stack, SECOND_ADMIN)
        assert stack.runtime.deps.drain(10) == 0
        published = [c.params["user_id"] for c in slack.views.publish_calls()[before:]]
        assert published == [SECOND_ADMIN]


def test_allowed_channels_limit_commands_not_who_is_an_admin_on_home() -> None:
    with home_stack(bot_allowed_channels=[OPS_CHANNEL]) as (stack, _publisher):
        open_home(stack, ADMIN)  # Home is the app's DM, not one of the allowed channels
        assert "Plan a rebuild" in labels(stack, ADMIN)
        open_home(stack, VIEWER)
        assert "Audit log" not in stack.slack.views.home(VIEWER).all_text()


OUTSIDER = "U0OUTSIDER"
MEMBER = "U0MEMBER"


def forged_home_click(stack: Stack, user: str, template_user: str, action_id: str):
    """`user` clicks `action_id` although their Home has no such button: the payload of
    `template_user`'s Home with the user swapped, correctly signed (anyone can sign their own
    requests to a compromised or replayed endpoint, so the bot must check who clicks)."""
    payload = stack.slack.views.home_click_payload(template_user, action_id)
    payload["user"] = {**payload["user"], "id": user, "username": "olga", "name": "olga"}
    payload["team"] = {**payload.get("team", {}), "id": stack.requests.team_id}
    body = urlencode({"payload": json.dumps(payload)})
    return stack.requests.raw(body, stack.requests.signed_headers(body))


@pytest.mark.timeout(60)
def test_home_for_an_outsider_shows_where_to_ask_and_no_connect_data() -> None:
    with home_stack(
        seed=generated_seed(4), build_seconds=0.05, bot_allowed_channels=[OPS_CHANNEL]
    ) as (stack, _publisher):
        slack, connect = stack.slack, stack.connect
        # A rebuild that Home lists (its title), then the channel's members.
        card = plan(stack, "rebuild --parallelism 4")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts)
        rebuild_id = rebuild_id_of(card)
        progress = stack.runtime.services.rebuild_store.progress(rebuild_id)
        assert progress is not None and progress.description
        slack.add_user(OUTSIDER, "olga", real_name="Olga Outsider")
        slack.add_user(MEMBER, "mia", real_name="Mia Member")
        slack.channel(OPS_CHANNEL).members.update({MEMBER, "U0SOMEONE"})
        caches = stack.connect.caches()
        assert caches
        versions = {c["version"] for c in caches}

        def connect_data(text: str) -> list[str]:
            found = [connect.url] if connect.url in text else []
            found += sorted(v for v in versions if v in text)
            found += [w for w in ("Runtime caches", f"Rebuild #{rebuild_id}") if w in text]
            return found + ([progress.description] if progress.description in text else [])

        # A member of the allowed channel sees the caches, the server, the rebuild.
        open_home(stack, MEMBER)
        member = slack.views.home(MEMBER)
        assert len(connect_data(member.all_text())) >= 4, member.all_text()
        assert member.button_labels() == ["List caches", "Rebuild history"]
        # An admin, though in none of the channels, sees them too.
        open_home(stack, ADMIN)
        assert connect.url in slack.views.home(ADMIN).all_text()
        assert "List caches" in labels(stack, ADMIN)

        # The outsider: one line saying where to ask, nothing of Connect, no button.
        call = open_home(stack, OUTSIDER)
        assert_home_shape(call.params["view"])
        outsider = slack.views.home(OUTSIDER)
        text = outsider.all_text()
        assert f"<#{OPS_CHANNEL}>" in json.dumps(call.params["view"])
        assert "ask in" in text
        assert connect_data(text) == []
        assert outsider.button_labels() == []
        assert "home_caches" not in json.dumps(call.params["view"])
        assert "home_history" not in json.dumps(call.params["view"])

        # Its buttons' actions refuse the outsider too: a forged List-caches click expands
        # nothing, and their Home, shown again, still says only where to ask.
        before = len(publishes(slack, OUTSIDER))
        for action in (HomeActions.CACHES, HomeActions.HISTORY):
            assert forged_home_click(stack, OUTSIDER, MEMBER, action).status_code == 200
        assert slack.wait_for(lambda s: len(publishes(s, OUTSIDER)) >= before + 2, timeout=5)
        for shown in publishes(slack, OUTSIDER)[before:]:
            view = json.dumps(shown.params["view"])
            assert connect_data(view) == [] and "All runtime caches" not in view
            assert "Rebuild history" not in view and "home_caches" not in view
        viewer = stack.runtime.services.home.viewer(OUTSIDER)
        assert viewer is not None and viewer.section is None
        # The same click from the member does expand the caches.
        stack.requests.home_click(MEMBER, HomeActions.CACHES)
        home = slack.views.wait_home(MEMBER, lambda v: "Hide caches" in v.button_labels())
        assert f"All runtime caches ({len(caches)})" in home.all_text()

        # Membership is asked once and cached (conversations.members, not per open).
        assert len(slack.calls_to("conversations.members")) == 1


def test_channel_members_are_read_page_by_page(fake: FakeSlack) -> None:
    fake.scopes += ["channels:read", "groups:read"]
    people = [f"U0P{i:03d}" for i in range(7)]
    fake.add_channel("C0BIG", "big", members=people)
    client = WebClient(token=fake.bot_token, base_url=fake.api_url)
    assert channel_members(client, "C0BIG", page_size=3) == [*people, fake.bot_user_id]
    assert len(fake.calls_to("conversations.members")) == 3
    fake.add_channel("C0SECRET", "secret", is_private=True, bot_member=False, members=people)
    with pytest.raises(SlackApiError) as error:
        channel_members(client, "C0SECRET")
    assert error.value.response["error"] == "channel_not_found"


def test_a_slow_connect_does_not_delay_home_and_its_late_answer_is_shown() -> None:
    with home_stack() as (stack, _publisher):
        caches = stack.connect.caches()
        stack.connect.inject_faults(latency=2.5, paths="caches")
        open_home(stack, VIEWER)  # within 3 s all the same
        assert "Asking Connect for its runtime caches" in stack.slack.views.home(VIEWER).all_text()
        stack.slack.views.wait_home(
            VIEWER, lambda v: f"Runtime caches: {len(caches)}" in v.all_text(), timeout=6
        )


def test_url_verification_is_answered_for_the_event_request_url() -> None:
    with home_stack() as (stack, _publisher):
        answer = stack.requests.event(
            {
                "token": "t",
                "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                "type": "url_verification",
            }
        )
        assert answer.status_code == 200
        assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in answer.text


# ---------------------------------------------------------------- republishing


@pytest.mark.timeout(90)
def test_home_is_republished_when_a_rebuild_starts_and_when_it_ends() -> None:
    with home_stack(build_seconds=0.6, per_user=0.4) as (stack, publisher):
        slack = stack.slack
        open_home(stack, ADMIN)
        open_home(stack, VIEWER)
        card = plan(stack, "rebuild --parallelism 2")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        rebuild_id = rebuild_id_of(card)

        def running(view) -> bool:
            text = view.all_text()
            return f"Rebuild #{rebuild_id}" in text and "running" in text and "%" in text

        for user in (ADMIN, VIEWER):  # every recent viewer, not only who started it
            home = slack.views.wait_home(user, running, timeout=10)
            text = home.all_text()
            assert "succeeded" in text and "queued" in text and "Elapsed" in text
            thread = f"/archives/{OPS_CHANNEL}/p{card.ts.replace('.', '')}"
            assert thread in text  # a link to the rebuild's thread
            assert_home_shape(home.view)

        wait_final(slack, card.ts, timeout=40)

        def finished(view) -> bool:
            text = view.all_text()
            return (
                f"Rebuild #{rebuild_id}" in text
                and "finished at" in text
                and ("No rebuild is running." in text)
            )

        for user in (ADMIN, VIEWER):
            slack.views.wait_home(user, finished, timeout=10)
        assert publisher.published >= 4

        # Throttled: never two publishes for one person closer than per_user (opens and
        # republishes count alike), and each republish names the hash of the one before.
        for user in (ADMIN, VIEWER):
            calls = publishes(slack, user)
            gaps = [b.time - a.time for a, b in itertools.pairwise(calls)]
            assert min(gaps) >= 0.35, gaps
            for before, after in itertools.pairwise(calls):
                assert after.params["hash"] == before.response["view"]["hash"]
        assert not slack.views.publish_calls(ok=False)


def test_republish_is_only_for_who_opened_home_in_the_last_hour() -> None:
    with home_stack() as (stack, publisher):
        open_home(stack, ADMIN)
        open_home(stack, VIEWER)
        home = stack.runtime.deps.services.home
        with stack.runtime.db.session() as session:  # VIEWER opened it two hours ago
            from bot.store.models import HomeOpen

            session.get(HomeOpen, VIEWER).opened_at = utcnow() - timedelta(hours=2)
        assert [v.user for v in home.recent_viewers()] == [ADMIN]
        before_viewer = len(publishes(stack.slack, VIEWER))
        before_admin = len(publishes(stack.slack, ADMIN))
        started, cpu = time.monotonic(), time.thread_time()
        for rebuild_id in range(50):  # a burst of engine notifications: returns at once
            publisher.rebuild_changed(rebuild_id)
        # Next to no work in the caller's thread: its CPU time, which other processes on a
        # loaded machine do not inflate; the wall-clock bound is looser for that reason.
        assert time.thread_time() - cpu < 0.05
        assert time.monotonic() - started < 0.25
        assert stack.slack.wait_for(
            lambda s: len(publishes(s, ADMIN)) == before_admin + 1, timeout=5
        )
        # Coalesced: once the publisher has nothing left to do, one republish for the burst.
        assert publisher.wait_idle(timeout=5)
        assert len(publishes(stack.slack, ADMIN)) == before_admin + 1
        assert len(publishes(stack.slack, VIEWER)) == before_viewer


# ---------------------------------------------------------------- buttons


def test_home_buttons_expand_parts_of_home_and_nothing_destructive() -> None:
    with home_stack() as (stack, _publisher):
        slack = stack.slack
        open_home(stack, ADMIN)
        caches = stack.connect.caches()

        assert stack.requests.home_click(ADMIN, HomeActions.CACHES).status_code == 200
        home = slack.views.wait_home(ADMIN, lambda v: "Hide caches" in v.button_labels())
        text = home.all_text()
        assert f"All runtime caches ({len(caches)})" in text
        assert all(c["version"] in text for c in caches)
        assert "`/connect caches list`" in text  # deleting happens in a channel
        assert_home_shape(home.view)

        stack.requests.home_click(ADMIN, HomeActions.HISTORY)
        home = slack.views.wait_home(ADMIN, lambda v: "Hide history" in v.button_labels())
        assert "Rebuild history" in home.all_text() and "All runtime caches" not in home.all_text()

        stack.requests.home_click(ADMIN, HomeActions.PLAN)
        home = slack.views.wait_home(ADMIN, lambda v: "Hide the plan help" in v.button_labels())
        assert "`/connect rebuild`" in home.all_text() and "*Start*" in home.all_text()

        stack.requests.home_click(ADMIN, HomeActions.PLAN)  # again: collapses
        home = slack.views.wait_home(ADMIN, lambda v: "Plan a rebuild" in v.button_labels())
        assert "`/connect rebuild`" not in home.all_text()

        # A non-admin has no Plan button; a forged click on it shows no plan help.
        open_home(stack, VIEWER)
        assert "Plan a rebuild" not in labels(stack, VIEWER)
        stack.runtime.deps.services.home.toggle(VIEWER, Section("plan", "default"))
        stack.requests.home_click(VIEWER, HomeActions.CACHES)
        home = slack.views.wait_home(VIEWER, lambda v: "Hide caches" in v.button_labels())
        assert "Plan a rebuild" not in home.all_text()
        assert not stack.connect.builds_started()
        assert not [r for r in stack.connect.requests if r.method == "DELETE"]


def test_a_newer_view_from_elsewhere_is_not_lost_on_hash_conflict() -> None:
    with home_stack() as (stack, _publisher):
        slack = stack.slack
        open_home(stack, ADMIN)
        # Someone else (another replica, an old version) publishes: our recorded hash is stale.
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        current = slack.views.home(ADMIN)
        client.views_publish(
            user_id=ADMIN, view={"type": "home", "blocks": current.blocks}, hash=current.hash
        )
        stack.requests.home_click(ADMIN, HomeActions.CACHES)
        slack.views.wait_home(ADMIN, lambda v: "Hide caches" in v.button_labels())
        calls = slack.views.publish_calls(ADMIN)
        assert calls[-2].error == "hash_conflict"
        assert calls[-1].ok and "hash" not in calls[-1].params  # ours is the newest render


# ---------------------------------------------------------------- Socket Mode


@pytest.mark.timeout(60)
def test_home_over_socket_mode() -> None:
    with home_stack(slack_app_token=APP_TOKEN) as (stack, _publisher):
        slack = stack.slack
        assert slack.socket_connected(timeout=10)
        sent = time.time()
        envelope = slack.socket_app_home_opened(VIEWER)
        assert slack.socket_wait_ack(envelope, timeout=3)["envelope_id"] == envelope
        home = slack.views.wait_home(VIEWER, timeout=3)
        assert publishes(slack, VIEWER)[0].time - sent < 3.0
        assert "Runtime caches" in home.all_text() and "Audit log" not in home.all_text()
        click = slack.socket_home_click(VIEWER, HomeActions.HISTORY)
        assert slack.socket_wait_ack(click, timeout=3)["envelope_id"] == click
        slack.views.wait_home(VIEWER, lambda v: "Hide history" in v.button_labels())


# ---------------------------------------------------------------- the view (pure)


def _progress(rebuild_id: int, server: str, state: str = "running") -> Progress:
    now = utcnow()
    return Progress(
        rebuild_id=rebuild_id,
        state=state,
        description="<!channel> every published item " * 5,
        requested_by=ADMIN,
        started_by=ADMIN,
        channel=OPS_CHANNEL,
        thread_ts="1700000000.000100",
        parallelism=3,
        total=400,
        skipped=0,
        counts={"succeeded": 120, "failed": 3, "building": 3, "queued": 274},
        warmup_total=4,
        warmup_open=0,
        created_at=now - timedelta(minutes=9),
        started_at=now - timedelta(minutes=8),
        finished_at=None if state == "running" else now - timedelta(minutes=1),
        server=server,
    )


def _scheduled(rebuild_id: int, server: str) -> Scheduled:
    return Scheduled(
        rebuild_id=rebuild_id,
        state="scheduled",
        description="<!channel> overnight " * 10,
        server=server,
        channel=OPS_CHANNEL,
        thread_ts="1700000000.000200",
        requested_by=ADMIN,
        scheduled_by=ADMIN,
        scheduled_for=utcnow() + timedelta(hours=rebuild_id % 48),
        reminded=False,
        total=923,
        criteria=None,
        claimed_by=None,
    )


def _overview(admin: bool, servers: int = 20, section: Section | None = None) -> HomeOverview:
    caches = tuple(RuntimeCache("Python", f"3.{n}.{n % 7}", f"img-{n}") for n in range(300))
    homes = tuple(
        ServerHome(
            name=f"server-{i}",
            url=f"https://connect-{i}.example.com",
            default=i == 0,
            caches=caches,
            caches_as_of=utcnow(),
            caches_error=None,
            caches_pending=False,
            active=tuple(_progress(100 * i + n, f"server-{i}") for n in range(8)),
            finished=tuple(_progress(100 * i + 50 + n, f"server-{i}", "done") for n in range(4)),
            history=tuple(_progress(100 * i + 80 + n, f"server-{i}", "done") for n in range(10)),
            scheduled=tuple(_scheduled(100 * i + 90 + n, f"server-{i}") for n in range(8)),
        )
        for i in range(servers)
    )
    audit = tuple(
        AuditRecord(utcnow(), ADMIN, "cache_delete", "succeeded", "<!here> x" * 30, None, None, "")
        for _ in range(5)
    )
    return HomeOverview(
        user=ADMIN if admin else VIEWER,
        admin=admin,
        servers=homes,
        audit=audit if admin else (),
        section=section,
        several=servers > 1,
    )


@pytest.mark.parametrize("kind", [None, "caches", "history", "plan"])
@pytest.mark.parametrize("admin", [True, False])
def test_home_view_stays_within_slack_limits_at_any_size(kind, admin) -> None:
    section = Section(kind, "server-0") if kind else None
    view = home_view(
        _overview(admin, section=section),
        lambda channel, ts: f"https://fake.slack.com/archives/{channel}/p{ts}",
        now=utcnow(),
    ).to_dict()
    assert_home_shape(view)
    text = str(view)
    assert "<!channel>" not in text and "<!here>" not in text  # Connect text is escaped
    assert ("Audit log" in text) is admin
    assert ("Plan a rebuild" in text) is admin
    assert "Not shown: server-15" in text  # 20 servers: those that don't fit are named


# ---------------------------------------------------------------- the throttle (pure)


def test_throttle_coalesces_and_spaces_publishes() -> None:
    throttle = RepublishThrottle(per_user=5.0, spacing=1.0)
    assert throttle.wait(0.0) is None and throttle.take(0.0) is None
    for _ in range(10):  # many changes: one publish
        throttle.request("U1", 0.0)
    throttle.request("U2", 0.0, published_ago=2.0)  # published 2 s ago (an open, elsewhere)
    assert throttle.take(0.0) == "U1"
    throttle.published("U1", 0.0)
    assert throttle.take(0.5) is None  # spacing
    assert throttle.wait(0.5) == pytest.approx(2.5)  # U2 is due at 3.0
    assert throttle.take(3.0) == "U2"
    throttle.published("U2", 3.0)
    throttle.request("U1", 3.5)  # U1 was published at 0: due at 5
    assert throttle.take(4.9) is None
    assert throttle.take(5.0) == "U1"
    throttle.published("U1", 5.0)
    assert throttle.pending == 0 and throttle.wait(6.0) is None


# ---------------------------------------------------------------- the fake's views.publish


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user("U1", "ada")
        yield slack


def test_fake_views_publish_follows_slack(fake: FakeSlack) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.api_url)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    many = [dict(section, block_id=f"b{i}") for i in range(100)]  # a message may have 50
    first = client.views_publish(user_id="U1", view={"type": "home", "blocks": many})
    view = first["view"]
    assert view["type"] == "home" and view["id"].startswith("V") and view["hash"]
    assert fake.views.home("U1").hash == view["hash"]

    def error(**kwargs) -> str:
        with pytest.raises(SlackApiError) as raised:
            client.views_publish(**kwargs)
        return raised.value.response["error"]

    assert error(user_id="U1", view={"type": "home", "blocks": [section]}, hash="1.stale") == (
        "hash_conflict"
    )
    assert error(user_id="U1", view={"type": "home", "blocks": [*many, section]}) == (
        "invalid_arguments"
    )
    assert error(user_id="U1", view={"type": "modal", "blocks": [section]}) == "invalid_arguments"
    bad = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert error(user_id="U1", view={"type": "home", "blocks": [bad]}) == "invalid_arguments"
    assert error(user_id="U404", view={"type": "home", "blocks": [section]}) == (
        "invalid_arguments"
    )
    second = client.views_publish(
        user_id="U1", view={"type": "home", "blocks": [section]}, hash=view["hash"]
    )
    assert second["view"]["id"] == view["id"] and second["view"]["hash"] != view["hash"]
    assert fake.views.home("U1").publishes == 2
    fake.views.home_tab_enabled = False
    assert error(user_id="U1", view={"type": "home", "blocks": [section]}) == "not_enabled"

    event = fake.views.home_opened_event("U1")
    assert event["type"] == "event_callback" and event["event"]["type"] == "app_home_opened"
    assert event["event"]["view"]["hash"] == second["view"]["hash"]
