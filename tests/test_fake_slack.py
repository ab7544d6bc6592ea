"""The fake Slack, exercised with Slack's own clients (slack_sdk WebClient, WebhookClient,
SignatureVerifier, the builtin SocketModeClient) and with a small real Bolt app."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from urllib.request import Request, urlopen
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from sim.slack import FakeSlack, validate_blocks
from sim.slack_client import SlackRequests, SlackSigner
from sim.slack_render import format_time, mrkdwn_to_text, render_channel, render_message

OPS = "C0OPS"
ADMIN = "U0ADMIN"
TS_FORMAT = re.compile(r"^\d{10}\.\d{6}$")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk reads *_PROXY but ignores NO_PROXY: loopback calls must not go to a proxy.
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_default_workspace()  # C0OPS, alice=U0ADMIN, bob=U0USER, S0ADMINS
        server.add_channel("C0SECRET", "secret", is_private=True, bot_member=False)
        server.add_channel("C0LOBBY", "lobby", bot_member=False)
        server.add_channel("C0SMALL", "small", members=[ADMIN])
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


def api_error(call: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(**kwargs)
    return info.value


def confirm_blocks() -> list[dict[str, Any]]:
    """Realistic blocks built with slack_sdk's models (so real shapes must validate)."""
    confirm = ConfirmObject(
        title="Delete cache?", text="This cannot be undone.", confirm="Delete", deny="Keep"
    )
    blocks = [
        HeaderBlock(text="Delete runtime cache"),
        SectionBlock(
            text=MarkdownTextObject(text="*R 4.3.1* &lt;!channel&gt; on <@U0USER>"),
            fields=[PlainTextObject(text="Size"), PlainTextObject(text="1.2 GB")],
        ),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="requested by <@U0ADMIN>")]),
        ActionsBlock(
            block_id="decide",
            elements=[
                ButtonElement(
                    text="Confirm",
                    action_id="confirm",
                    value="op-1",
                    style="danger",
                    confirm=confirm,
                ),
                ButtonElement(text="Cancel", action_id="cancel", value="op-1"),
            ],
        ),
    ]
    return [b.to_dict() for b in blocks]


# ---- auth and transport ------------------------------------------------------------------


def test_auth_test_reports_identity_and_scopes(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()
    assert response["user_id"] == "U0BOT"
    assert response["bot_id"] == "B0BOT"
    assert response["team_id"] == "T0001"
    assert response.headers["x-oauth-scopes"] == (
        "commands,chat:write,users:read,usergroups:read,users:read.email,im:write,"
        "channels:history,groups:history,im:history"
    )
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, "not_authed"),
        ("xoxb-wrong", "invalid_auth"),
        ("xapp-test-token", "not_allowed_token_type"),
    ],
)
def test_bot_methods_need_the_bot_token(fake: FakeSlack, token: str | None, error: str) -> None:
    bad = WebClient(token=token, base_url=fake.api_url)
    assert api_error(bad.auth_test).response["error"] == error


def test_unknown_method(client: WebClient) -> None:
    assert api_error(client.api_call, api_method="chat.scheduleMagic").response["error"] == (
        "unknown_method"
    )


def test_get_and_form_bodies_and_extra_params(fake: FakeSlack) -> None:
    request = Request(
        f"{fake.api_url}users.info?user=U0ADMIN&team_id=T0001",
        headers={"Authorization": f"Bearer {fake.bot_token}"},
    )
    with urlopen(request, timeout=5) as answer:
        body = json.load(answer)
    assert body["ok"] is True and body["user"]["name"] == "alice"
    call = fake.calls_to("users.info")[-1]
    assert call.http_method == "GET"
    assert call.params == {"user": "U0ADMIN", "team_id": "T0001"}
    assert call.headers["authorization"] == f"Bearer {fake.bot_token}"


def test_form_encoded_blocks_are_decoded(fake: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    response = httpx.post(
        f"{fake.api_url}chat.postMessage",
        data={"channel": OPS, "text": "hi", "blocks": json.dumps(blocks)},
        headers={"Authorization": f"Bearer {fake.bot_token}"},
        trust_env=False,
    )
    assert response.json()["ok"] is True
    assert fake.calls_to("chat.postMessage")[-1].params["blocks"] == blocks


# ---- chat.postMessage ----------------------------------------------------------------------


def test_post_message_stores_and_returns_message(fake: FakeSlack, client: WebClient) -> None:
    response = client.chat_postMessage(channel=OPS, text="hello", blocks=confirm_blocks())
    assert response["channel"] == OPS
    assert TS_FORMAT.match(response["ts"])
    assert response["message"]["bot_id"] == "B0BOT"
    [msg] = fake.messages(OPS)
    assert (msg.ts, msg.text, msg.user, msg.parse) == (response["ts"], "hello", "U0BOT", "none")
    assert msg.button_labels() == ["Confirm", "Cancel"]
    assert all(block.get("block_id") for block in msg.blocks)  # Slack fills block_ids in


def test_ts_values_are_unique_and_increasing(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel=OPS, text=str(i))["ts"] for i in range(20)]
    assert stamps == sorted(stamps, key=lambda ts: tuple(map(int, ts.split("."))))
    assert len(set(stamps)) == len(stamps)


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("C0NOPE", "channel_not_found"),
        ("C0LOBBY", "not_in_channel"),
        ("C0SECRET", "channel_not_found"),
    ],
)
def test_post_message_channel_access(client: WebClient, channel: str, error: str) -> None:
    assert api_error(client.chat_postMessage, channel=channel, text="x").response["error"] == error


def test_chat_write_public_reaches_public_channels_only() -> None:
    with FakeSlack(scopes=("chat:write", "chat:write.public")) as fake:
        fake.add_channel("C0LOBBY", "lobby", bot_member=False)
        fake.add_channel("C0SECRET", "secret", bot_member=False, is_private=True)
        client = WebClient(token=fake.bot_token, base_url=fake.api_url)
        assert client.chat_postMessage(channel="C0LOBBY", text="x")["ok"]
        error = api_error(client.chat_postMessage, channel="C0SECRET", text="x")
        assert error.response["error"] == "channel_not_found"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_content_errors(client: WebClient) -> None:
    assert api_error(client.chat_postMessage, channel=OPS).response["error"] == "no_text"
    long = "x" * 40_001
    assert api_error(client.chat_postMessage, channel=OPS, text=long).response["error"] == (
        "msg_too_long"
    )


def test_missing_scope(fake: FakeSlack) -> None:
    fake.scopes.remove("chat:write")
    client = WebClient(token=fake.bot_token, base_url=fake.api_url)
    error = api_error(client.chat_postMessage, channel=OPS, text="x")
    assert error.response["error"] == "missing_scope"
    assert error.response["needed"] == "chat:write"


def button(text: str = "Go", value: str = "v", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "value": value, **extra}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([section("x")] * 51, id="51-blocks"),
        pytest.param([section("x" * 3001)], id="section-3001"),
        pytest.param([{"type": "section"}], id="section-without-text"),
        pytest.param([section("")], id="empty-text"),
        pytest.param(
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], id="header-151"
        ),
        pytest.param(
            [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], id="header-mrkdwn"
        ),
        pytest.param([{"type": "actions", "elements": [button("b" * 76)]}], id="button-text-76"),
        pytest.param(
            [{"type": "actions", "elements": [button(value="v" * 2001)]}], id="value-2001"
        ),
        pytest.param(
            [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(26)]}],
            id="actions-26",
        ),
        pytest.param(
            [{"type": "actions", "elements": [{"type": "button", "action_id": "a"}]}],
            id="button-without-text",
        ),
        pytest.param(
            [{**section("a"), "block_id": "same"}, {**section("b"), "block_id": "same"}],
            id="duplicate-block-id",
        ),
        pytest.param([{"type": "carousel"}], id="unknown-type"),
    ],
)
def test_invalid_blocks(client: WebClient, blocks: list[dict[str, Any]]) -> None:
    error = api_error(client.chat_postMessage, channel=OPS, text="t", blocks=blocks)
    assert error.response["error"] == "invalid_blocks"
    assert error.response["errors"]  # json-pointer hints, as Slack gives


def test_realistic_blocks_are_valid() -> None:
    assert validate_blocks(confirm_blocks()) == []


def test_threads_and_broadcast(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=OPS, text="Rebuilding")["ts"]
    client.chat_postMessage(channel=OPS, text="step 1", thread_ts=parent)
    reply = client.chat_postMessage(channel=OPS, text="step 2", thread_ts=parent)["ts"]
    client.chat_postMessage(channel=OPS, text="done", thread_ts=reply, reply_broadcast=True)
    assert [m.text for m in fake.thread(OPS, parent)] == ["step 1", "step 2", "done"]
    assert [m.text for m in fake.messages(OPS)] == ["Rebuilding", "done"]
    assert [m.text for m in fake.messages(OPS, include_broadcasts=False)] == ["Rebuilding"]
    error = api_error(client.chat_postMessage, channel=OPS, text="x", thread_ts="123.000001")
    assert error.response["error"] == "thread_not_found"


# ---- chat.update / chat.postEphemeral / chat.delete ----------------------------------------


def test_update_replaces_content_and_counts(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=OPS, text="queued", blocks=confirm_blocks())["ts"]
    response = client.chat_update(channel=OPS, ts=ts, text="running", blocks=[section("running")])
    assert (response["ts"], response["text"]) == (ts, "running")
    client.chat_update(channel=OPS, ts=ts, text="done", parse="none")
    msg = fake.message(OPS, ts)
    assert (msg.text, msg.updated, msg.parse) == ("done", 2, "none")
    assert msg.blocks[0]["text"]["text"] == "running"  # omitted blocks are kept
    assert [text for text, _ in msg.versions] == ["queued", "running"]
    client.chat_update(channel=OPS, ts=ts, text="again")
    assert fake.message(OPS, ts).parse == "client"  # chat.update's default
    assert fake.calls_to("chat.update")[1].params["parse"] == "none"


def test_update_errors(fake: FakeSlack, client: WebClient) -> None:
    human = fake.post_user_message(OPS, ADMIN, "my own words")
    eph_ts = client.chat_postEphemeral(channel=OPS, user=ADMIN, text="psst")["message_ts"]
    ts = client.chat_postMessage(channel=OPS, text="x")["ts"]
    cases = [
        ({"ts": "1.000001"}, "message_not_found"),
        ({"ts": eph_ts}, "message_not_found"),  # ephemeral messages can't be updated
        ({"ts": human.ts}, "cant_update_message"),
        ({"ts": ts, "text": "y" * 4001}, "msg_too_long"),
        ({"ts": ts, "blocks": [section("z" * 3001)]}, "invalid_blocks"),
    ]
    for kwargs, error in cases:
        params = {"channel": OPS, "text": "new", **kwargs}
        assert api_error(client.chat_update, **params).response["error"] == error


def test_post_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    response = client.chat_postEphemeral(channel=OPS, user=ADMIN, text="only you")
    assert TS_FORMAT.match(response["message_ts"])
    [eph] = fake.ephemerals(OPS, ADMIN)
    assert (eph.text, eph.source, eph.ts) == (
        "only you",
        "chat.postEphemeral",
        response["message_ts"],
    )
    assert fake.messages(OPS) == []
    error = api_error(client.chat_postEphemeral, channel="C0SMALL", user="U0USER", text="x")
    assert error.response["error"] == "user_not_in_channel"


def test_delete(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=OPS, text="x")["ts"]
    client.chat_delete(channel=OPS, ts=ts)
    assert fake.messages(OPS) == [] and fake.message(OPS, ts).deleted


# ---- users, user groups, conversations -----------------------------------------------------


def test_users_info(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("W0GUEST", "gus", is_restricted=True, deleted=True)
    user = client.users_info(user="W0GUEST")["user"]
    assert (user["name"], user["is_restricted"], user["deleted"], user["is_admin"]) == (
        "gus",
        True,
        True,
        False,
    )
    assert client.users_info(user=ADMIN)["user"]["profile"]["email"] == "alice@example.com"
    assert api_error(client.users_info, user="U0NOBODY").response["error"] == "user_not_found"


def test_usergroups_users_list(client: WebClient) -> None:
    assert client.usergroups_users_list(usergroup="S0ADMINS")["users"] == [ADMIN]
    error = api_error(client.usergroups_users_list, usergroup="S0NOPE")
    assert error.response["error"] == "no_such_subteam"


def test_conversations_info_needs_channels_read(fake: FakeSlack, client: WebClient) -> None:
    assert api_error(client.conversations_info, channel=OPS).response["error"] == "missing_scope"
    fake.scopes += ["channels:read", "groups:read"]
    channel = client.conversations_info(channel=OPS)["channel"]
    assert (channel["name"], channel["is_member"], channel["is_private"]) == (
        "connect-ops",
        True,
        False,
    )
    assert client.conversations_info(channel="C0LOBBY")["channel"]["is_member"] is False
    for channel_id in ("C0NOPE", "C0SECRET"):
        error = api_error(client.conversations_info, channel=channel_id)
        assert error.response["error"] == "channel_not_found"


# ---- fault injection -----------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit("chat.postMessage", retry_after=7)
    error = api_error(client.chat_postMessage, channel=OPS, text="x")
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "7"
    assert client.chat_postMessage(channel=OPS, text="x")["ok"]  # only the next call


def test_rate_limit_retry_handler_retries(
    fake: FakeSlack, client: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builtin_handlers.random, "random", lambda: 0.0)  # no jitter: fast test
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    fake.rate_limit("chat.postMessage", retry_after=0)
    assert client.chat_postMessage(channel=OPS, text="x")["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]


def test_rate_limit_window(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit_window("chat.postMessage", max_calls=1, per_seconds=60, per_channel=True)
    client.chat_postMessage(channel=OPS, text="1")
    client.chat_postMessage(channel="C0SMALL", text="other channel")
    error = api_error(client.chat_postMessage, channel=OPS, text="2")
    assert error.response.status_code == 429
    assert int(error.response.headers["Retry-After"]) >= 59


def test_fail_and_latency(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("users.info", "fatal_error", count=2)
    for _ in range(2):
        assert api_error(client.users_info, user=ADMIN).response["error"] == "fatal_error"
    assert client.users_info(user=ADMIN)["ok"]
    fake.set_latency("auth.test", 0.2)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2


def test_wait_for_call(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel=OPS, text="first")
    call = fake.wait_for_call("chat.postMessage", lambda c: c.params["text"] == "first")
    assert call.ok and call.response["channel"] == OPS
    with pytest.raises(TimeoutError):
        fake.wait_for_call("chat.update", timeout=0.05)


# ---- response_url ------------------------------------------------------------------------


def test_command_response_url_posts_and_limits(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel=OPS, user=ADMIN)
    assert re.fullmatch(rf"{fake.url}/commands/T0001/\d+/\w+", url)
    hook = WebhookClient(url)
    assert hook.send(text="working...").status_code == 200
    first = fake.ephemerals(OPS, ADMIN)[-1]
    response = hook.send(text="done", replace_original=True)
    assert (response.status_code, response.body) == (200, "ok")
    assert (first.text, first.updated) == ("done", 1)  # replaced the earlier reply
    assert hook.send(text="for all", response_type="in_channel").status_code == 200
    assert [m.text for m in fake.messages(OPS)] == ["for all"]
    assert hook.send(text="4").status_code == 200
    assert hook.send(text="5").status_code == 200
    used = hook.send(text="6")
    assert (used.status_code, used.body) == (404, "used_url")
    assert [p.action for p in fake.response_url_posts] == [
        "ephemeral",
        "replace_original",
        "in_channel",
        "ephemeral",
        "ephemeral",
        "rejected",
    ]


def test_response_url_expiry_and_unknown(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel=OPS, user=ADMIN)
    fake.expire_response_url(url)
    assert WebhookClient(url).send(text="late").status_code == 404
    assert fake.response_url_posts[-1].answer == "expired_url"
    assert WebhookClient(f"{fake.url}/commands/T0001/999/nope").send(text="x").status_code == 404


def test_action_response_url_replaces_and_deletes_the_clicked_message(
    fake: FakeSlack, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=OPS, text="card", blocks=confirm_blocks())["ts"]
    payload = fake.action_payload(OPS, ts, "confirm")
    assert payload["response_url"].startswith(f"{fake.url}/actions/")
    hook = WebhookClient(payload["response_url"])
    assert hook.send(text="Deleted", replace_original=True).status_code == 200
    assert (fake.message(OPS, ts).text, fake.message(OPS, ts).blocks) == ("Deleted", [])
    assert hook.send_dict({"text": "not shown", "thread_ts": ts}).status_code == 200  # ephemeral
    assert fake.ephemerals(OPS, ADMIN)[-1].text == "not shown"
    assert hook.send(delete_original=True).status_code == 200
    assert fake.messages(OPS) == []
    assert (
        WebhookClient(payload["response_url"]).send(text="x", replace_original=True).status_code
        == 404
    )  # nothing left to replace


def test_response_url_validates_blocks(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.new_response_url(channel=OPS, user=ADMIN))
    response = hook.send(text="x", blocks=[section("y" * 3001)])
    assert (response.status_code, response.body) == (400, "invalid_blocks")
    assert fake.ephemerals() == []


# ---- block_actions payloads --------------------------------------------------------------


def test_action_payload_matches_slack_shape(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=OPS, text="card", blocks=confirm_blocks())["ts"]
    payload = fake.action_payload(OPS, ts, "cancel", value="op-1")
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": OPS,
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == ts and payload["message"]["blocks"][0]["type"] == "header"
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "cancel",
        "decide",
        "op-1",
    )
    assert action["text"]["text"] == "Cancel"
    with pytest.raises(LookupError):
        fake.action_payload(OPS, ts, "rebuild")
    with pytest.raises(LookupError):
        fake.action_payload(OPS, ts, "confirm", value="op-2")


def test_action_payload_for_ephemeral_message(fake: FakeSlack, client: WebClient) -> None:
    blocks = confirm_blocks()
    eph_ts = client.chat_postEphemeral(channel=OPS, user=ADMIN, text="sure?", blocks=blocks)
    payload = fake.action_payload(OPS, eph_ts["message_ts"], "confirm")
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload
    with pytest.raises(LookupError):  # only its recipient can see (and click) it
        fake.action_payload(OPS, eph_ts["message_ts"], "confirm", user_id="U0USER")
    hook = WebhookClient(payload["response_url"])
    assert hook.send(text="Deleted", replace_original=True).status_code == 200
    assert fake.ephemerals(OPS, ADMIN)[-1].text == "Deleted"


def test_select_payload(fake: FakeSlack, client: WebClient) -> None:
    select = {
        "type": "static_select",
        "action_id": "pick",
        "placeholder": {"type": "plain_text", "text": "Version"},
        "options": [
            {"text": {"type": "plain_text", "text": v}, "value": v} for v in ("4.3.1", "4.4.0")
        ],
    }
    ts = client.chat_postMessage(
        channel=OPS, text="pick", blocks=[{"type": "actions", "elements": [select]}]
    )["ts"]
    action = fake.action_payload(OPS, ts, "pick", selected_options=["4.4.0"])["actions"][0]
    assert action["selected_option"]["value"] == "4.4.0"


# ---- signing -----------------------------------------------------------------------------


def test_signer_matches_slack_sdk_verifier() -> None:
    signer = SlackSigner("shh")
    body = "token=x&text=caches+list+%26+more&payload_like=1"
    headers = signer.sign(body)
    verifier = SignatureVerifier("shh")
    timestamp = headers["X-Slack-Request-Timestamp"]
    assert verifier.is_valid(body, timestamp, headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid(body, timestamp, headers["X-Slack-Signature"])
    stale = signer.sign(body, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid(
        body, stale["X-Slack-Request-Timestamp"], stale["X-Slack-Signature"]
    )


# ---- SlackRequests against a real Bolt app over HTTP -----------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def build_app(fake: FakeSlack) -> App:
    app = App(
        client=WebClient(token=fake.bot_token, base_url=fake.api_url),
        signing_secret=fake.signing_secret,
    )

    @app.command("/connect")
    def command(ack: Any, command: dict[str, Any], say: Any, respond: Any) -> None:
        text = command["text"]
        if text == "public":
            ack(response_type="in_channel", text="for everyone")
        elif text == "slow":
            time.sleep(0.3)
            ack("too late")
        else:
            ack(f"got {text}")
        if text == "card":
            say(text="Delete cache?", blocks=confirm_blocks())
        elif text == "private card":
            respond(text="Delete cache?", blocks=confirm_blocks())

    @app.action("confirm")
    def confirm(ack: Any, respond: Any) -> None:
        ack()
        respond(text="Deleted", replace_original=True)

    @app.action("cancel")
    def cancel(ack: Any, respond: Any) -> None:
        ack()
        respond(delete_original=True)

    return app


@pytest.fixture
def slack(fake: FakeSlack) -> Iterator[SlackRequests]:
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(build_app(fake)),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.daemon = True
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/slack/events"
    with SlackRequests(url, fake.signing_secret, fake) as requests:
        yield requests
    server.shutdown()
    server.server_close()


def test_command_is_signed_and_complete(fake: FakeSlack, slack: SlackRequests) -> None:
    response = slack.command("caches list")
    assert (response.status_code, response.text) == (200, "got caches list")
    fields = slack.last_payload or {}
    expected = {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id"}
    expected |= {"user_name", "command", "text", "api_app_id", "response_url", "trigger_id"}
    assert expected <= set(fields)
    assert (fields["user_name"], fields["channel_name"]) == ("alice", "connect-ops")
    assert slack.last_response_url == fields["response_url"]
    # Slack shows the ack as a reply only the invoker sees.
    [reply] = fake.ephemerals(OPS, ADMIN)
    assert (reply.text, reply.source) == ("got caches list", "response_url")


def test_command_in_channel_ack_and_grid_user(fake: FakeSlack, slack: SlackRequests) -> None:
    assert slack.command("public", user_id="W0GRID").status_code == 200
    assert [m.text for m in fake.messages(OPS)] == ["for everyone"]


def test_slow_ack_shows_operation_timeout(fake: FakeSlack, slack: SlackRequests) -> None:
    fake.ack_timeout = 0.1
    assert slack.command("slow").status_code == 200
    [notice] = fake.ephemerals(OPS, ADMIN)
    assert notice.text == '/connect slow failed with the error "operation_timeout"'
    assert notice.source == "slack"


def test_forged_and_stale_signatures_are_rejected(fake: FakeSlack, slack: SlackRequests) -> None:
    body = "command=%2Fconnect&text=help&user_id=U0ADMIN&channel_id=C0OPS&team_id=T0001"
    forged = {**slack.signed_headers(body), "X-Slack-Signature": "v0=" + "0" * 64}
    assert slack.raw(body, forged).status_code == 401
    stale = slack.signed_headers(body, timestamp=int(time.time()) - 301)
    assert slack.raw(body, stale).status_code == 401
    assert slack.raw(body, slack.signed_headers(body)).status_code == 200


def test_click_on_posted_card_replaces_it(fake: FakeSlack, slack: SlackRequests) -> None:
    slack.command("card")
    assert fake.wait_for(lambda f: bool(f.messages(OPS)))
    card = fake.messages(OPS)[0]
    response = slack.click(OPS, card.ts, "confirm", value="op-1")
    assert response.status_code == 200
    assert fake.wait_for(lambda f: f.message(OPS, card.ts).text == "Deleted")
    with pytest.raises(LookupError):
        slack.click(OPS, card.ts, "confirm")  # the button is gone after the replace
    assert fake.interactions[-1].label == "[ Confirm ]"


def test_click_on_ephemeral_card(fake: FakeSlack, slack: SlackRequests) -> None:
    slack.command("private card")
    assert fake.wait_for(lambda f: any(e.blocks for e in f.ephemerals(OPS, ADMIN)))
    card = next(e for e in fake.ephemerals(OPS, ADMIN) if e.blocks)
    assert slack.click(OPS, card.ts, "cancel").status_code == 200
    assert (slack.last_payload or {})["container"]["is_ephemeral"] is True
    assert fake.wait_for(lambda f: card.deleted)


# ---- Socket Mode ---------------------------------------------------------------------------


def close_socket_client(fake: FakeSlack, client: SocketModeClient) -> None:
    # Closing from the server side first avoids the builtin client's 3 s blocking recv().
    client.auto_reconnect_enabled = False
    fake.socket_close_connections()
    client.close()


def test_socket_mode_round_trip_with_builtin_client(fake: FakeSlack) -> None:
    received: list[SocketModeRequest] = []

    def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        response = SocketModeResponse(request.envelope_id, payload={"text": "on it"})
        client.send_socket_mode_response(response)

    client = SocketModeClient(app_token=fake.app_token, web_client=WebClient(base_url=fake.api_url))
    client.socket_mode_request_listeners.append(listener)
    try:
        client.connect()
        assert fake.socket_connected(timeout=5) and client.is_connected()
        url = fake.calls_to("apps.connections.open")[0].response["url"]
        assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url

        envelope_id = fake.socket_send_command("caches list")
        ack = fake.socket_wait_ack(envelope_id, timeout=5)
        assert ack == {"envelope_id": envelope_id, "payload": {"text": "on it"}}
        [request] = received
        assert (request.type, request.accepts_response_payload) == ("slash_commands", True)
        assert request.payload["text"] == "caches list"
        assert fake.ephemerals(OPS, ADMIN)[-1].text == "on it"  # the ack payload is the reply

        # ping/pong both ways: the client's own pings got pongs, and it answers ours
        assert fake.wait_for(lambda f: client.current_session.last_ping_pong_time is not None)
        assert fake.socket_ping(timeout=2)

        # Slack's "disconnect" makes the client fetch a new URL and reconnect
        fake.socket_disconnect()
        assert fake.wait_for(lambda f: len(f.calls_to("apps.connections.open")) == 2)
        assert fake.wait_for(lambda f: f.socket_connected(0.01) and client.is_connected())
        envelope_id = fake.socket_send_command("help")
        assert fake.socket_wait_ack(envelope_id, timeout=5)["payload"] == {"text": "on it"}
    finally:
        close_socket_client(fake, client)


def test_socket_mode_needs_app_token(fake: FakeSlack, client: WebClient) -> None:
    error = api_error(client.apps_connections_open, app_token=fake.bot_token)
    assert error.response["error"] == "not_allowed_token_type"
    with pytest.raises(RuntimeError):
        fake.socket_send_command("help")  # nobody connected


def test_socket_mode_with_bolt_handler(fake: FakeSlack) -> None:
    app = build_app(fake)
    handler = SocketModeHandler(app, fake.app_token)
    handler.connect()
    try:
        assert fake.socket_connected(timeout=5)
        ack = fake.socket_wait_ack(fake.socket_send_command("card"), timeout=5)
        assert ack["payload"] == {"text": "got card"}
        assert fake.wait_for(lambda f: bool(f.messages(OPS)))
        card = fake.messages(OPS)[0]
        click = fake.socket_click(OPS, card.ts, "confirm")
        assert "payload" not in fake.socket_wait_ack(click, timeout=5)
        assert fake.wait_for(lambda f: f.message(OPS, card.ts).text == "Deleted")
        assert [e.type for e in fake.socket_envelopes] == ["slash_commands", "interactive"]
    finally:
        close_socket_client(fake, handler.client)


# ---- rendering ---------------------------------------------------------------------------


def test_mrkdwn_to_text() -> None:
    names = {"U0USER": "bob", "C0OPS": "connect-ops", "S0ADMINS": "connect-admins"}
    text = "*hi* <@U0USER> in <#C0OPS> <!here> <!subteam^S0ADMINS> <https://x.io|docs>"
    text += " a &lt;b&gt; &amp;lt; :white_check_mark: 12:01:30"
    assert mrkdwn_to_text(text, names) == (
        "*hi* @bob in #connect-ops @here @connect-admins docs a <b> &lt; ✅ 12:01:30"
    )


def test_render_channel_transcript(fake: FakeSlack, client: WebClient) -> None:
    mark = fake.mark()
    fake.record_interaction(
        "command", fake.command_payload("caches delete R 4.3.1"), transport="http"
    )
    eph = client.chat_postEphemeral(channel=OPS, user=ADMIN, text="Checking &lt;R&gt;…")
    card = client.chat_postMessage(channel=OPS, text="Delete?", blocks=confirm_blocks())["ts"]
    client.chat_postMessage(channel=OPS, text="step 1 done", thread_ts=card)
    client.chat_postMessage(channel=OPS, text="all done", thread_ts=card, reply_broadcast=True)

    t_eph, t_card = format_time(eph["message_ts"]), format_time(card)
    reply_time = format_time(fake.thread(OPS, card)[0].ts)
    done_time = format_time(fake.thread(OPS, card)[1].ts)
    expected = "\n\n".join(
        [
            "» alice ran /connect caches delete R 4.3.1",
            f"connect-bot  {t_eph}  (only visible to you)\nChecking <R>…",
            "\n".join(
                [
                    f"connect-bot  {t_card}",
                    "Delete runtime cache",
                    "━" * len("Delete runtime cache"),
                    "*R 4.3.1* <!channel> on @bob",
                    f"{'Size':<30}  1.2 GB",
                    "─" * 40,
                    "requested by @alice",
                    "[ Confirm ] [ Cancel ]",
                    f"  ↳ connect-bot  {reply_time}",
                    "    step 1 done",
                    f"  ↳ connect-bot  {done_time}",
                    "    all done",
                ]
            ),
            f"connect-bot  {done_time}  (replied to a thread)\nall done",
        ]
    )
    assert render_channel(fake, OPS, since=mark) == expected

    later = fake.mark()
    client.chat_update(channel=OPS, ts=card, text="Deleted", blocks=[])
    assert render_channel(fake, OPS, since=later, show_interactions=False) == (
        f"connect-bot  {t_card}  (edited)\nDeleted"
    )
    assert (
        render_channel(fake, OPS, viewer="U0USER", show_interactions=False).count("only visible")
        == 0
    )


def test_render_message_shows_slack_errors(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel=OPS, user=ADMIN, label="/connect help")
    fake.deliver_ack(url, status=500)
    [notice] = fake.ephemerals(OPS, ADMIN)
    assert render_message(notice, names=fake.display_names()).endswith(
        '(only visible to you)\n/connect help failed with the error "dispatch_failed"'
    )
    assert render_message(notice).startswith("Slackbot  ")


# ---- history and message metadata ------------------------------------------------------------


def test_replies_and_history_return_metadata_only_when_asked(
    fake: FakeSlack, client: WebClient
) -> None:
    meta = {"event_type": "connect_bot_summary", "event_payload": {"rebuild_id": 7}}
    parent = client.chat_postMessage(channel="C0OPS", text="parent")["ts"]
    for n in range(3):
        client.chat_postMessage(channel="C0OPS", text=f"reply {n}", thread_ts=parent)
    client.chat_postMessage(
        channel="C0OPS", text="summary", thread_ts=parent, reply_broadcast=True, metadata=meta
    )
    plain = client.conversations_replies(channel="C0OPS", ts=parent)
    assert [m["text"] for m in plain["messages"]] == [
        "parent",
        "reply 0",
        "reply 1",
        "reply 2",
        "summary",
    ]
    assert all("metadata" not in m for m in plain["messages"])
    first = client.conversations_replies(
        channel="C0OPS", ts=parent, include_all_metadata=True, limit=3
    )
    assert first["has_more"] and len(first["messages"]) == 3
    cursor = first["response_metadata"]["next_cursor"]
    rest = client.conversations_replies(
        channel="C0OPS", ts=parent, include_all_metadata=True, limit=3, cursor=cursor
    )
    assert not rest["has_more"] and rest["messages"][-1]["metadata"] == meta
    history = client.conversations_history(channel="C0OPS", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["summary", "parent"]  # newest first


def test_history_needs_the_channel_types_scope(fake: FakeSlack, client: WebClient) -> None:
    fake.scopes.remove("channels:history")
    with pytest.raises(SlackApiError) as err:
        client.conversations_history(channel="C0OPS")
    assert err.value.response["error"] == "missing_scope"


def test_a_targeted_429_hits_only_the_matching_post(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit("chat.postMessage", retry_after=9, when=lambda p: p.get("text") == "two")
    assert client.chat_postMessage(channel="C0OPS", text="one")["ok"]
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OPS", text="two")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "9"
    assert client.chat_postMessage(channel="C0OPS", text="two")["ok"]  # only once
