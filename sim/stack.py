"""The whole thing on loopback: Connect simulator + fake Slack + the bot over real HTTP.

Used by `connect-bot demo`, the tests and the benchmarks. No credentials: every secret here is
a throwaway value known to the simulators.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import ExplicitSettings, Settings
from bot.runtime import Runtime, build_runtime
from sim.connect_seed import Seed, demo_seed
from sim.connect_server import FakeConnect
from sim.slack import FakeSlack
from sim.slack_client import SlackRequests

CONNECT_KEY = "sim-connect-admin-key"
BOT_TOKEN = "xoxb-sim-bot-token"
APP_TOKEN = "xapp-sim-app-token"
SIGNING_SECRET = "sim-signing-secret"
OPS_CHANNEL = "C0OPS"
AUDIT_CHANNEL = "C0AUDIT"
ADMIN = "U0ADMIN"
SECOND_ADMIN = "U0ADMIN2"
VIEWER = "U0VIEWER"


@dataclass
class Stack:
    connect: FakeConnect  # the default server's simulator
    slack: FakeSlack
    runtime: Runtime
    requests: SlackRequests
    workdir: Path
    _tmp: Any = field(default=None, repr=False)
    connects: dict[str, FakeConnect] = field(default_factory=dict)  # by server name

    @property
    def bot_url(self) -> str:
        assert self.runtime.http is not None
        return f"{self.runtime.http.url}/slack/events"

    def stop(self) -> None:
        if self.requests is not None:
            self.requests.close()  # its keep-alive connection would hold the bot's server open
        if self.runtime.socket_handler is not None:
            self.runtime.socket_handler.client.auto_reconnect_enabled = False
            self.slack.socket_close_connections()
        self.runtime.close()
        self.slack.stop()
        for connect in self.connects.values() or [self.connect]:
            connect.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _key(server: str) -> str:
    """Each simulated server has its own admin key, so a key sent to the wrong one fails."""
    return f"{CONNECT_KEY}-{server}" if server else CONNECT_KEY


def sim_settings(
    connect: FakeConnect, slack: FakeSlack, workdir: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "connect_server": connect.url,
        "connect_api_key": CONNECT_KEY,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "bot_database_url": f"sqlite:///{workdir / 'connect-bot.db'}",
        "bot_admin_users": [ADMIN, SECOND_ADMIN],
        "port": 0,
    }
    values.update(overrides)
    return ExplicitSettings(**values)


def start_workspace(slack: FakeSlack) -> None:
    slack.add_user(ADMIN, "ada", real_name="Ada Admin")
    slack.add_user(SECOND_ADMIN, "grace", real_name="Grace Admin")
    slack.add_user(VIEWER, "victor", real_name="Victor Viewer")
    slack.add_channel(OPS_CHANNEL, "connect-ops", bot_member=True)
    slack.add_channel(AUDIT_CHANNEL, "connect-audit", bot_member=True)
    slack.add_channel("C0LOBBY", "lobby", bot_member=False)


def start_stack(
    *,
    seed: Seed | None = None,
    servers: dict[str, Seed] | None = None,
    build_seconds: float = 0.3,
    build_limit: int = 4,
    cache_delete_seconds: float = 0.2,
    workdir: Path | None = None,
    connect_options: dict[str, Any] | None = None,
    **settings_overrides: Any,
) -> Stack:
    """The bot with a fake Slack and one Connect simulator, or one per name in `servers`
    (then the bot is configured with BOT_CONNECT_SERVERS, each with its own key)."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="connect-bot-")
        workdir = Path(tmp.name)
    seeds = servers or {"": seed or demo_seed()}
    connects = {
        name: FakeConnect(
            api_keys={_key(name): "administrator"},
            seed=server_seed,
            build_seconds=build_seconds,
            build_limit=build_limit,
            cache_delete_seconds=cache_delete_seconds,
            **(connect_options or {}),
        ).start()
        for name, server_seed in seeds.items()
    }
    connect = next(iter(connects.values()))
    if servers:
        settings_overrides = {
            "connect_server": None,
            "connect_api_key": None,
            "bot_connect_servers": ",".join(f"{n}={c.url}" for n, c in connects.items()),
            "connect_api_keys": {name: _key(name) for name in connects},
            **settings_overrides,
        }
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.scopes += ["channels:read", "groups:read"]  # manifest.yml's: conversations.members
    slack.start()
    start_workspace(slack)
    try:
        runtime = build_runtime(sim_settings(connect, slack, workdir, **settings_overrides))
    except Exception:
        slack.stop()
        for started in connects.values():
            started.stop()
        raise
    runtime.start_http(host="127.0.0.1", port=0)  # events in HTTP mode; health in both
    if runtime.settings.socket_mode:
        runtime.start_socket_mode()
    stack = Stack(connect, slack, runtime, None, workdir, tmp, connects if servers else {})  # type: ignore[arg-type]
    stack.requests = SlackRequests(stack.bot_url, SIGNING_SECRET, slack)
    return stack
