"""The bot as a real process (`python -m bot serve`) pointed at simulators: for the restart
tests (SIGKILL) and the benchmarks (its own interpreter, its own RSS)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sim.stack import ADMIN, BOT_TOKEN, CONNECT_KEY, SIGNING_SECRET

# Ports for processes that must be told one (`PORT=`, `--port`): chosen below Linux's ephemeral
# range (32768-60999), so no socket bound to port 0 (every in-process simulator, every outgoing
# connection) can take one between the check here and the child's own bind. Each pytest-xdist
# worker draws from its own slice, and a random start keeps concurrent runs apart.
_PORT_BASE, _PORT_SLICE, _SLICES = 20000, 1500, 8
_next_port: int | None = None


def _slice() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3"; empty outside xdist
    return int(worker[2:]) % _SLICES if worker[2:].isdigit() else 0


def free_port() -> int:
    """A loopback port nobody listens on, for a child process to bind."""
    global _next_port
    first = _PORT_BASE + _slice() * _PORT_SLICE
    if _next_port is None:
        _next_port = first + random.randrange(_PORT_SLICE)
    for _ in range(_PORT_SLICE):
        port, _next_port = _next_port, first + (_next_port + 1 - first) % _PORT_SLICE
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: someone else's
            return port
    raise RuntimeError("no free port in this worker's slice")


class BotProcess:
    def __init__(
        self,
        *,
        connect_url: str,
        slack_api_url: str,
        database_url: str,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        start_timeout: float = 60,  # generous: a loaded CI machine starts a process slowly
    ) -> None:
        self.port = free_port()
        # Only the simulators' settings: nothing of the developer's own configuration or proxies.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CONNECT_", "SLACK_", "BOT_")) and "PROXY" not in k.upper()
        }
        env.update(
            CONNECT_SERVER=connect_url,
            CONNECT_API_KEY=CONNECT_KEY,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack_api_url,
            BOT_DATABASE_URL=database_url,
            BOT_ADMIN_USERS=ADMIN,
            PORT=str(self.port),
        )
        env.update(extra_env or {})
        self.log_path = workdir / f"bot-{self.port}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_healthy(start_timeout)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the bot did not start:\n{self.log_path.read_text()}")

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def instance_id(self) -> str:
        """The process's instance id, as its /readyz says (several replicas)."""
        answer = httpx.get(f"{self.url}/readyz", timeout=5, trust_env=False).json()
        return str(answer["instance"])

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops a replica; its exit code."""
        self.proc.terminate()
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        """SIGKILL, and reap it (a zombie would still look alive to the rebuild lease check)."""
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
