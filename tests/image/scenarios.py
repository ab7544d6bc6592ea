"""The image, built and run: `make image-test` (tests/image/run.sh) builds it, then runs this.

Not collected by `make test` (the name matches neither test_*.py nor *_test.py; run.sh names
the file). The bot runs from the image with the host's network; the simulators run here, from
the project's venv, on 127.0.0.1 (the image does not contain them). Everything is observed
from outside: HTTP answers, exit codes and times, what Connect received, what Slack was sent.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from sim.connect_seed import demo_seed, generated_seed
from sim.connect_server import FakeConnect
from sim.demo.narration import Demo
from sim.demo.play import (
    step_confirm_deletion,
    step_impact,
    step_plan_rebuild,
    step_request_deletion,
    step_run_rebuild,
    step_upgrade,
)
from sim.process import free_port
from sim.slack import FakeSlack
from sim.slack_client import SlackRequests
from sim.stack import (
    ADMIN,
    APP_TOKEN,
    AUDIT_CHANNEL,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SECOND_ADMIN,
    SIGNING_SECRET,
    start_workspace,
)

IMAGE = os.environ.get("BOT_TEST_IMAGE", "connect-bot:image-test")
POSTGRES_IMAGE = os.environ.get("BOT_TEST_POSTGRES_IMAGE", "local/postgres:15")
LABEL = "connect-bot-image-test"  # run.sh removes what a killed run left with this label
REPORT = os.environ.get("BOT_IMAGE_TEST_REPORT", "")
STOP_LIMIT = 10.0  # `docker stop`'s default grace period: beyond it, SIGKILL and exit 137


def report(line: str) -> None:
    """A line for run.sh's summary (stop times, exit codes)."""
    if REPORT:
        with open(REPORT, "a") as out:
            out.write(line + "\n")


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout.strip()


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class Container:
    """One `docker run -d --network host` container, removed at the end of the test."""

    def __init__(self, image: str, env: dict[str, str], *args: str, cmd: tuple[str, ...] = ()):
        self.name = f"cbtest-{secrets.token_hex(4)}"
        options = ["--name", self.name, "--label", LABEL, "--network", "host", *args]
        for key, value in env.items():
            options += ["-e", f"{key}={value}"]
        docker("run", "-d", *options, image, *cmd)

    def state(self, field: str) -> Any:
        return json.loads(docker("inspect", "-f", f"{{{{json .State.{field}}}}}", self.name))

    @property
    def running(self) -> bool:
        return bool(self.state("Running"))

    def logs(self) -> str:
        done = subprocess.run(
            ["docker", "logs", self.name], capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout + done.stderr

    def exec(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", self.name, *cmd],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> tuple[int, float]:
        """`docker stop` with its default grace (10 s): the exit code and how long it took."""
        began = time.monotonic()
        docker("stop", self.name, timeout=60)
        took = time.monotonic() - began
        return int(self.state("ExitCode")), took

    def kill(self) -> None:
        docker("kill", self.name)

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


class BotContainer(Container):
    def __init__(self, env: dict[str, str], *, data: str | None, health: bool = True) -> None:
        """`data`: a volume for /data (SQLite), or None for a tmpfs (PostgreSQL replicas)."""
        self.port = free_port()
        options = ["--read-only", "--tmpfs", "/tmp"]
        if data is None:
            options += ["--tmpfs", "/data:uid=10001,gid=10001"]
        else:
            options += ["-v", f"{data}:/data"]
        if health:  # the image's HEALTHCHECK, at a test's pace
            options += ["--health-interval=1s", "--health-start-period=60s"]
        super().__init__(IMAGE, {**env, "PORT": str(self.port)}, *options)
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=5, trust_env=False)

    def answers(self) -> bool:
        if not self.running:
            raise AssertionError(f"{self.name} exited:\n{self.logs()}")
        try:
            return self.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_up(self, timeout: float = 60) -> BotContainer:
        wait_until(self.answers, f"{self.name} to answer /healthz", timeout)
        return self

    @property
    def instance(self) -> str:
        return str(self.get("/readyz").json()["instance"])


@pytest.fixture
def made() -> Iterator[list[Container]]:
    """Every container and volume a test makes; removed after it, whatever happened."""
    containers: list[Container] = []
    try:
        yield containers
    finally:
        for container in containers:
            container.remove()


@pytest.fixture
def volume() -> Iterator[str]:
    name = f"cbtest-data-{secrets.token_hex(4)}"
    docker("volume", "create", "--label", LABEL, name)
    try:
        yield name
    finally:
        docker("volume", "rm", "-f", name, check=False)


def sims(seed: Any, build_seconds: float) -> tuple[FakeConnect, FakeSlack]:
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"},
        seed=seed,
        build_seconds=build_seconds,
        build_limit=4,
        cache_delete_seconds=0.1,
    ).start()
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    return connect, slack


@pytest.fixture
def demo_sims() -> Iterator[tuple[FakeConnect, FakeSlack]]:
    connect, slack = sims(demo_seed(), build_seconds=0.2)
    try:
        yield connect, slack
    finally:
        slack.stop()
        connect.stop()


ITEMS = 16


@pytest.fixture
def rebuild_sims() -> Iterator[tuple[FakeConnect, FakeSlack]]:
    """Sixteen published items, a second each, four at a time: a rebuild lasts ~4 s or more."""
    connect, slack = sims(generated_seed(ITEMS), build_seconds=1.0)
    try:
        yield connect, slack
    finally:
        slack.stop()
        connect.stop()


def bot_env(connect: FakeConnect, slack_api_url: str, **extra: str) -> dict[str, str]:
    return {
        "CONNECT_SERVER": connect.url,
        "CONNECT_API_KEY": CONNECT_KEY,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "BOT_ADMIN_USERS": f"{ADMIN},{SECOND_ADMIN}",
        "BOT_AUDIT_CHANNEL": AUDIT_CHANNEL,
        "BOT_LOG_FORMAT": "text",
        **extra,
    }


def build_posts(connect: FakeConnect) -> Counter[str]:
    """Build requests Connect received, by content GUID (accepted or not)."""
    return Counter(
        r.path.split("/")[-2]
        for r in list(connect.requests)
        if r.method == "POST" and r.path.endswith("/build")
    )


def summaries(slack: FakeSlack, ts: str) -> list[str]:
    """The final summaries broadcast in a rebuild's thread."""
    return [r.all_text() for r in slack.thread(OPS_CHANNEL, ts) if r.reply_broadcast]


def plan_and_start(slack: FakeSlack, bot: BotContainer) -> str:
    """`/connect rebuild --parallelism 4`, then Start on its card; the card's ts."""
    with SlackRequests(bot.events_url, SIGNING_SECRET, slack) as requests:
        assert requests.command("rebuild --parallelism 4", user_id=ADMIN).status_code == 200

        def cards() -> list[Any]:
            return [
                m
                for m in slack.messages(OPS_CHANNEL, include_broadcasts=False)
                if m.text.startswith("Rebuild plan #")
            ]

        wait_until(cards, "the rebuild plan card", 20)
        card = cards()[0]
        response = requests.click(OPS_CHANNEL, card.ts, "rebuild_start", user_id=ADMIN)
        assert response.status_code == 200
    return card.ts


def assert_built_once_with_one_summary(connect: FakeConnect, slack: FakeSlack, ts: str) -> None:
    wait_until(lambda: summaries(slack, ts), "the rebuild's final summary", 90)
    posts = build_posts(connect)
    published = {c["guid"] for c in connect.content() if c["bundle_id"] is not None}
    assert set(posts) == published
    assert set(posts.values()) == {1}, {g: n for g, n in posts.items() if n > 1}
    (summary,) = summaries(slack, ts)
    assert f"{len(published)} succeeded, 0 failed" in summary, summary


# ---- the image itself ------------------------------------------------------------------------


def test_image_user_healthcheck_single_process_and_no_simulator() -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", IMAGE))
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    # One process, no init: `serve` is PID 1 (checked running in the next test).
    assert config["Cmd"] == ["connect-bot", "serve"] and not config.get("Entrypoint")
    # The product only: the simulators run from the project's venv, never from the image.
    probe = "import importlib.util as u; print(u.find_spec('sim'), u.find_spec('bot.sim'))"
    found = docker("run", "--rm", "--network", "none", IMAGE, "python", "-c", probe)
    assert found == "None None", found


def test_the_demo_main_job_through_the_containerised_bot(
    demo_sims: tuple[FakeConnect, FakeSlack], volume: str, made: list[Container]
) -> None:
    connect, slack = demo_sims
    bot = BotContainer(bot_env(connect, slack.api_url), data=volume)
    made.append(bot)
    bot.wait_up()
    assert bot.get("/healthz").status_code == 200
    ready = bot.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    # The start-up line names the address bound (all interfaces), not a client's address.
    assert f"listening on http://0.0.0.0:{bot.port}/slack/events" in bot.logs()
    # uid 10001, one process (PID 1 is `connect-bot serve`), root filesystem read-only.
    assert bot.exec("id", "-u").stdout.strip() == "10001"
    cmdline = bot.exec("cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    assert "connect-bot serve" in cmdline, cmdline
    denied = bot.exec("touch", "/opt/connect-bot/x")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert bot.exec("touch", "/data/x", "/tmp/x").returncode == 0
    check = bot.exec("connect-bot", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    wait_until(lambda: bot.state("Health")["Status"] == "healthy", "HEALTHCHECK healthy", 60)

    # The demo's story, its own steps: the GDAL upgrade and the caches list, impact, delete
    # those caches with confirmation, plan and run a rebuild of what the deletion affected.
    with SlackRequests(bot.events_url, SIGNING_SECRET, slack) as requests:
        sims_only = SimpleNamespace(slack=slack, requests=requests, connect=connect)
        demo = Demo(stack=sims_only, out=io.StringIO())  # type: ignore[arg-type]
        step_upgrade(demo)
        card = step_request_deletion(demo, step_impact(demo))
        result = step_confirm_deletion(demo, card)
        plan = step_plan_rebuild(demo, result)
        step_run_rebuild(demo, plan)
    deletes = [
        r.json
        for r in connect.requests
        if r.method == "DELETE" and r.json and r.json.get("dry_run") is False
    ]
    assert len(deletes) == 2  # the caches of R 4.3.0 and R 3.6.3, both carrying sf
    assert sum(build_posts(connect).values()) >= 1
    assert len(summaries(slack, plan.ts)) == 1

    code, took = bot.stop()
    report(f"docker stop while idle: exit {code} in {took:.1f} s")
    assert code == 0, bot.logs()
    assert took < STOP_LIMIT


# ---- docker stop at three moments ------------------------------------------------------------


@pytest.fixture
def silent_slack() -> Iterator[tuple[str, Callable[[], bool]]]:
    """A Slack API on loopback that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []

    def accepted() -> bool:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return bool(held)
        held.append(conn)
        return True

    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/", accepted
    finally:
        for conn in held:
            conn.close()
        listener.close()


def test_docker_stop_during_start_up_with_a_slack_that_never_answers(
    demo_sims: tuple[FakeConnect, FakeSlack],
    silent_slack: tuple[str, Callable[[], bool]],
    volume: str,
    made: list[Container],
) -> None:
    connect, _ = demo_sims
    url, accepted = silent_slack
    bot = BotContainer(bot_env(connect, url), data=volume, health=False)
    made.append(bot)
    wait_until(accepted, "the containerised bot to call auth.test", 60)
    code, took = bot.stop()
    report(f"docker stop during start-up (Slack silent): exit {code} in {took:.1f} s")
    assert code == 0, bot.logs()
    assert took < STOP_LIMIT
    assert "stopped during start-up" in bot.logs()


def test_docker_stop_during_a_rebuild_then_a_second_container_finishes_it(
    rebuild_sims: tuple[FakeConnect, FakeSlack], volume: str, made: list[Container]
) -> None:
    connect, slack = rebuild_sims
    first = BotContainer(bot_env(connect, slack.api_url), data=volume, health=False)
    made.append(first)
    first.wait_up()
    ts = plan_and_start(slack, first)
    wait_until(lambda: sum(build_posts(connect).values()) >= 4, "builds under way", 30)
    assert not summaries(slack, ts)
    code, took = first.stop()
    report(f"docker stop during a rebuild: exit {code} in {took:.1f} s")
    assert code == 0, first.logs()
    assert took < STOP_LIMIT
    assert not summaries(slack, ts), "the rebuild finished before the stop: make it longer"

    second = BotContainer(bot_env(connect, slack.api_url), data=volume, health=False)
    made.append(second)
    second.wait_up()
    assert_built_once_with_one_summary(connect, slack, ts)


# ---- replicas: two containers on PostgreSQL in a third ---------------------------------------


@pytest.fixture
def postgres(made: list[Container]) -> str:
    port = free_port()
    made.append(Container(POSTGRES_IMAGE, {"PGPORT": str(port)}, "--tmpfs", "/tmp"))
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def accepts() -> bool:
        import psycopg

        try:
            psycopg.connect(url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    wait_until(accepts, "PostgreSQL in its container", 60)
    return url


@pytest.fixture
def long_rebuild_sims() -> Iterator[tuple[FakeConnect, FakeSlack]]:
    """24 items, 1.5 s each, four at a time: 9 s or more, time for a kill and a replacement."""
    connect, slack = sims(generated_seed(24), build_seconds=1.5)
    try:
        yield connect, slack
    finally:
        slack.stop()
        connect.stop()


def test_replicas_a_rebuild_survives_a_kill_and_a_rolling_replacement(
    long_rebuild_sims: tuple[FakeConnect, FakeSlack], postgres: str, made: list[Container]
) -> None:
    from bot.store import Database, Rebuild

    connect, slack = long_rebuild_sims
    env = bot_env(connect, slack.api_url, BOT_DATABASE_URL=postgres)
    replicas = [BotContainer(env, data=None, health=False)]
    made.extend(replicas)
    replicas[0].wait_up()  # the first migrates; the second finds the schema up to date
    replicas.append(BotContainer(env, data=None, health=False))
    made.append(replicas[1])
    replicas[1].wait_up()
    by_instance = {bot.instance: bot for bot in replicas}
    assert len(by_instance) == 2

    ts = plan_and_start(slack, replicas[1])
    wait_until(lambda: sum(build_posts(connect).values()) >= 4, "builds under way", 30)
    db = Database(postgres)
    try:
        with db.session() as session:
            (driver_id,) = [r.driver for r in session.query(Rebuild).all()]
    finally:
        db.dispose()
    driver = by_instance[str(driver_id)]
    other = next(bot for bot in replicas if bot is not driver)

    driver.kill()  # as an OOM kill or a lost node: nothing is handed over
    wait_until(lambda: not driver.running, "the killed replica to be gone", 10)
    assert int(driver.state("ExitCode")) == 137
    killed_at = time.time()
    # A rolling replacement of the survivor: the new one up first, then the old one stopped.
    replacement = BotContainer(env, data=None, health=False)
    made.append(replacement)
    replacement.wait_up()
    assert not summaries(slack, ts), "the rebuild finished too early: make it longer"
    code, took = other.stop()
    report(f"docker stop of a replica during a rebuild (PostgreSQL): exit {code} in {took:.1f} s")
    assert code == 0, other.logs()
    assert took < STOP_LIMIT
    assert_built_once_with_one_summary(connect, slack, ts)
    # The survivors carried on the killed driver's work.
    assert any(
        r.time > killed_at for r in connect.requests if r.method == "POST" and "/build" in r.path
    )


def teardown_module() -> None:
    for name in docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split():
        docker("volume", "rm", "-f", name, check=False)
