"""SIGTERM and SIGINT as real processes receive them: during the bot's start-up (a Slack API that
never answers, a migration lock held by another replica) the process ends at once with exit 0;
the simulators' commands end cleanly too. In a container these run as PID 1, where a signal
without a handler is ignored and `docker stop` has to kill (exit 137)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import needs_postgres
from sqlalchemy import text

from bot.store import Database
from bot.store.coordination import MIGRATION, lock_key, namespace_of
from sim.process import free_port
from sim.stack import ADMIN, BOT_TOKEN, CONNECT_KEY, SIGNING_SECRET


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONNECT_", "SLACK_", "BOT_")) and "PROXY" not in k.upper()
    }
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def bot_env(slack_api_url: str, database_url: str) -> dict[str, str]:
    return clean_env(
        CONNECT_SERVER="http://127.0.0.1:9",  # not asked during start-up
        CONNECT_API_KEY=CONNECT_KEY,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_api_url,
        BOT_DATABASE_URL=database_url,
        BOT_ADMIN_USERS=ADMIN,
        PORT=str(free_port()),
    )


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[int, float]:
    """Send the signal; the exit code and how long the process took to end."""
    began = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("the process ignored the signal for 10 s") from None
    return code, time.monotonic() - began


@pytest.fixture
def silent_slack() -> Iterator[tuple[str, list[socket.socket], socket.socket]]:
    """A 'Slack API' that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/", accepted, listener
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


def accepted_one(listener: socket.socket, accepted: list[socket.socket]) -> bool:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        return False
    accepted.append(conn)
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_slack_does_not_answer_ends_start_up_at_once(
    tmp_path: Path, silent_slack, signum: int
) -> None:
    url, accepted, listener = silent_slack
    log = (tmp_path / "bot.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=bot_env(url, f"sqlite:///{tmp_path / 'bot.db'}"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Positive marker: auth.test is under way (migration done, lock released).
        wait_until(lambda: accepted_one(listener, accepted), "the bot to call auth.test")
        code, took = stop(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "bot.log").read_text()
    assert code == 0, output
    assert took < 2, took
    assert "stopped during start-up" in output
    assert "Traceback" not in output


@needs_postgres
def test_sigterm_while_waiting_for_the_migration_lock_ends_start_up_and_lets_go(
    tmp_path: Path, postgres_url: str
) -> None:
    holder = Database(postgres_url)
    with holder.engine.connect() as conn:
        key = lock_key(MIGRATION, namespace_of(conn))
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()

        def waiting() -> int:
            with holder.engine.connect() as probe:
                return int(
                    probe.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND NOT granted"
                            " AND ((classid::bigint << 32) | objid::bigint) = :k"
                        ),
                        {"k": key},
                    ).scalar()
                )

        log = (tmp_path / "bot.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=tmp_path,
            env=bot_env("http://127.0.0.1:9/api/", postgres_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: waiting() == 1, "the bot to wait for the migration lock")
            code, took = stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        output = (tmp_path / "bot.log").read_text()
        assert code == 0, output
        assert took < 2, took
        # Its wait was cancelled with it: nobody queues for the lock behind us any more.
        wait_until(lambda: waiting() == 0, "the bot's session to let go", timeout=5)
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()
    holder.dispose()


@pytest.mark.parametrize(
    ("command", "banner", "probe"),
    [
        ("fake-connect", "Fake Posit Connect on", "/__api__/server_settings"),
        ("fake-slack", "Fake Slack Web API on", "/api/api.test"),
    ],
)
def test_the_simulators_end_cleanly_on_sigterm(command: str, banner: str, probe: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", command, "--port", str(port)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert banner in proc.stdout.readline()
        httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=5, trust_env=False)
        code, took = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = proc.stdout.read()
    assert code == 0, rest
    assert took < 5
    assert "Traceback" not in rest
