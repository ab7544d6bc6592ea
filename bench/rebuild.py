"""Rebuild benchmark: connect-bot's engine vs `rsconnect content build run`, same simulated server.

    .venv/bin/python bench/rebuild.py            # 500 items, K=8, builds ~1 s, + 10,000-item RSS
    .venv/bin/python bench/rebuild.py --quick    # 120 items, a 2,000-item RSS check

Setup: the Connect simulator (generated_seed) with a server-side build limit K, every build
lasting 0.8-1.2 s (fixed per item, seeded); the bot runs as a real process (`python -m bot
serve`) against it and a fake Slack, driven by signed slash commands and clicks; parallelism K.

Figures:
* wall: from the Start click to the final summary in Slack (bot); from the start to the exit of
  `rsconnect content build run` (rsconnect).
* ideal: the zero-overhead makespan of the same plan: items in the order the tool dispatched them,
  each to the first free of K slots, with the bot's warm-up barrier (wave 1 starts when the
  warm-up wave is done). "no-warm-up ideal" drops the barrier; it is the ideal for rsconnect,
  which has no warm-up wave. lower bound = max(sum of durations / K, longest build).
* Connect requests per item: every request the tool made (planning included) / items.
* Slack calls per rebuild: Web API calls from the plan card to the final summary.
* peak RSS: VmHWM of the bot process; ru_maxrss of rsconnect.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)

from sqlalchemy import select  # noqa: E402

from bot.sim.connect_seed import generated_seed  # noqa: E402
from bot.sim.connect_server import FakeConnect  # noqa: E402
from bot.sim.process import BotProcess  # noqa: E402
from bot.sim.slack import FakeSlack  # noqa: E402
from bot.sim.slack_client import SlackRequests  # noqa: E402
from bot.sim.stack import (  # noqa: E402
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    start_workspace,
)
from bot.store import Database, RebuildItem  # noqa: E402

RSCONNECT = Path(sys.executable).parent / "rsconnect"


@dataclass
class Result:
    tool: str
    items: int
    wall: float
    span: float
    ideal: float
    ideal_no_warmup: float
    lower_bound: float
    requests: int
    slack_calls: int | None
    rss_mb: float
    detail: str = ""

    @property
    def per_item(self) -> float:
        return self.requests / self.items


# --- simulator and bot process ------------------------------------------------------------


def durations_for(guids: list[str], seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    return {guid: round(rng.uniform(0.8, 1.2), 3) for guid in guids}


def start_connect(items: int, k: int, durations: dict[str, float] | None) -> FakeConnect:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"},
        seed=generated_seed(items),
        build_seconds=1.0,
        build_limit=k,
    ).start()
    for guid, seconds in (durations or {}).items():
        connect.set_build_duration(guid, seconds)
    return connect


def start_bots(
    connect: FakeConnect, slack: FakeSlack, workdir: Path, database_url: str, replicas: int
) -> list[BotProcess]:
    return [
        BotProcess(
            connect_url=connect.url,
            slack_api_url=slack.api_url,
            database_url=database_url,
            workdir=workdir,
            extra_env={"BOT_LOG_LEVEL": "WARNING"},
        )
        for _ in range(replicas)
    ]


@contextmanager
def fresh_postgres_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a new schema, dropped afterwards (as the tests do)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    schema = f"bench_{secrets.token_hex(4)}"
    admin = Database(url)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def start_slack() -> FakeSlack:
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    return slack


def plan_card(slack: FakeSlack, timeout: float) -> Any:
    def found(s: FakeSlack) -> bool:
        return any("Rebuild plan" in m.text for m in s.messages(OPS_CHANNEL))

    if not slack.wait_for(found, timeout, interval=0.05):
        raise RuntimeError("no plan card")
    return next(m for m in slack.messages(OPS_CHANNEL) if "Rebuild plan" in m.text)


def final_summary(slack: FakeSlack, ts: str, timeout: float) -> bool:
    def done(s: FakeSlack) -> bool:
        return any(r.reply_broadcast for r in s.thread(OPS_CHANNEL, ts))

    return slack.wait_for(done, timeout, interval=0.02)


# --- ideal schedules ----------------------------------------------------------------------


def makespan(order: list[tuple[float, int]], k: int, barrier: bool) -> float:
    """List scheduling of (duration, wave) in order on k slots; optional warm-up barrier."""
    slots = [0.0] * k
    heapq.heapify(slots)
    warm_end = 0.0
    for duration, wave in order:
        if barrier and wave == 0:
            start = heapq.heappop(slots)
            warm_end = max(warm_end, start + duration)
            heapq.heappush(slots, start + duration)
            continue
        start = max(heapq.heappop(slots), warm_end if barrier else 0.0)
        heapq.heappush(slots, start + duration)
    return max(slots)


def ideals(order: list[tuple[float, int]], k: int) -> tuple[float, float, float]:
    total = sum(d for d, _ in order)
    bound = max(total / k, max(d for d, _ in order))
    return makespan(order, k, True), makespan(order, k, False), bound


def span_of(connect: FakeConnect) -> float:
    posts = [r.time for r in connect.requests if r.method == "POST"]
    ends = [r.time + r.duration for r in connect.requests if "/tasks/" in r.path]
    return max(ends) - min(posts) if posts and ends else float("nan")


# --- the two runs -------------------------------------------------------------------------


def run_bot(
    items: int,
    k: int,
    durations: dict[str, float],
    workdir: Path,
    database_url: str | None = None,
    replicas: int = 1,
) -> Result:
    """One bot process on SQLite, or `replicas` processes on one PostgreSQL database: the
    plan is asked of the first replica and Start clicked on the last, as a load balancer
    would spread them."""
    url = database_url or f"sqlite:///{workdir / 'bot.db'}"
    connect = start_connect(items, k, durations)
    slack = start_slack()
    bots = start_bots(connect, slack, workdir, url, replicas)
    first = SlackRequests(f"{bots[0].url}/slack/events", SIGNING_SECRET, slack)
    last = SlackRequests(f"{bots[-1].url}/slack/events", SIGNING_SECRET, slack)
    db = Database(url)
    try:
        calls_before = len(slack.calls)
        first.command(f"rebuild --parallelism {k}")
        card = plan_card(slack, 120)
        started = time.monotonic()
        last.click(OPS_CHANNEL, card.ts, "rebuild_start")
        if not final_summary(slack, card.ts, items * 3 + 60):
            raise RuntimeError("the rebuild did not finish")
        wall = time.monotonic() - started
        rss = max(bot.peak_rss_mb() for bot in bots)
        slack_calls = Counter(c.method for c in slack.calls[calls_before:])
        with db.session() as session:
            rows = session.execute(
                select(RebuildItem.guid, RebuildItem.wave, RebuildItem.state).order_by(
                    RebuildItem.wave, RebuildItem.position
                )
            ).all()
        order = [(durations[guid], wave) for guid, wave, _ in rows]
        states = Counter(state for _, _, state in rows)
        ideal, no_warm, bound = ideals(order, k)
        builds = Counter(connect.builds_started())
        return Result(
            tool="connect-bot" if replicas == 1 else f"connect-bot x{replicas}",
            items=items,
            wall=wall,
            span=span_of(connect),
            ideal=ideal,
            ideal_no_warmup=no_warm,
            lower_bound=bound,
            requests=len(connect.requests),
            slack_calls=sum(slack_calls.values()),
            rss_mb=rss,
            detail=(
                f"states {dict(states)}; builds per item max {max(builds.values())};"
                f" max concurrent builds {connect.max_concurrent_builds_seen()};"
                f" Slack {dict(slack_calls)}; Connect {_by_kind(connect)}"
            ),
        )
    finally:
        first.close()
        last.close()
        for bot in bots:
            bot.stop()
        db.dispose()
        slack.stop()
        connect.stop()


def run_rsconnect(items: int, k: int, durations: dict[str, float], workdir: Path) -> Result:
    connect = start_connect(items, k, durations)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CONNECT_", "RSCONNECT_", "XDG_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        CONNECT_CONTENT_BUILD_DIR=str(workdir / "rsconnect-build"),
        RSCONNECT_DISABLE_VERSION_CHECK="1",
        PYTHONWARNINGS="ignore",
    )
    server = ["--server", connect.url, "--api-key", CONNECT_KEY]
    try:
        guids = [item["guid"] for item in connect.content() if item["bundle_id"] is not None]
        add = [str(RSCONNECT), "content", "build", "add", *server]
        for guid in guids:
            add += ["-g", guid]
        subprocess.run(add, env=env, check=True, capture_output=True, timeout=300)
        connect.clear_requests()  # count the build run only; `add` is printed apart
        run = [str(RSCONNECT), "content", "build", "run", "--parallelism", str(k), *server]
        measure = (
            "import resource, subprocess, sys;"
            "code = subprocess.run(sys.argv[1:]).returncode;"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
            "sys.exit(code)"
        )
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", measure, *run],
            env=env,
            capture_output=True,
            text=True,
            timeout=items * 3 + 120,
        )
        wall = time.monotonic() - started
        rss = int(done.stderr.strip().splitlines()[-1]) / 1024
        posts = [r for r in connect.requests if r.method == "POST"]
        order_guids = [r.path.split("/")[-2] for r in sorted(posts, key=lambda r: r.time)]
        order = [(durations[guid], 1) for guid in order_guids]
        _, no_warm, bound = ideals(order, k)
        return Result(
            tool="rsconnect",
            items=items,
            wall=wall,
            span=span_of(connect),
            ideal=no_warm,
            ideal_no_warmup=no_warm,
            lower_bound=bound,
            requests=len(connect.requests),
            slack_calls=None,
            rss_mb=rss,
            detail=f"exit {done.returncode}; Connect {_by_kind(connect)}",
        )
    finally:
        connect.stop()


def _by_kind(connect: FakeConnect) -> dict[str, int]:
    kinds: Counter[str] = Counter()
    for r in connect.requests:
        path = r.path.removeprefix("/__api__/")
        if path.startswith("v1/tasks/"):
            path = "v1/tasks/{id}"
        elif path.startswith("v1/content/"):
            path = "v1/content/{guid}" + ("/build" if path.endswith("/build") else "")
        kinds[f"{r.method} {path}"] += 1
    return dict(kinds)


def rss_check(items: int, workdir: Path, run_seconds: float = 8.0) -> tuple[float, float, int]:
    """Plan and persist `items`, start, run a little, cancel; the bot's peak RSS (MB)."""
    connect = start_connect(items, 16, None)
    connect.build_seconds = 0.05
    slack = start_slack()
    db_path = workdir / "bot.db"
    [bot] = start_bots(connect, slack, workdir, f"sqlite:///{db_path}", 1)
    requests = SlackRequests(f"{bot.url}/slack/events", SIGNING_SECRET, slack)
    try:
        started = time.monotonic()
        requests.command("rebuild --parallelism 16")
        card = plan_card(slack, 300)
        planning = time.monotonic() - started
        requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        time.sleep(run_seconds)
        requests.command("rebuild cancel 1")
        final_summary(slack, card.ts, 60)
        with sqlite3.connect(db_path) as db:
            built = db.execute(
                "SELECT count(*) FROM rebuild_items WHERE state IN ('succeeded', 'failed')"
            ).fetchone()[0]
        return bot.peak_rss_mb(), planning, int(built)
    finally:
        requests.close()
        bot.stop()
        slack.stop()
        connect.stop()


# --- report -------------------------------------------------------------------------------


def report(results: list[Result]) -> None:
    rows = [
        ("wall time (s)", lambda r: f"{r.wall:.2f}"),
        ("build span, first POST to last task end (s)", lambda r: f"{r.span:.2f}"),
        ("ideal for its plan (s)", lambda r: f"{r.ideal:.2f}"),
        ("  no-warm-up ideal (s)", lambda r: f"{r.ideal_no_warmup:.2f}"),
        ("  lower bound sum/K (s)", lambda r: f"{r.lower_bound:.2f}"),
        ("wall / ideal", lambda r: f"{r.wall / r.ideal:.3f}"),
        ("wall / no-warm-up ideal", lambda r: f"{r.wall / r.ideal_no_warmup:.3f}"),
        ("Connect requests per item", lambda r: f"{r.per_item:.2f}"),
        ("Slack calls per rebuild", lambda r: "-" if r.slack_calls is None else str(r.slack_calls)),
        ("peak RSS (MB)", lambda r: f"{r.rss_mb:.1f}"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    print(f"{'':{width}}" + "".join(f"{r.tool:>16}" for r in results))
    for name, cell in rows:
        print(f"{name:{width}}" + "".join(f"{cell(r):>16}" for r in results))
    for r in results:
        print(f"- {r.tool}: {r.detail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="120 items; 2,000-item RSS check")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("-k", type=int, default=8, help="build limit = parallelism (default 8)")
    parser.add_argument("--rss-items", type=int, default=None)
    parser.add_argument("--skip-rsconnect", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="also run the bot as N replicas on PostgreSQL (BOT_TEST_POSTGRES_URL or --postgres)",
    )
    parser.add_argument("--postgres", default=os.environ.get("BOT_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    items = args.items or (120 if args.quick else 500)
    rss_items = args.rss_items or (2_000 if args.quick else 10_000)
    guids = [item["guid"] for item in generated_seed(items).content]
    durations = durations_for(guids)
    results: list[Result] = []
    mean = sum(durations.values()) / items
    print(f"{items} items, K = {args.k}, builds 0.8-1.2 s (mean {mean:.2f} s)")
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        workdir = Path(tmp)
        (workdir / "bot").mkdir()
        results.append(run_bot(items, args.k, durations, workdir / "bot"))
        if args.replicas > 1:
            if not args.postgres:
                parser.error(
                    "--replicas needs a PostgreSQL URL: --postgres or BOT_TEST_POSTGRES_URL"
                )
            (workdir / "replicas").mkdir()
            with fresh_postgres_schema(args.postgres) as url:
                results.append(
                    run_bot(items, args.k, durations, workdir / "replicas", url, args.replicas)
                )
        if not args.skip_rsconnect and RSCONNECT.exists():
            (workdir / "rsc").mkdir()
            results.append(run_rsconnect(items, args.k, durations, workdir / "rsc"))
        report(results)
        if not args.skip_rss:
            (workdir / "rss").mkdir()
            rss, planning, built = rss_check(rss_items, workdir / "rss")
            verdict = "OK" if rss < 150 else "OVER"
            print(
                f"{rss_items}-item plan: planned and persisted in {planning:.1f} s, started,"
                f" {built} items built, cancelled; bot peak RSS {rss:.1f} MB (< 150 MB: {verdict})"
            )
    bot = results[0]
    bars = [
        ("wall/ideal <= 1.05", bot.wall / bot.ideal <= 1.05),
        ("Connect requests per item <= 2.5", bot.per_item <= 2.5),
    ]
    rsc_results = [r for r in results if r.tool == "rsconnect"]
    if rsc_results:
        rsc = rsc_results[0]
        bars.append(
            ("ahead of rsconnect on wall/ideal", bot.wall / bot.ideal < rsc.wall / rsc.ideal)
        )
        bars.append(("ahead of rsconnect on requests per item", bot.per_item < rsc.per_item))
    for name, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        print(json.dumps([r.__dict__ for r in results], default=str))
    return 0 if all(ok for _, ok in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
