"""The HTTP front under attack (issue 17): huge bodies refused without being read, Slack's
headers checked before the body, slow clients bounded, health probes answered when every
connection is taken, a prompt stop with connections open, and replays refused across replicas.

The bodies are streamed from a generator over a raw socket (`sim.attack`): a client sends
until the bot answers. The attacks that must leave the bot standing hit a real process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.slack.bounded import HEALTH_LIMITS, MAX_BODY, PUBLIC_LIMITS, Limits
from bot.slack.server import EVENTS_PATH, BotWsgi, HttpServer
from bot.store import Database
from bot.store.seen import SeenSignatures
from sim.attack import MIB, Answer, SlowClients, body_chunks, post_streamed, timed_get
from sim.connect_server import FakeConnect
from sim.process import BotProcess, free_port
from sim.slack import FakeSlack
from sim.slack_client import FORM_CONTENT_TYPE, SlackRequests
from sim.stack import (
    ADMIN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    Stack,
    start_stack,
    start_workspace,
)
from tests.conftest import needs_postgres

EIGHT_TIMES = 8
HUGE = 256 * MIB


def signed(size: int, *, at: int | None = None) -> dict[str, str]:
    """Slack's headers for a body of `size` bytes from `body_chunks`, signed correctly."""
    ts = str(int(time.time()) if at is None else at)
    mac = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":", hashlib.sha256)
    for chunk in body_chunks(size):
        mac.update(chunk)
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }


UNSIGNED = {"Content-Type": FORM_CONTENT_TYPE}


def attack(server: HttpServer, headers: dict[str, str], size: int, *, chunked: bool) -> Answer:
    return post_streamed(
        "127.0.0.1",
        server.port,
        EVENTS_PATH,
        headers,
        body_chunks(size),
        content_length=None if chunked else size,
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with start_stack() as running:
        yield running


def front_for(stack: Stack, limits: Limits = PUBLIC_LIMITS, **kwargs: object) -> HttpServer:
    runtime = stack.runtime
    wsgi = BotWsgi(
        runtime.app,
        runtime.readiness,
        runtime.deps.gate,
        signing_secret=SIGNING_SECRET,
        **kwargs,  # type: ignore[arg-type]
    )
    return HttpServer(wsgi, host="127.0.0.1", port=0, limits=limits).start()


@pytest.fixture
def front(stack: Stack) -> Iterator[HttpServer]:
    server = front_for(stack)
    yield server
    server.stop()


# --- bodies -------------------------------------------------------------------------------


# A Content-Length over the cap is refused first (413); a chunked body's size is unknown, so
# its missing signature is what refuses it (401). Either way after the headers alone.
REFUSED = {False: 413, True: 401}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unsigned_256_mib_body_is_refused_after_its_headers(front: HttpServer, chunked: bool):
    answer = attack(front, UNSIGNED, HUGE, chunked=chunked)
    assert answer.status == REFUSED[chunked]
    assert answer.seconds < 2
    assert answer.sent < 16 * MIB  # what the sockets' buffers took before the answer came


def test_a_stale_signature_is_refused_before_the_body(front: HttpServer):
    stale = signed(0, at=int(time.time()) - 360)
    answer = attack(front, {**stale, "Expect": "100-continue"}, HUGE, chunked=True)
    assert answer.status == 401  # not "100 Continue": nothing invites the body
    assert answer.seconds < 2


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_correctly_signed_2_mib_body_gets_413(front: HttpServer, chunked: bool):
    answer = attack(front, signed(2 * MIB), 2 * MIB, chunked=chunked)
    assert answer.status == 413
    assert answer.seconds < 2


def test_a_signed_body_of_exactly_1_mib_reaches_the_app(front: HttpServer, stack: Stack):
    # Not a valid Slack payload, so Bolt refuses it; but it was read, checked and dispatched.
    answer = attack(front, signed(MAX_BODY), MAX_BODY, chunked=False)
    assert answer.status not in (None, 401, 413)
    assert answer.sent == MAX_BODY


@pytest.mark.parametrize(("path", "status"), [("/healthz", 413), ("/elsewhere", 404)])
def test_a_body_anywhere_else_is_refused_unread(front: HttpServer, path: str, status: int):
    answer = post_streamed(
        "127.0.0.1", front.port, path, UNSIGNED, body_chunks(HUGE), content_length=None
    )
    assert answer.status == status
    assert answer.seconds < 2


def test_refusals_before_the_body_are_logged_with_why(stack: Stack):
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("bot.http")
    handler, old_level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    server = front_for(stack)
    try:
        assert attack(server, UNSIGNED, MIB, chunked=False).status == 401
        assert attack(server, signed(2 * MIB), 2 * MIB, chunked=False).status == 413
    finally:
        server.stop()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [r for r in records if getattr(r, "event", None) == "request"]
    assert [(r.status, r.rejected) for r in lines] == [  # type: ignore[attr-defined]
        (401, "missing timestamp"),
        (413, "body too large"),
    ]


# --- slow clients, health, stopping ---------------------------------------------------------


def test_a_request_trickling_in_is_closed_at_its_deadline(stack: Stack):
    server = front_for(stack, Limits(request_seconds=1, idle_seconds=30))
    slow = SlowClients("127.0.0.1", server.port, 5, interval=0.2)  # never idle
    try:
        deadline = time.monotonic() + 5
        while slow.closed() < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert slow.closed() == 5
        assert timed_get(f"{server.url}/healthz")[0] == 200
    finally:
        slow.close()
        server.stop()


def test_the_health_port_answers_when_every_connection_of_the_main_port_is_taken(stack: Stack):
    server = front_for(stack, Limits(connections=20))
    health = HttpServer(
        BotWsgi(None, stack.runtime.readiness), host="127.0.0.1", port=0, limits=HEALTH_LIMITS
    ).start()
    slow = SlowClients("127.0.0.1", server.port, 40)  # twice the main port's limit
    try:
        for path in ("/healthz", "/readyz"):
            status, seconds = timed_get(f"{health.url}{path}")
            assert (status, seconds < 1) == (200, True)
    finally:
        slow.close()
        health.stop()
        server.stop()


def test_stop_is_prompt_with_keep_alive_and_slow_connections_open(stack: Stack):
    server = front_for(stack)
    client = httpx.Client(trust_env=False)
    idle = socket.create_connection(("127.0.0.1", server.port))
    slow = SlowClients("127.0.0.1", server.port, 3)
    try:
        assert client.get(f"{server.url}/healthz").status_code == 200  # now kept alive
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        idle.settimeout(2)
        assert idle.recv(1) == b""  # closed by the server, not left to its idle timeout
        assert slow.closed() == 3 or _eventually(lambda: slow.closed() == 3)
    finally:
        slow.close()
        idle.close()
        client.close()
        server.stop()


def _eventually(done: Callable[[], bool], timeout: float = 2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return False


# --- replays across replicas (PostgreSQL) ---------------------------------------------------


def command_body(stack: Stack) -> bytes:
    fields = stack.slack.command_payload("caches list", user_id=ADMIN, channel_id=OPS_CHANNEL)
    fields["team_id"] = "T0001"
    return urlencode(fields).encode()


@needs_postgres
def test_a_request_replayed_to_another_replica_gets_401(stack: Stack, postgres_url: str):
    db = Database(postgres_url)
    db.migrate()
    # Two replicas' fronts: each its own memory of signatures, one shared table.
    first, second = (front_for(stack, shared=SeenSignatures(db)) for _ in range(2))
    try:
        body = command_body(stack)
        ts = str(int(time.time()))
        mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
        headers = {
            "Content-Type": FORM_CONTENT_TYPE,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": "v0=" + mac.hexdigest(),
        }
        with httpx.Client(trust_env=False) as http:
            assert http.post(f"{first.url}{EVENTS_PATH}", content=body, headers=headers).is_success
            again = http.post(f"{second.url}{EVENTS_PATH}", content=body, headers=headers)
        assert again.status_code == 401
        assert again.json() == {"error": "invalid request"}
    finally:
        first.stop()
        second.stop()
        db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def test_seen_signatures_are_kept_while_they_could_pass_and_purged_after(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    url = (
        f"sqlite:///{tmp_path}/bot.db"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db = Database(url)
    db.migrate()
    now = [1_700_000_000.0]
    seen = SeenSignatures(db, clock=lambda: now[0])
    try:
        assert seen.first_sighting("v0=" + "a" * 64, int(now[0]))
        assert not seen.first_sighting("v0=" + "a" * 64, int(now[0]))
        now[0] += 2 * 300 + 1  # past the window and the margin for replicas' clocks
        seen._next_purge = 0  # the purge runs at most once a minute
        assert seen.first_sighting("v0=" + "b" * 64, int(now[0]))
        assert seen.count() == 1
    finally:
        db.dispose()


# --- a real process under attack ------------------------------------------------------------


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[BotProcess, SlackRequests, int]]:
    connect = FakeConnect(api_keys={CONNECT_KEY: "administrator"}, record_requests=False).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET).start()
    start_workspace(slack)
    health_port = free_port()
    process = BotProcess(
        connect_url=connect.url,
        slack_api_url=slack.api_url,
        database_url=f"sqlite:///{tmp_path}/bot.db",
        workdir=tmp_path,
        extra_env={"BOT_HEALTH_PORT": str(health_port)},
    )
    requests = SlackRequests(process.events_url, SIGNING_SECRET, slack)
    try:
        yield process, requests, health_port
    finally:
        requests.close()
        process.stop()
        slack.stop()
        connect.stop()


@pytest.mark.timeout(60)
def test_a_bot_process_refuses_eight_256_mib_posts_at_once_without_growing(bot):
    process, requests, _ = bot
    assert requests.command("caches list").status_code == 200  # warm: the baseline is honest
    baseline = process.peak_rss_mb()
    answers: list[Answer] = []

    def one(chunked: bool) -> None:
        answers.append(
            post_streamed(
                "127.0.0.1",
                process.port,
                EVENTS_PATH,
                UNSIGNED,
                body_chunks(HUGE),
                content_length=None if chunked else HUGE,
            )
        )

    threads = [threading.Thread(target=one, args=(n % 2 == 1,)) for n in range(EIGHT_TIMES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status or 0 for a in answers) == [401] * 4 + [413] * 4
    assert max(a.seconds for a in answers) < 2
    two_mib = post_streamed(
        "127.0.0.1",
        process.port,
        EVENTS_PATH,
        signed(2 * MIB),
        body_chunks(2 * MIB),
        content_length=2 * MIB,
    )
    assert two_mib.status == 413
    assert process.peak_rss_mb() - baseline < 64
    assert requests.command("caches list").status_code == 200  # and it still serves Slack


def test_the_start_up_log_names_the_addresses_bound(bot):
    process, _, health_port = bot
    expected = [
        f"listening on http://0.0.0.0:{process.port}/slack/events",  # not 127.0.0.1
        f"health checks on http://0.0.0.0:{health_port}/healthz",
    ]
    assert _eventually(lambda: all(line in process.log_path.read_text() for line in expected))


@pytest.mark.timeout(60)
def test_a_bot_process_answers_probes_and_slack_under_200_slow_connections(bot):
    process, requests, health_port = bot
    slow = SlowClients("127.0.0.1", process.port, 200, interval=1.0)
    try:
        latencies: dict[str, list[float]] = {"main": [], "health": []}
        until = time.monotonic() + 3  # the connections are held meanwhile
        while time.monotonic() < until:
            for name, port in (("main", process.port), ("health", health_port)):
                status, seconds = timed_get(f"http://127.0.0.1:{port}/healthz")
                assert status == 200
                latencies[name].append(seconds)
            time.sleep(0.2)
        started = time.monotonic()
        assert requests.command("caches list").status_code == 200
        assert time.monotonic() - started < 1
        assert timed_get(f"http://127.0.0.1:{health_port}/readyz")[0] == 200
        assert max(latencies["main"]) < 1 and max(latencies["health"]) < 1
        assert slow.closed() == 0  # all held open meanwhile: the attack was real
    finally:
        slow.close()
