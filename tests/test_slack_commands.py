"""The Bolt app over real HTTP on loopback, fed Slack-signed requests; replies land in the fake
Slack; Connect is the simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from sim.stack import ADMIN, OPS_CHANNEL, VIEWER, Stack, start_stack
from tests.slack_helpers import (
    audit_rows,
    connect_requests_but_markers,
    dry_runs,
    later_request_handled,
    slack_calls_but_markers,
    wait_ephemeral,
    wait_message,
)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack() as running:
        yield running


@pytest.fixture(scope="module")
def quiet_stack() -> Iterator[Stack]:
    """Shared by the tests whose requests must change nothing: each one checks that, and the
    later marker's own traces (`later_request_handled`) are left out."""
    with start_stack() as running:
        yield running


def test_help_is_an_ephemeral_ack_listing_every_command(stack: Stack):
    response = stack.requests.command("help")
    assert response.status_code == 200
    body = response.json()
    assert body.get("response_type", "ephemeral") == "ephemeral"
    text = json.dumps(body["blocks"])
    for example in ("caches list", "caches delete", "content search", "rebuild", "audit"):
        assert f"/connect {example}" in text
    assert stack.slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("caches delete -l julia -V 1.0.0", "R or Python"),
        ("caches delete -l python", "--version"),
        ("caches delete -l python -V 3.11", "three-part"),
        ("content search --py-version banana", "not a version filter"),
        ("frobnicate", "don't know the command"),
        ('content search --title-contains "open', "could not read"),
        ("audit 5000", "from 1 to 50"),
    ],
)
def test_bad_input_gets_friendly_usage_and_changes_nothing(
    quiet_stack: Stack, text: str, needle: str
):
    stack = quiet_stack
    before = len(connect_requests_but_markers(stack))
    response = stack.requests.command(text)
    assert response.status_code == 200
    body = response.json()
    assert needle in body["text"] + json.dumps(body["blocks"])
    assert "/connect" in json.dumps(body["blocks"])  # usage or a pointer to help
    later_request_handled(stack)
    assert connect_requests_but_markers(stack)[before:] == []
    assert [c for c in slack_calls_but_markers(stack) if c.method == "chat.postMessage"] == []
    assert audit_rows(stack) == []


def test_forged_and_stale_signatures_get_401_and_change_nothing(quiet_stack: Stack):
    stack = quiet_stack
    before = len(connect_requests_but_markers(stack))
    payload = stack.slack.command_payload("caches delete -l python -V 3.11.3")
    body = urlencode(payload)
    forged = stack.requests.signed_headers(body)
    forged["X-Slack-Signature"] = "v0=" + "0" * 64
    assert stack.requests.raw(body, forged).status_code == 401
    stale = stack.requests.signed_headers(body, timestamp=int(time.time()) - 301)
    assert stack.requests.raw(body, stale).status_code == 401
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert stack.requests.raw(body, unsigned).status_code == 401
    later_request_handled(stack)
    assert connect_requests_but_markers(stack)[before:] == []
    assert [c for c in slack_calls_but_markers(stack) if c.method == "chat.postMessage"] == []
    assert audit_rows(stack) == []


def test_caches_list_is_posted_in_channel_with_delete_buttons(stack: Stack):
    response = stack.requests.command("caches list", user_id=VIEWER)
    assert response.status_code == 200
    message = wait_message(stack, lambda m: "Runtime caches" in m.all_text())
    text = message.all_text()
    for cache in stack.connect.caches():
        assert cache["version"] in text
        assert cache["image_name"].replace("<", "&lt;") in text
    delete_buttons = [b for b in message.buttons() if b["action_id"] == "cache_delete_start"]
    assert len(delete_buttons) == len(stack.connect.caches())
    assert "Delete selected…" in message.button_labels()
    assert any(e.get("type") == "multi_static_select" for _, e in message.elements())


def test_payload_word_in_command_text_is_not_dropped(stack: Stack):
    # Bolt 1.30 treats any form body containing "payload" as an interaction and 404s.
    response = stack.requests.command("content search --title-contains payload")
    assert response.status_code == 200
    eph = wait_ephemeral(stack, "content item(s) match", user=ADMIN)
    assert "0" in eph.all_text()
    assert any(r.path.endswith("/v1/content") for r in stack.connect.requests)


def test_content_search_escapes_titles_and_paginates(stack: Stack):
    stack.connect.add_content(title="<!channel> Sales & <Ops>", app_mode="shiny", r_version="4.3.0")
    for n in range(12):
        stack.connect.add_content(title=f"Report {n}", app_mode="rmd-static", r_version="4.3.0")
    stack.requests.command('content search --title-contains "Sales &amp; <Ops>"')
    eph = wait_ephemeral(stack, "Sales", user=ADMIN)
    assert "&lt;!channel&gt; Sales &amp; &lt;Ops&gt;" in eph.all_text()
    assert eph.mentions() == []

    stack.requests.command("content search --title-contains Report")
    page1 = wait_ephemeral(stack, "Page 1 of 2", user=ADMIN)
    assert "Next >" in page1.button_labels()
    stack.requests.click(OPS_CHANNEL, page1.ts, "content_search_page_next")
    assert stack.slack.wait_for(
        lambda fake: any("Page 2 of 2" in e.all_text() for e in fake.ephemerals(user=ADMIN))
    )


def test_not_in_channel_tells_the_user_how_to_invite_the_bot(stack: Stack):
    response = stack.requests.command("caches list", channel_id="C0LOBBY")
    assert response.status_code == 200
    eph = wait_ephemeral(stack, "/invite", user=ADMIN)
    assert "<@U0BOT>" in eph.all_text()
    assert [c.error for c in stack.slack.calls_to("chat.postMessage")] == ["not_in_channel"]


def test_allowed_channels_limit_every_command():
    with start_stack(bot_allowed_channels=[OPS_CHANNEL]) as stack:
        response = stack.requests.command("caches list", channel_id="C0LOBBY")
        assert response.status_code == 200
        assert "not enabled in this channel" in response.json()["text"]
        assert stack.slack.wait_for(lambda _: len(audit_rows(stack)) == 1)
        assert audit_rows(stack)[0].outcome == "denied"
        assert stack.connect.requests == []


def test_listener_failure_after_ack_still_answers_200(stack: Stack):
    # Bolt can lose an ack when a listener raises right after it; ours never raises.
    stack.runtime.executor.shutdown(wait=True)  # submit() will now fail after ack()
    for _ in range(5):
        response = stack.requests.command("caches list")
        assert response.status_code == 200


def test_audit_command_is_for_admins_only(stack: Stack):
    stack.requests.command("audit 5", user_id=VIEWER)
    wait_ephemeral(stack, "Only connect-bot administrators", user=VIEWER)
    assert stack.slack.wait_for(lambda _: any(r.action == "audit_view" for r in audit_rows(stack)))
    stack.requests.command("audit 5", user_id=ADMIN)
    eph = wait_ephemeral(stack, "Audit log", user=ADMIN)
    assert "audit_view" in eph.all_text() and "denied" in eph.all_text()


def test_ack_is_fast_and_does_no_io_before_it(stack: Stack):
    stack.connect.inject_faults(latency=1.0)  # Connect is slow: the ack must not wait for it
    started = time.perf_counter()
    response = stack.requests.command("caches list")
    assert response.status_code == 200
    assert time.perf_counter() - started < 0.5
    wait_message(stack, lambda m: "Runtime caches" in m.all_text())
    assert dry_runs(stack) == []
