"""Helpers for tests that drive the bot through the fake Slack."""

from __future__ import annotations

from sqlalchemy import select

from bot.store import AuditEntry, PendingAction
from sim.slack import ApiCall, Message
from sim.slack_client import SlackRequests
from sim.stack import ADMIN, OPS_CHANNEL, VIEWER, Stack


def wait_message(
    stack: Stack, predicate, channel: str = OPS_CHANNEL, timeout: float = 10
) -> Message:
    found: list[Message] = []

    def check(fake) -> bool:
        for message in fake.messages(channel):
            if predicate(message):
                found.append(message)
                return True
        return False

    assert stack.slack.wait_for(check, timeout=timeout), f"no matching message in {channel}"
    return found[0]


def wait_ephemeral(stack: Stack, needle: str, user: str | None = None, timeout: float = 10):
    found = []

    def check(fake) -> bool:
        for eph in fake.ephemerals(user=user):
            if needle in eph.all_text():
                found.append(eph)
                return True
        return False

    assert stack.slack.wait_for(check, timeout=timeout), f"no ephemeral containing {needle!r}"
    return found[0]


def card(stack: Stack) -> Message:
    return wait_message(stack, lambda m: "Confirm" in m.button_labels())


def audit_rows(stack: Stack) -> list[AuditEntry]:
    with stack.runtime.db.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all())


def pending_rows(stack: Stack) -> list[PendingAction]:
    with stack.runtime.db.session() as session:
        return list(session.scalars(select(PendingAction)).all())


def real_deletes(stack: Stack) -> list[dict]:
    return [
        r.json
        for r in stack.connect.requests
        if r.method == "DELETE" and r.json and r.json.get("dry_run") is False
    ]


def dry_runs(stack: Stack) -> list[dict]:
    return [
        r.json
        for r in stack.connect.requests
        if r.method == "DELETE" and r.json and r.json.get("dry_run") is True
    ]


def has_cache(stack: Stack, language: str, version: str, image: str = "Local") -> bool:
    return any(
        c["language"].lower() == language.lower()
        and c["version"] == version
        and c["image_name"] == image
        for c in stack.connect.caches()
    )


def stale_click(stack: Stack, message_ts: str, action_id: str, value: str, user: str = ADMIN):
    """A click from a Slack client that still shows buttons the bot has since removed."""
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "api_app_id": "A0001",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": OPS_CHANNEL,
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.stale",
        "channel": {"id": OPS_CHANNEL},
        "state": {"values": {}},
        "response_url": stack.slack.new_response_url(
            channel=OPS_CHANNEL, user=user, message_ts=message_ts
        ),
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "type": "button",
                "text": {"type": "plain_text", "text": "Confirm"},
            }
        ],
    }
    return stack.requests.send_action(payload)


def wait_audit(stack: Stack, action: str, outcome: str, timeout: float = 10) -> bool:
    """The audit row is written just after the user's answer: wait for it, don't race it."""
    return stack.slack.wait_for(
        lambda _: (action, outcome) in [(r.action, r.outcome) for r in audit_rows(stack)],
        timeout=timeout,
    )


# A negative check ("that request changed nothing") waits for a positive marker that comes
# later, never for a fixed time: a later, harmless request has been handled.

MARKER_COMMAND = "caches list"  # read-only, allowed to anyone: a GET on Connect, one post
MARKER_TITLE = "Runtime caches"


def later_request_handled(
    stack: Stack, requests: SlackRequests | None = None, timeout: float = 10
) -> Message:
    """Send a later, correctly signed `/connect caches list` (as the viewer) and wait until its
    message is in the fake Slack, then until every task the bot started after an ack has ended.
    Anything an earlier request was going to cause has been caused by then: its work was
    submitted before its HTTP answer (process_before_response), so `drain` covers it.
    `is_marker` and `is_marker_call` tell the marker's own traces apart."""
    before = len([m for m in stack.slack.messages(OPS_CHANNEL) if is_marker(m)])
    response = (requests or stack.requests).command(MARKER_COMMAND, user_id=VIEWER)
    assert response.status_code == 200
    found: list[Message] = []

    def posted(fake) -> bool:
        markers = [m for m in fake.messages(OPS_CHANNEL) if is_marker(m)]
        found.extend(markers[before:])
        return len(markers) > before

    assert stack.slack.wait_for(posted, timeout=timeout), "the later request was not answered"
    assert stack.runtime.deps.drain(timeout) == 0, "background work still running"
    return found[0]


def is_marker(message: Message) -> bool:
    return MARKER_TITLE in message.all_text()


def is_marker_call(call: ApiCall) -> bool:
    return call.method == "chat.postMessage" and MARKER_TITLE in str(call.params)


def is_marker_request(request) -> bool:
    """The marker's read on Connect (the list of runtime caches)."""
    return request.method == "GET" and request.path.endswith("/v1/system/caches/runtime")


def slack_calls_but_markers(stack: Stack) -> list[ApiCall]:
    return [c for c in list(stack.slack.calls) if not is_marker_call(c)]


def connect_requests_but_markers(stack: Stack) -> list:
    return [r for r in list(stack.connect.requests) if not is_marker_request(r)]
