"""Slack signature edge cases in HTTP mode: forged, malformed, stale and replayed requests all
get 401 before Bolt sees them, with no side effect; a correctly signed command still works."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from bot.slack.server import BotWsgi, HttpServer
from bot.slack.signature import RequestVerifier
from sim.slack_client import FORM_CONTENT_TYPE, SlackRequests
from sim.stack import ADMIN, OPS_CHANNEL, SIGNING_SECRET, Stack, start_stack
from tests.slack_helpers import (
    audit_rows,
    card,
    connect_requests_but_markers,
    dry_runs,
    is_marker,
    later_request_handled,
    slack_calls_but_markers,
    wait_message,
)

DELETE = "caches delete -l python -V 3.11.3"  # a dry run on Connect, a card, an audit row


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Front:
    """The stack's Bolt app behind a BotWsgi that is given the signing secret."""

    stack: Stack
    url: str
    requests: SlackRequests
    http: httpx.Client
    records: list[logging.LogRecord]

    def post(self, body: bytes, headers: dict[str, str | bytes]) -> httpx.Response:
        return self.http.post(self.url, content=body, headers=headers, timeout=10)

    def request_lines(self) -> list[logging.LogRecord]:
        return [r for r in list(self.records) if getattr(r, "event", None) == "request"]


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One stack for the module: every test compares `effects` before and after, and the
    later marker's own traces (`later_request_handled`) are left out of them."""
    with start_stack() as running:
        yield running


@pytest.fixture
def front(stack: Stack) -> Iterator[Front]:
    runtime = stack.runtime
    wsgi = BotWsgi(runtime.app, runtime.readiness, runtime.deps.gate, signing_secret=SIGNING_SECRET)
    server = HttpServer(wsgi, host="127.0.0.1", port=0).start()
    url = f"{server.url}/slack/events"
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("bot.http")
    handler = _Collect(records)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    http = httpx.Client(trust_env=False)
    requests = SlackRequests(url, SIGNING_SECRET, stack.slack)
    try:
        yield Front(stack, url, requests, http, records)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        requests.close()
        http.close()
        server.stop()


def effects(stack: Stack) -> dict[str, int]:
    """Everything a dispatched command could change, but the later markers' own traces."""
    messages = stack.slack.messages(OPS_CHANNEL, include_deleted=True)
    return {
        "slack_api_calls": len(slack_calls_but_markers(stack)),
        "connect_requests": len(connect_requests_but_markers(stack)),
        "audit_rows": len(audit_rows(stack)),
        "response_url_posts": len(stack.slack.response_url_posts),
        "ephemerals": len(stack.slack.ephemerals(include_deleted=True)),
        "messages": len([m for m in messages if not is_marker(m)]),
    }


def command_body(stack: Stack, text: str = DELETE) -> bytes:
    fields = stack.slack.command_payload(text, user_id=ADMIN, channel_id=OPS_CHANNEL)
    fields["team_id"] = "T0001"
    return urlencode(fields).encode()


Headers = dict[str, str | bytes]
Forgery = Callable[[bytes, int], tuple[bytes, Headers]]


def headers(timestamp: str | bytes | None, signature: str | bytes | None) -> Headers:
    out: Headers = {"Content-Type": FORM_CONTENT_TYPE}
    if timestamp is not None:
        out["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        out["X-Slack-Signature"] = signature
    return out


def odd_timestamp(form: Callable[[int], str]) -> Forgery:
    """A timestamp int() might accept (or a non-ASCII one), signed with the right secret over
    that exact string: only the shape check can refuse it."""

    def forge(body: bytes, now: int) -> tuple[bytes, Headers]:
        ts = form(now)  # sent as its UTF-8 bytes, the bytes it is signed over
        return body, headers(ts if ts.isascii() else ts.encode(), sign(body, ts))

    return forge


def odd_signature(form: Callable[[str], str]) -> Forgery:
    def forge(body: bytes, now: int) -> tuple[bytes, Headers]:
        return body, headers(str(now), form(sign(body, str(now))))

    return forge


def signed_at(offset: int, secret: str = SIGNING_SECRET) -> Forgery:
    def forge(body: bytes, now: int) -> tuple[bytes, Headers]:
        ts = str(now + offset)
        return body, headers(ts, sign(body, ts, secret))

    return forge


def altered_after_signing(body: bytes, now: int) -> tuple[bytes, Headers]:
    signed = headers(str(now), sign(body, str(now)))
    return body.replace(b"3.11.3", b"3.11.4"), signed


def missing_timestamp(body: bytes, now: int) -> tuple[bytes, Headers]:
    return body, headers(None, sign(body, str(now)))


def missing_signature(body: bytes, now: int) -> tuple[bytes, Headers]:
    return body, headers(str(now), None)


def missing_both(body: bytes, now: int) -> tuple[bytes, Headers]:
    return body, headers(None, None)


FULL_WIDTH = {ord(d): chr(0xFF10 + int(d)) for d in "0123456789"}

FORGERIES: dict[str, Forgery] = {
    "missing timestamp": missing_timestamp,
    "missing signature": missing_signature,
    "missing both headers": missing_both,
    "timestamp not a number": odd_timestamp(lambda now: "abc"),
    "timestamp empty": odd_timestamp(lambda now: ""),
    "timestamp Arabic-Indic digits": odd_timestamp(lambda now: "١٢٣"),
    "timestamp full-width digits": odd_timestamp(
        lambda now: "".join(chr(0xFF10 + int(d)) for d in str(now))
    ),
    "timestamp exponent": odd_timestamp(lambda now: "1e9"),
    "timestamp decimal": odd_timestamp(lambda now: f"{now}.0"),
    "timestamp plus sign": odd_timestamp(lambda now: f"+{now}"),
    "timestamp underscores": odd_timestamp(lambda now: f"{now:_}"),
    "timestamp negative": odd_timestamp(lambda now: "-1"),
    "timestamp huge": odd_timestamp(lambda now: "9" * 5000),
    "timestamp hex": odd_timestamp(lambda now: hex(now)),
    "signature without v0=": odd_signature(lambda sig: sig[3:]),
    "signature v1=": odd_signature(lambda sig: "v1=" + sig[3:]),
    "signature too short": odd_signature(lambda sig: sig[:-1]),
    "signature too long": odd_signature(lambda sig: sig + "0"),
    "signature not hex": odd_signature(lambda sig: "v0=" + "g" * 64),
    "signature upper-case hex": odd_signature(lambda sig: "v0=" + sig[3:].upper()),
    "signature empty": odd_signature(lambda sig: ""),
    "signature zeros": odd_signature(lambda sig: "v0=" + "0" * 64),
    "signature twice": odd_signature(lambda sig: f"{sig}, {sig}"),
    "wrong secret": signed_at(0, secret="not-the-signing-secret"),
    "stale (6 minutes old)": signed_at(-360),
    "future (6 minutes ahead)": signed_at(360),
    "body altered after signing": altered_after_signing,
}


@pytest.mark.parametrize("forge", list(FORGERIES.values()), ids=list(FORGERIES))
def test_forged_malformed_and_stale_requests_get_401_and_change_nothing(
    front: Front, forge: Forgery
):
    stack = front.stack
    body, sent_headers = forge(command_body(stack), int(time.time()))
    before = effects(stack)
    response = front.post(body, sent_headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid request"}
    later_request_handled(stack, front.requests)  # dispatched work would have run by then
    assert effects(stack) == before
    lines = front.request_lines()
    assert [r.status for r in lines] == [401, 200]  # type: ignore[attr-defined]
    assert lines[0].rejected  # type: ignore[attr-defined]


def test_a_replayed_request_gets_401_and_changes_nothing(front: Front):
    stack = front.stack
    body = command_body(stack)
    ts = str(int(time.time()))
    sent = headers(ts, sign(body, ts))
    first = front.post(body, sent)
    assert first.status_code == 200
    card(stack)  # the first did its work: a dry run on Connect, then a confirmation card
    assert dry_runs(stack)
    assert stack.runtime.deps.drain(10) == 0  # the first request's work has ended
    before = effects(stack)
    again = front.post(body, sent)
    assert again.status_code == 401
    assert again.json() == {"error": "invalid request"}
    later_request_handled(stack, front.requests)
    assert effects(stack) == before
    lines = front.request_lines()
    assert [r.status for r in lines] == [200, 401, 200]  # type: ignore[attr-defined]
    assert lines[1].rejected == "replayed request"  # type: ignore[attr-defined]


def test_a_correctly_signed_command_still_works(front: Front):
    stack = front.stack
    before = len(stack.slack.messages(OPS_CHANNEL))
    response = front.requests.command("caches list")
    assert response.status_code == 200
    message = wait_message(
        stack,
        lambda m: (
            "Runtime caches" in m.all_text() and m in stack.slack.messages(OPS_CHANNEL)[before:]
        ),
    )
    assert message.buttons()  # delete buttons: the listing Connect answered
    assert [r.status for r in front.request_lines()] == [200]  # type: ignore[attr-defined]


def test_without_the_secret_malformed_headers_still_get_401_not_500(stack: Stack):
    """The front as runtime.py builds it without `signing_secret=`: Bolt checks the HMAC."""
    body = command_body(stack)
    now = int(time.time())
    before = effects(stack)
    for sent in (
        headers("abc", sign(body, "abc")),
        headers("1e9", sign(body, "1e9")),
        headers(str(now), "v0=" + "z" * 64),
        headers(None, sign(body, str(now))),
        headers(str(now - 360), sign(body, str(now - 360))),
        headers(str(now), "v0=" + "0" * 64),  # well formed, wrong: Bolt's own check
    ):
        response = stack.requests.raw(body, sent)  # type: ignore[arg-type]
        assert response.status_code == 401
    later_request_handled(stack)
    assert effects(stack) == before


# The verifier on its own, with a frozen clock.

SECRET = "unit-secret"
NOW = 1_700_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        " 123",
        "123 ",
        f" {NOW}",
        f"{NOW}\n",
        "١٢٣",
        "1e9",
        f"{NOW}.0",
        f"+{NOW}",
        "-1",
        f"{NOW:_}",
        "9" * 13,
        "9" * 5000,
        "0x10",
    ],
)
def test_verifier_refuses_timestamps_that_are_not_ascii_digits(timestamp: str):
    verifier = RequestVerifier(SECRET, clock=Clock())
    body = b"a=b"
    assert verifier.check(body, timestamp, sign(body, timestamp, SECRET)) == "malformed timestamp"


def test_verifier_window_is_five_minutes_either_way():
    clock = Clock()
    verifier = RequestVerifier(SECRET, clock=clock)
    body = b"a=b"
    for offset, expected in (
        (-300, None),
        (300, None),
        (-301, "stale timestamp"),
        (301, "stale timestamp"),
    ):
        ts = str(NOW + offset)
        assert verifier.check(body, ts, sign(body, ts, SECRET)) == expected


def test_verifier_refuses_a_replay_until_the_window_makes_it_stale():
    clock = Clock()
    verifier = RequestVerifier(SECRET, clock=clock)
    body = b"a=b"
    ts = str(NOW)
    sig = sign(body, ts, SECRET)
    assert verifier.check(body, ts, sig) is None
    clock.now += 299
    assert verifier.check(body, ts, sig) == "replayed request"
    clock.now += 2
    assert verifier.check(body, ts, sig) == "stale timestamp"


def test_verifier_memory_is_bounded_and_drops_expired_signatures():
    clock = Clock()
    verifier = RequestVerifier(SECRET, clock=clock, max_remembered=3)
    for n in range(10):
        body = f"n={n}".encode()
        assert verifier.check(body, str(NOW), sign(body, str(NOW), SECRET)) is None
    assert len(verifier._seen) == 3
    clock.now += 301
    body = b"n=late"
    assert (
        verifier.check(body, str(int(clock.now)), sign(body, str(int(clock.now)), SECRET)) is None
    )
    assert len(verifier._seen) == 1


def test_verifier_does_not_remember_a_bad_signature():
    verifier = RequestVerifier(SECRET, clock=Clock())
    body = b"a=b"
    assert verifier.check(body, str(NOW), "v0=" + "0" * 64) == "bad signature"
    assert verifier._seen == {}
    assert verifier.check(body, str(NOW), sign(body, str(NOW), SECRET)) is None
