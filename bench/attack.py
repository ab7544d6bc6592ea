"""The attacks of issue 17 against a real bot process (`python -m bot serve`, HTTP mode).

1. Eight unsigned POSTs to /slack/events at once, each with a 256 MiB body (half with
   Content-Length, half chunked), then one correctly signed POST with a 2 MiB body: the status
   and seconds of each answer, and the bot's peak RSS growth (VmHWM, from /proc).
2. 200 connections sending a request header one byte a second, held `--hold` seconds: the
   latency of /healthz on PORT and on BOT_HEALTH_PORT, and of a signed command, meanwhile.
3. SIGTERM with those 200 connections still open: how long the process takes to exit.

Bars (issue 17's proof): 413 or 401 within 2 s; RSS growth under 64 MiB; /healthz under 1 s.

    .venv/bin/python bench/attack.py [--hold 5]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.attack import (  # noqa: E402
    MIB,
    Answer,
    SlowClients,
    body_chunks,
    post_streamed,
    timed_get,
)
from sim.connect_server import FakeConnect  # noqa: E402
from sim.process import BotProcess, free_port  # noqa: E402
from sim.slack import FakeSlack  # noqa: E402
from sim.slack_client import FORM_CONTENT_TYPE, SlackRequests  # noqa: E402
from sim.stack import BOT_TOKEN, CONNECT_KEY, SIGNING_SECRET, start_workspace  # noqa: E402

EVENTS = "/slack/events"


def signed_headers(size: int) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode(), hashlib.sha256)
    for chunk in body_chunks(size):
        mac.update(chunk)
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }


def huge_posts(bot: BotProcess) -> None:
    answers: list[tuple[str, Answer]] = []

    def one(chunked: bool) -> None:
        answer = post_streamed(
            "127.0.0.1",
            bot.port,
            EVENTS,
            {"Content-Type": FORM_CONTENT_TYPE},
            body_chunks(256 * MIB),
            content_length=None if chunked else 256 * MIB,
        )
        answers.append(("chunked" if chunked else "content-length", answer))

    baseline = bot.peak_rss_mb()
    threads = [threading.Thread(target=one, args=(n % 2 == 1,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for kind, answer in sorted(answers, key=lambda pair: pair[0]):
        print(
            f"  unsigned 256 MiB ({kind:14}): HTTP {answer.status} in {answer.seconds:.3f} s,"
            f" {answer.sent / MIB:.1f} MiB sent before the answer"
        )
    signed = post_streamed(
        "127.0.0.1",
        bot.port,
        EVENTS,
        signed_headers(2 * MIB),
        body_chunks(2 * MIB),
        content_length=2 * MIB,
    )
    print(f"  signed 2 MiB: HTTP {signed.status} in {signed.seconds:.3f} s")
    growth = bot.peak_rss_mb() - baseline
    print(f"  peak RSS {baseline:.1f} MiB before, growth {growth:.1f} MiB (bar: < 64)")


def slow_clients(bot: BotProcess, health_port: int, requests: SlackRequests, hold: float) -> None:
    slow = SlowClients("127.0.0.1", bot.port, 200, interval=1.0)
    main: list[float] = []
    health: list[float] = []
    commands: list[float] = []
    failures = 0
    until = time.monotonic() + hold
    while time.monotonic() < until:
        for port, into in ((bot.port, main), (health_port, health)):
            status, seconds = timed_get(f"http://127.0.0.1:{port}/healthz")
            failures += status != 200
            into.append(seconds)
        started = time.monotonic()
        failures += requests.command("caches list").status_code != 200
        commands.append(time.monotonic() - started)
        time.sleep(0.2)
    for name, values in (
        ("/healthz on PORT", main),
        ("/healthz on BOT_HEALTH_PORT", health),
        ("signed `caches list`", commands),
    ):
        print(
            f"  {name:28}: p50 {statistics.median(values) * 1000:.1f} ms,"
            f" max {max(values) * 1000:.1f} ms over {len(values)} (bar: < 1 s)"
        )
    print(f"  failed answers: {failures}; slow connections closed by the bot: {slow.closed()}")
    started = time.monotonic()
    code = bot.terminate(timeout=30)
    took = time.monotonic() - started
    print(f"  SIGTERM with 200 slow connections open: exit {code} in {took:.2f} s")
    slow.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=5, help="seconds to hold the slow clients")
    args = parser.parse_args()
    connect = FakeConnect(api_keys={CONNECT_KEY: "administrator"}, record_requests=False).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET).start()
    start_workspace(slack)
    with tempfile.TemporaryDirectory(prefix="connect-bot-attack-") as tmp:
        health_port = free_port()
        bot = BotProcess(
            connect_url=connect.url,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{tmp}/bot.db",
            workdir=Path(tmp),
            extra_env={"BOT_HEALTH_PORT": str(health_port)},
        )
        requests = SlackRequests(bot.events_url, SIGNING_SECRET, slack)
        try:
            requests.command("caches list")  # warm, so the RSS baseline is honest
            print("1. eight unsigned 256 MiB POSTs at once, then a signed 2 MiB POST")
            huge_posts(bot)
            print(f"2. 200 slow connections held {args.hold:.0f} s")
            slow_clients(bot, health_port, requests, args.hold)
        finally:
            requests.close()
            bot.stop()
            slack.stop()
            connect.stop()


if __name__ == "__main__":
    main()
