"""Rebuild benchmark: connect-bot beside `rsconnect content build run`, same simulated Connect.

    .venv/bin/python bench/rebuild.py                  # every scenario, full size (~6 min)
    .venv/bin/python bench/rebuild.py --quick          # smaller scenarios (~3 min)
    .venv/bin/python bench/rebuild.py --scenario cold  # one of: cold, tail, dispatch, plan,
                                                       # visitors
    .venv/bin/python bench/rebuild.py --scenario plan --hits 2000000  # planning, with usage

The bot runs as a real process (`python -m bot serve`) against the Connect simulator and a fake
Slack, driven by signed slash commands and clicks; rsconnect runs as its own process against an
identical simulator. Times are taken from the simulator's build log (`FakeConnect.build_log`).

Scenarios (issue 11):
* cold: every runtime cache deleted, cold factor 4 (a build that starts while a cache it uses is
  missing takes 4x), six runtimes (3 R, 3 Python), 15 % of items using R and Python, K = 4
  build slots, parallelism 4. Bars: wall <= 1.10 x LB, and ahead of rsconnect.
* tail: caches warm, 5 % of items take 8x as long; the bot rebuilds twice (the second knows
  each item's duration from the first), rsconnect once. Bar: second rebuild wall <= 1.05 x LB.
* dispatch: 129 items, 1 s builds, 4 slots, parallelism 4: the bot against the simulator with
  TCP_NODELAY (as Connect, a Go server, answers), and, when Debian's nginx is installed,
  through nginx in front of it (nginx's default `tcp_nodelay on`). A server that writes with
  Nagle's algorithm on (`http.server`'s default, `FakeConnect(nagle=True)`) stalls ~40 ms per
  answer on whichever socket reads it, a proxy's included: no client option can fix that.
  Bar: wall <= 1.02 x the ideal (every slot busy from the first build: 33 s) for each; the gaps
  between a build's end and the next one's start are printed.
* visitors (issue 20): 160 items, 6 runtimes (3 R, 3 Python), every cache deleted, cold factor
  4, long-tailed build times (10 % take 6x), Zipf usage (`FakeConnect(usage_seed=...)`, a fifth
  never visited), K = 4; the bot rebuilds twice (the second knows the durations), rsconnect
  once, each on an identical simulator. The figure is the visitor-weighted wait: the sum over
  interactive items of visits per hour x the seconds from Start until the item's build ended
  (rendered and static items weigh 0). The reference is the same objective for a schedule
  computed with the true durations (`reference_wait`). Bars: second rebuild <= 1.10 x the
  reference, first <= 1.5 x; <= 0.4 x rsconnect's; the makespan <= 1.10 x LB.
* plan: 10,000 items, each using sf or numpy, rebuilt once (so every item has a history), then
  `rebuild --uses-package sf --uses-package numpy`: the plan card within 3 s of the command and
  the bot's peak RSS under 150 MB over the whole run (the second rebuild starts, builds a
  little and is cancelled).

Figures:
* wall: from the Start click (bot) or the launch of `rsconnect content build run` to the end of
  the last build on Connect. "to summary" / "to exit": to the bot's final summary in Slack, or
  to rsconnect's exit.
* LB (lower bound) = max(W / K, the longest single build), W = the sum of the warm durations +
  the extra cold time of the fewest builds covering every missing cache (an item using R and
  Python covers both; the cheapest such set).
* ideal for its order: the builds in the order the tool started them, each to the first free
  slot with no gap, taking the durations they really took (cold ones included).
* cold builds: builds that started while a cache they use was missing, and their extra seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)

from bot.connect import ContentItem  # noqa: E402
from bot.services.rebuilds.visitors import Job, schedule, visitor_order  # noqa: E402
from bot.services.rebuilds.warmup import Candidate, cheapest_cover  # noqa: E402
from bot.store import Database  # noqa: E402
from sim.connect_builds import item_runtimes  # noqa: E402
from sim.connect_seed import Seed, generated_seed, long_tailed_durations  # noqa: E402
from sim.connect_server import FakeConnect  # noqa: E402
from sim.process import BotProcess  # noqa: E402
from sim.slack import FakeSlack  # noqa: E402
from sim.slack_client import SlackRequests  # noqa: E402
from sim.stack import (  # noqa: E402
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    start_workspace,
)

RSCONNECT = Path(sys.executable).parent / "rsconnect"
COLD_RUNTIMES = [
    ("R", "4.3.0", ("shiny", "rmd-static", "api", "rmd-shiny")),
    ("R", "4.2.1", ("shiny", "rmd-static")),
    ("R", "4.1.3", ("rmd-static", "shiny")),
    ("Python", "3.11.3", ("python-dash", "python-fastapi", "quarto-static")),
    ("Python", "3.10.11", ("python-streamlit", "jupyter-static")),
    ("Python", "3.9.5", ("python-api", "jupyter-static")),
]


@dataclass
class Setup:
    """One scenario's simulated Connect: content, warm durations, slots, cold factor."""

    seed: Seed
    durations: dict[str, float]
    k: int
    cold_factor: float = 1.0
    cold: bool = False  # every cache deleted before the measured rebuild
    nagle: bool = False
    usage_seed: int | None = None  # the simulators' usage (None: nobody visits)
    verify: bool = True  # False: `--no-verify` (built items are not probed)

    @property
    def guids(self) -> list[str]:
        return [item["guid"] for item in self.seed.content if item.get("bundle_id") is not None]


@dataclass
class Run:
    tool: str
    items: int
    wall: float  # Start to the last build's end
    to_end: float  # Start to the summary (bot) / the exit (rsconnect)
    lower_bound: float
    ideal: float
    cold_builds: int
    cold_extra: float
    requests: int
    slack_calls: int | None
    rss_mb: float
    gaps_ms: list[float] = field(default_factory=list)
    detail: str = ""
    wait: float = 0.0  # visitor-weighted wait (visits/h x s), with usage

    @property
    def per_item(self) -> float:
        return self.requests / self.items


# --- lower bound and ideal ------------------------------------------------------------------


def runtime_keys(item: dict[str, Any]) -> frozenset[tuple[str, str]]:
    return frozenset((lang, ver) for lang, ver in item_runtimes(item) if ver)


def lower_bound(setup: Setup) -> tuple[float, float, int]:
    """(LB, W, size of the cheapest fewest cover) for the scenario (see the module docstring)."""
    items = [item for item in setup.seed.content if item.get("bundle_id") is not None]
    warm = sum(setup.durations[item["guid"]] for item in items)
    longest = max(setup.durations[item["guid"]] for item in items)
    extra, size = 0.0, 0
    if setup.cold and setup.cold_factor > 1:
        cheapest: dict[frozenset[tuple[str, str]], float] = {}
        for item in items:
            keys = runtime_keys(item)
            if keys:
                seconds = setup.durations[item["guid"]]
                cheapest[keys] = min(cheapest.get(keys, seconds), seconds)
        missing = frozenset().union(*cheapest)
        combos = list(cheapest.items())
        for size in range(1, len(missing) + 1):
            costs = [
                sum(seconds for _, seconds in chosen)
                for chosen in itertools.combinations(combos, size)
                if frozenset().union(*(keys for keys, _ in chosen)) == missing
            ]
            if costs:
                extra = (setup.cold_factor - 1) * min(costs)
                break
    work = warm + extra
    return max(work / setup.k, longest), work, size


def makespan(durations: list[float], k: int) -> float:
    """List scheduling of `durations` in order on k slots, each build to the first free slot."""
    slots = [0.0] * k
    for seconds in durations:
        heapq.heappush(slots, heapq.heappop(slots) + seconds)
    return max(slots)


def gaps(log: list[dict[str, Any]], k: int) -> list[float]:
    """Per build after the first k: its start minus the end that freed its slot (ms)."""
    starts = sorted(entry["started"] for entry in log)
    ends = sorted(entry["ended"] for entry in log)
    return [1000 * (starts[i] - ends[i - k]) for i in range(k, len(starts))]


# --- simulators and the bot -----------------------------------------------------------------


def start_connect(setup: Setup) -> FakeConnect:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"},
        seed=setup.seed,
        build_seconds=1.0,
        build_limit=setup.k,
        cold_factor=setup.cold_factor,
        nagle=setup.nagle,
        usage_seed=setup.usage_seed,
    ).start()
    connect.set_build_durations(setup.durations)
    connect.record_deployments()  # the restore each deployment left, as a real Connect lists
    return connect


def start_slack() -> FakeSlack:
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    return slack


@contextmanager
def nginx_in_front(upstream: str, workdir: Path) -> Iterator[str]:
    """Debian's nginx as a reverse proxy before the simulator, as many shops run Connect
    (keep-alive upstream, no buffering: long polls pass through as they come). Its own
    defaults are kept, tcp_nodelay on among them. Yields the proxy's URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    upstream connect {{ server {upstream.removeprefix("http://")}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://connect;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""
    )
    process = subprocess.Popen(["nginx", "-c", str(config), "-p", str(workdir)])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("nginx did not start: see nginx-error.log")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def start_bots(
    connect: FakeConnect,
    slack: FakeSlack,
    workdir: Path,
    database_url: str,
    replicas: int,
    connect_url: str | None = None,
) -> list[BotProcess]:
    return [
        BotProcess(
            connect_url=connect_url or connect.url,
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


def wait_plan_card(slack: FakeSlack, seen: set[str], timeout: float) -> Any:
    """The first plan card posted that is not in `seen` (a started card changes its text)."""

    def new_cards(s: FakeSlack) -> list[Any]:
        return [
            m
            for m in s.messages(OPS_CHANNEL)
            if m.text.startswith("Rebuild plan #") and m.ts not in seen
        ]

    if not slack.wait_for(lambda s: bool(new_cards(s)), timeout, interval=0.02):
        raise RuntimeError("no plan card")
    card = new_cards(slack)[0]
    seen.add(card.ts)
    return card


def final_summary(slack: FakeSlack, ts: str, timeout: float) -> bool:
    def done(s: FakeSlack) -> bool:
        return any(r.reply_broadcast for r in s.thread(OPS_CHANNEL, ts))

    return slack.wait_for(done, timeout, interval=0.02)


def measured(
    tool: str,
    setup: Setup,
    connect: FakeConnect,
    started: float,
    to_end: float,
    slack_calls: int | None,
    rss: float,
    detail: str,
) -> Run:
    log = connect.build_log()
    bound, _, _ = lower_bound(setup)
    rates = hourly_visits(setup, connect) if setup.usage_seed is not None else {}
    cold = [entry for entry in log if entry["cold"]]
    in_order = [entry["duration"] for entry in sorted(log, key=lambda e: e["started"])]
    return Run(
        tool=tool,
        items=len(setup.guids),
        wall=max(entry["ended"] for entry in log) - started,
        to_end=to_end,
        lower_bound=bound,
        ideal=makespan(in_order, setup.k),
        cold_builds=len(cold),
        cold_extra=sum(e["duration"] - setup.durations[e["guid"]] for e in cold),
        requests=len(connect.requests),
        slack_calls=slack_calls,
        rss_mb=rss,
        gaps_ms=gaps(log, setup.k),
        detail=detail + f"; Connect {_by_kind(connect)}",
        wait=sum(rates.get(e["guid"], 0.0) * (e["ended"] - started) for e in log),
    )


# --- visitors (issue 20) ----------------------------------------------------------------------


def hourly_visits(setup: Setup, connect: FakeConnect) -> dict[str, float]:
    """Visits per hour that wait on each item's build: interactive items only."""
    rates = connect.usage_rates()
    return {
        item["guid"]: rates.get(item["guid"], 0.0) / 24
        for item in setup.seed.content
        if ContentItem.from_json(item).interactive
    }


def reference_wait(setup: Setup, rates: dict[str, float]) -> tuple[float, float]:
    """(visitor-weighted wait, makespan) of the issue's reference schedule, with the true
    durations: the cheapest warm-up per cold runtime (cold), runtimes with the most visits
    first, then visits / duration, unvisited items longest first, list-scheduled on K slots."""
    items = [item for item in setup.seed.content if item.get("bundle_id") is not None]
    keys = {
        item["guid"]: tuple(sorted(f"{lang} {ver}" for lang, ver in runtime_keys(item)))
        for item in items
    }
    best: dict[tuple[str, ...], Candidate] = {}
    for position, item in enumerate(items):
        combo = keys[item["guid"]]
        candidate = Candidate(False, position, setup.durations[item["guid"]])
        if combo and (combo not in best or candidate.seconds < best[combo].seconds):
            best[combo] = candidate
    warm = set(cheapest_cover(best)) if setup.cold else set()
    jobs = [
        Job(
            key=position,
            runtimes=keys[item["guid"]],
            visitors=round(rates.get(item["guid"], 0.0) * 24 * 7),
            seconds=setup.durations[item["guid"]]
            * (setup.cold_factor if position in warm else 1.0),
            warmup=position in warm,
        )
        for position, item in enumerate(items)
    ]
    slots = schedule(visitor_order(jobs), setup.k)
    wait = sum(rates.get(items[s.job.key]["guid"], 0.0) * s.end for s in slots)
    return wait, max(s.end for s in slots)


def visitors_setup(items: int) -> Setup:
    seed = generated_seed(items, seed=14, runtimes=COLD_RUNTIMES, mixed_share=0.15)
    guids = [item["guid"] for item in seed.content]
    durations = long_tailed_durations(
        guids, seed=5, base=0.5, jitter=0.4, tail_share=0.1, tail_factor=6.0
    )
    return Setup(seed, durations, k=4, cold_factor=4.0, cold=True, usage_seed=20)


def run_bot(
    setup: Setup,
    workdir: Path,
    *,
    rebuilds: int = 1,
    database_url: str | None = None,
    replicas: int = 1,
    label: str = "connect-bot",
    via_nginx: bool = False,
) -> list[Run]:
    """`rebuilds` rebuilds of every published item in a row on one bot (the later ones know
    the earlier ones' durations); with `replicas`, the plan is asked of the first replica and
    Start clicked on the last, as a load balancer would spread them. `via_nginx`: the bot
    reaches the simulator through nginx."""
    url = database_url or f"sqlite:///{workdir / 'bot.db'}"
    connect = start_connect(setup)
    slack = start_slack()
    with contextlib.ExitStack() as stack:
        connect_url = (
            stack.enter_context(nginx_in_front(connect.url, workdir)) if via_nginx else None
        )
        return _run_bot(
            setup,
            workdir,
            connect=connect,
            slack=slack,
            url=url,
            rebuilds=rebuilds,
            replicas=replicas,
            label=label,
            connect_url=connect_url,
        )


def _run_bot(
    setup: Setup,
    workdir: Path,
    *,
    connect: FakeConnect,
    slack: FakeSlack,
    url: str,
    rebuilds: int,
    replicas: int,
    label: str,
    connect_url: str | None,
) -> list[Run]:
    bots = start_bots(connect, slack, workdir, url, replicas, connect_url)
    first = SlackRequests(f"{bots[0].url}/slack/events", SIGNING_SECRET, slack)
    last = SlackRequests(f"{bots[-1].url}/slack/events", SIGNING_SECRET, slack)
    runs: list[Run] = []
    seen: set[str] = set()
    try:
        for number in range(1, rebuilds + 1):
            if setup.cold:
                connect.remove_caches()
            connect.clear_requests()
            connect.clear_build_log()
            calls_before = len(slack.calls)
            no_verify = "" if setup.verify else " --no-verify"
            first.command(f"rebuild --parallelism {setup.k}{no_verify}")
            card = wait_plan_card(slack, seen, 120)
            started = time.monotonic()
            last.click(OPS_CHANNEL, card.ts, "rebuild_start")
            if not final_summary(slack, card.ts, len(setup.guids) * 10 + 60):
                raise RuntimeError("the rebuild did not finish")
            to_summary = time.monotonic() - started
            calls = Counter(c.method for c in slack.calls[calls_before:])
            name = label if rebuilds == 1 else f"{label} #{number}"
            runs.append(
                measured(
                    name,
                    setup,
                    connect,
                    started,
                    to_summary,
                    sum(calls.values()),
                    max(bot.peak_rss_mb() for bot in bots),
                    f"max concurrent builds {connect.max_concurrent_builds_seen()};"
                    f" Slack {dict(calls)}",
                )
            )
        return runs
    finally:
        first.close()
        last.close()
        for bot in bots:
            bot.stop()
        slack.stop()
        connect.stop()


def run_rsconnect(setup: Setup, workdir: Path) -> Run:
    connect = start_connect(setup)
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
        add = [str(RSCONNECT), "content", "build", "add", *server]
        for guid in setup.guids:
            add += ["-g", guid]
        subprocess.run(add, env=env, check=True, capture_output=True, timeout=300)
        if setup.cold:
            connect.remove_caches()
        connect.clear_requests()  # count the build run only
        run = [str(RSCONNECT), "content", "build", "run", "--parallelism", str(setup.k), *server]
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
            timeout=len(setup.guids) * 10 + 120,
        )
        to_exit = time.monotonic() - started
        rss = int(done.stderr.strip().splitlines()[-1]) / 1024
        return measured(
            "rsconnect", setup, connect, started, to_exit, None, rss, f"exit {done.returncode}"
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
            tail = path.rsplit("/", 1)[-1]
            path = "v1/content/{guid}" + (f"/{tail}" if tail in ("build", "jobs") else "")
        elif path.startswith("/content/"):
            path = "/content/{guid}/ (verification)"
        kinds[f"{r.method} {path}"] += 1
    return dict(kinds)


# --- the scenarios --------------------------------------------------------------------------


def cold_setup(items: int) -> Setup:
    seed = generated_seed(items, seed=11, runtimes=COLD_RUNTIMES, mixed_share=0.15)
    guids = [item["guid"] for item in seed.content]
    durations = long_tailed_durations(guids, seed=2, base=0.5, jitter=0.2, tail_share=0.0)
    return Setup(seed, durations, k=4, cold_factor=4.0, cold=True)


def tail_setup(items: int) -> Setup:
    seed = generated_seed(items, seed=12)
    guids = [item["guid"] for item in seed.content]
    durations = long_tailed_durations(guids, seed=3, base=0.4, tail_share=0.05, tail_factor=8.0)
    return Setup(seed, durations, k=4)


def dispatch_setup(build_seconds: float, *, nagle: bool) -> Setup:
    """The build loop alone, as rsconnect runs it: `--no-verify` (a verified item costs a few
    more requests after its build: the visitors scenario counts them)."""
    seed = generated_seed(129, seed=13)
    durations = {item["guid"]: build_seconds for item in seed.content}
    return Setup(seed, durations, k=4, nagle=nagle, verify=False)


def plan_check(
    items: int, workdir: Path, run_seconds: float = 5.0, hits: int = 0
) -> tuple[float, float, int]:
    """`rebuild --uses-package sf --uses-package numpy` over `items` items, every one using
    one of the two (R items sf, Python items numpy; three packages each), after a first rebuild
    of everything (so the plan reads a build history for every item): seconds from the command
    to the plan card, the bot's peak RSS (MB) over the whole run (the second rebuild is started,
    builds a little and is cancelled), and the number of items planned.

    `hits`: the simulator is Connect 2025.04 and its seeded Zipf usage is scaled so that the
    plan's usage window (BOT_USAGE_DAYS, 7) holds about that many hits, which every plan
    counts from the hits endpoint (one bare array, ~190 bytes a hit)."""
    seed = generated_seed(items, seed=14)
    packages = []
    for item in seed.content:
        r_item = item.get("r_version") is not None
        for name in ["sf", "dplyr", "ggplot2"] if r_item else ["numpy", "pandas", "requests"]:
            packages.append((item["guid"], name))
    setup = Setup(
        seed, {item["guid"]: 0.01 for item in seed.content}, k=16, usage_seed=14 if hits else None
    )
    connect = start_connect(setup)
    if hits:
        connect.version = "2025.04.0"
        rates = connect.usage_rates()
        scale = hits / (7 * sum(rates.values()))
        for guid, per_day in rates.items():
            connect.set_usage(guid, per_day * scale)
    for guid, name in packages:
        connect.add_package(guid, name)
    slack = start_slack()
    db_path = workdir / "bot.db"
    [bot] = start_bots(connect, slack, workdir, f"sqlite:///{db_path}", 1)
    requests = SlackRequests(f"{bot.url}/slack/events", SIGNING_SECRET, slack)
    seen: set[str] = set()
    try:
        requests.command("rebuild --parallelism 16")  # the history
        first = wait_plan_card(slack, seen, 300)
        requests.click(OPS_CHANNEL, first.ts, "rebuild_start")
        if not final_summary(slack, first.ts, 1800):
            raise RuntimeError("the first rebuild did not finish")
        started = time.monotonic()
        requests.command("rebuild --uses-package sf --uses-package numpy --parallelism 16")
        card = wait_plan_card(slack, seen, 300)
        to_card = time.monotonic() - started
        requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        time.sleep(run_seconds)  # let it build a little before the cancel (RSS under load)
        requests.command("rebuild cancel 2")
        final_summary(slack, card.ts, 60)
        with sqlite3.connect(db_path) as db:
            planned = db.execute(
                "SELECT count(*) FROM rebuild_items WHERE rebuild_id = 2"
            ).fetchone()[0]
        return to_card, bot.peak_rss_mb(), int(planned)
    finally:
        requests.close()
        bot.stop()
        slack.stop()
        connect.stop()


# --- report ---------------------------------------------------------------------------------


def report(title: str, setup: Setup, runs: list[Run]) -> None:
    bound, work, cover = lower_bound(setup)
    print(f"\n== {title}")
    print(
        f"{len(setup.guids)} items, K = {setup.k}, cold factor {setup.cold_factor:g},"
        f" W = {work:.1f} s{f' (cover: {cover} cold builds)' if setup.cold else ''},"
        f" longest build {max(setup.durations.values()):.2f} s, LB = {bound:.2f} s"
    )

    def gap_cell(r: Run) -> str:
        if not r.gaps_ms:
            return "-"
        return f"{statistics.mean(r.gaps_ms):.1f}/{max(r.gaps_ms):.0f}"

    rows = [
        ("wall, Start to last build done (s)", lambda r: f"{r.wall:.2f}"),
        ("to summary (bot) / exit (rsconnect) (s)", lambda r: f"{r.to_end:.2f}"),
        ("wall / LB", lambda r: f"{r.wall / r.lower_bound:.3f}"),
        ("ideal for its order (s)", lambda r: f"{r.ideal:.2f}"),
        ("wall / ideal for its order", lambda r: f"{r.wall / r.ideal:.3f}"),
        ("cold builds (extra s)", lambda r: f"{r.cold_builds} ({r.cold_extra:.1f})"),
        ("slot gaps, mean/max (ms)", gap_cell),
        ("Connect requests per item", lambda r: f"{r.per_item:.2f}"),
        ("Slack calls per rebuild", lambda r: "-" if r.slack_calls is None else str(r.slack_calls)),
        ("peak RSS (MB)", lambda r: f"{r.rss_mb:.1f}"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    print(f"{'':{width}}" + "".join(f"{r.tool:>18}" for r in runs))
    for name, cell in rows:
        print(f"{name:{width}}" + "".join(f"{cell(r):>18}" for r in runs))
    for r in runs:
        print(f"- {r.tool}: {r.detail}")


def visitors_scenario(items: int, place: Any, rsconnect: bool) -> list[tuple[str, bool]]:
    setup = visitors_setup(items)
    first, second = run_bot(setup, place("visitors-bot"), rebuilds=2)
    runs = [first, second] + ([run_rsconnect(setup, place("visitors-rsc"))] if rsconnect else [])
    report("visitors: Zipf usage, every cache deleted, cold factor 4, long tail", setup, runs)
    with FakeConnect(
        api_keys={CONNECT_KEY: "administrator"}, seed=setup.seed, usage_seed=setup.usage_seed
    ) as probe:
        rates = hourly_visits(setup, probe)
    reference, reference_span = reference_wait(setup, rates)
    visited = sum(1 for rate in rates.values() if rate > 0)
    print(
        f"visitor-weighted wait (visits/h x s): reference {reference:.2f}"
        f" (its makespan {reference_span:.2f} s); {visited} interactive items visited"
    )
    for run in runs:
        print(f"  {run.tool:>16}: {run.wait:.2f} = {run.wait / reference:.3f} x the reference")
    bars = [
        ("visitors: second rebuild wait <= 1.10 x reference", second.wait <= 1.10 * reference),
        ("visitors: first rebuild wait <= 1.5 x reference", first.wait <= 1.5 * reference),
        (
            "visitors: second rebuild makespan <= 1.10 x LB",
            second.wall <= 1.10 * second.lower_bound,
        ),
    ]
    if rsconnect:
        bars.append(("visitors: wait <= 0.4 x rsconnect's", second.wait <= 0.4 * runs[2].wait))
    return bars


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller scenarios")
    parser.add_argument(
        "--scenario",
        choices=("cold", "tail", "dispatch", "plan", "visitors", "all"),
        default="all",
    )
    parser.add_argument("--skip-rsconnect", action="store_true")
    parser.add_argument(
        "--hits",
        type=int,
        default=0,
        help="plan scenario: the hits in the plan's usage window (e.g. 2000000; 0: no usage)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="also run the dispatch scenario on N replicas on PostgreSQL (--postgres)",
    )
    parser.add_argument("--postgres", default=os.environ.get("BOT_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    every = {"cold", "tail", "dispatch", "plan", "visitors"}
    wanted = every if args.scenario == "all" else {args.scenario}
    if args.replicas > 1 and not args.postgres:
        parser.error("--replicas needs a PostgreSQL URL: --postgres or BOT_TEST_POSTGRES_URL")
    rsconnect = not args.skip_rsconnect and RSCONNECT.exists()
    bars: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        workdir = Path(tmp)

        def place(name: str) -> Path:
            path = workdir / name
            path.mkdir()
            return path

        if "cold" in wanted:
            setup = cold_setup(80 if args.quick else 160)
            [bot] = run_bot(setup, place("cold-bot"))
            runs = [bot] + ([run_rsconnect(setup, place("cold-rsc"))] if rsconnect else [])
            report("cold caches: every cache deleted, cold factor 4, 6 runtimes", setup, runs)
            bars.append(("cold: wall <= 1.10 x LB", bot.wall <= 1.10 * bot.lower_bound))
            if rsconnect:
                bars.append(("cold: ahead of rsconnect", bot.wall < runs[1].wall))
        if "tail" in wanted:
            setup = tail_setup(80 if args.quick else 160)
            first, second = run_bot(setup, place("tail-bot"), rebuilds=2)
            runs = [first, second] + (
                [run_rsconnect(setup, place("tail-rsc"))] if rsconnect else []
            )
            report("long tail: 5 % of items take 8x, caches warm", setup, runs)
            bars.append(
                ("tail: second rebuild wall <= 1.05 x LB", second.wall <= 1.05 * second.lower_bound)
            )
            if rsconnect:
                bars.append(("tail: ahead of rsconnect", second.wall < runs[2].wall))
        if "dispatch" in wanted:
            # Connect is a Go server (TCP_NODELAY on every socket); many shops put nginx
            # (tcp_nodelay on by default) in front. Both ways, nothing holds an answer back.
            seconds = 0.5 if args.quick else 1.0
            setup = dispatch_setup(seconds, nagle=False)
            runs = run_bot(setup, place("dispatch-bot"), label="connect-bot, Go-like Connect")
            if shutil.which("nginx"):
                runs += run_bot(
                    setup,
                    place("dispatch-nginx"),
                    via_nginx=True,
                    label="connect-bot via nginx",
                )
            else:
                print("nginx is not installed: the run through nginx is left out")
            if args.replicas > 1:
                with fresh_postgres_schema(args.postgres) as url:
                    runs += run_bot(
                        setup,
                        place("dispatch-replicas"),
                        database_url=url,
                        replicas=args.replicas,
                        label=f"connect-bot x{args.replicas}",
                    )
            if rsconnect:
                runs.append(run_rsconnect(setup, place("dispatch-rsc")))
            report("per-dispatch overhead: 129 items", setup, runs)
            for bot in runs:
                if bot.tool.startswith("connect-bot"):
                    bars.append(
                        (
                            f"dispatch ({bot.tool}): wall <= 1.02 x ideal",
                            bot.wall <= 1.02 * bot.ideal,
                        )
                    )
            bars.append(("dispatch: Connect requests per item <= 2.5", runs[0].per_item <= 2.5))
        if "visitors" in wanted:
            bars += visitors_scenario(80 if args.quick else 160, place, rsconnect)
        if "plan" in wanted:
            items = 2_000 if args.quick else 10_000
            to_card, rss, planned = plan_check(items, place("plan"), hits=args.hits)
            usage = f", {args.hits:,} hits in the usage window" if args.hits else ""
            print(
                f"\n== planning {items} items{usage}, --uses-package sf --uses-package numpy:"
                f" {planned} planned,"
                f" plan card in {to_card:.2f} s, bot peak RSS {rss:.1f} MB"
            )
            bars.append(("plan: card within 3 s", to_card <= 3.0))
            bars.append(("plan: peak RSS < 150 MB", rss < 150))
    print()
    for name, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
