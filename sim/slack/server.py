"""FakeSlack, the facade composing the workspace, Web API, response_urls, interactions,
Socket Mode and query parts behind one HTTP server; and ``main()`` for the CLI."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Iterable

from sim.slack.http import FakeSlackHTTPServer
from sim.slack.modals import ModalsApi
from sim.slack.queries import QueriesMixin
from sim.slack.socket_mode import SocketModeMixin, SocketModeServer
from sim.slack.users_api import UsersApiMixin
from sim.slack.views_api import ViewsApi
from sim.slack.web_api import WebApiMixin

log = logging.getLogger(__name__)


class FakeSlack(WebApiMixin, SocketModeMixin, QueriesMixin, UsersApiMixin):
    """A fake Slack workspace reachable over real HTTP (and WebSocket) on loopback.

    with FakeSlack() as slack:                       # or slack = FakeSlack().start()
        slack.add_channel("C0OPS", "connect-ops")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        ...                                          # drive the bot
        slack.wait_for(lambda s: s.messages("C0OPS"))
        assert slack.calls_to("chat.update")[-1].params["parse"] == "none"

    Scopes are enforced as Slack does (e.g. conversations.info needs channels:read or
    groups:read, which the default scope list lacks).
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        signing_secret: str = "test-signing-secret",
        # The scopes an app created from manifest.yml gets (plus users:read).
        scopes: Iterable[str] = (
            "commands",
            "chat:write",
            "users:read",
            "usergroups:read",
            "users:read.email",
            "im:write",
            "channels:history",
            "groups:history",
            "im:history",
        ),
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T0001",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0001",
        bot_name: str = "connect-bot",
        socket_ping_interval: float | None = 20.0,
    ) -> None:
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.scopes: list[str] = list(scopes)
        self.host, self.port = host, port
        self._init_workspace(
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            bot_name=bot_name,
        )
        self._init_faults()
        self._init_response_urls()
        self._init_interactions()
        self._init_web_api()
        self._init_users_api()  # users.lookupByEmail, conversations.open (DMs)
        self.views = ViewsApi(self)  # views.publish, App Home, app_home_opened payloads
        self.modals = ModalsApi(self)  # views.open, open modals, view_submission payloads

        self._http: FakeSlackHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._socket = SocketModeServer(self, host, socket_ping_interval)
        self.add_user(bot_user_id, bot_name, is_bot=True)

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("FakeSlack is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def start(self) -> FakeSlack:
        if self._http is not None:
            return self
        self._http = FakeSlackHTTPServer((self.host, self.port), self)
        self.port = self._http.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
            name=f"fake-slack-http-{self.port}",
        )
        self._http_thread.start()
        log.debug("fake Slack listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._socket.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until stop() or Ctrl-C."""
        self.start()
        try:
            while self._http is not None:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def _pair(value: str) -> tuple[str, str]:
    ident, sep, name = value.partition(":")
    if not sep or not ident or not name:
        raise argparse.ArgumentTypeError(f"expected ID:NAME, got {value!r}")
    return ident, name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a fake Slack Web API for connect-bot.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bot-token", default="xoxb-test-token")
    parser.add_argument("--app-token", default="xapp-test-token")
    parser.add_argument("--signing-secret", default="test-signing-secret")
    parser.add_argument("--defaults", action="store_true", help="add #connect-ops, alice, bob")
    parser.add_argument("--channel", type=_pair, action="append", default=[], metavar="ID:NAME")
    parser.add_argument("--user", type=_pair, action="append", default=[], metavar="ID:NAME")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every call")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    fake = FakeSlack(
        bot_token=args.bot_token,
        app_token=args.app_token,
        signing_secret=args.signing_secret,
        host=args.host,
        port=args.port,
    )
    if args.defaults:
        fake.add_default_workspace()
    for channel_id, name in args.channel:
        fake.add_channel(channel_id, name)
    for user_id, name in args.user:
        fake.add_user(user_id, name)
    fake.start()
    print(f"SLACK_API_URL={fake.api_url}")
    print(f"SLACK_BOT_TOKEN={fake.bot_token}")
    print(f"SLACK_APP_TOKEN={fake.app_token}")
    print(f"SLACK_SIGNING_SECRET={fake.signing_secret}")
    print(f"# state: {fake.url}/_fake/state  (Ctrl-C to stop)", flush=True)
    fake.serve_forever()
