"""`/connect`: parse (pure), check the channel and the server name (pure), ack, then hand the
route's work to the executor.

Nothing before `ack()` touches the network or the database: Slack gives us 3 s, the bar is 5 ms.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot.services.outcomes import UnknownServer
from bot.slack import parser, requestlog
from bot.slack.deps import Deps, Invocation
from bot.slack.routes import COMMANDS
from bot.slack.views import (
    Message,
    denied_view,
    notice_view,
    unknown_server_view,
    usage_error_view,
)

log = logging.getLogger("bot.slack.commands")

COMMAND = "/connect"


def register(app: App, deps: Deps) -> None:
    @app.command(COMMAND)
    def connect_command(ack: Ack, command: dict[str, Any]) -> None:
        try:
            handle(deps, ack, command)
        except Exception:
            # Never let an error escape after ack(): Bolt would turn the ack into an error.
            log.exception("the /connect listener failed")
            if ack.response is None:
                ack(**notice_view("Something went wrong; the error is in the bot's log.").to_dict())


def handle(deps: Deps, ack: Ack, command: dict[str, Any]) -> None:
    req = Invocation(
        user=str(command.get("user_id", "")),
        channel=str(command.get("channel_id", "")),
        response_url=command.get("response_url"),
        team=command.get("team_id"),
    )
    parsed = parser.parse(str(command.get("text", "")))
    requestlog.annotate(command=type(parsed).__name__, user=req.user, channel=req.channel)
    if isinstance(parsed, parser.ParseError):
        _ack(ack, usage_error_view(parsed))
        return
    services = deps.services
    in_channel = services.authz.channel(req.channel)
    if not in_channel.allowed:
        _ack(ack, denied_view(in_channel.reason))
        deps.submit(
            services.queries.channel_refused, req.actor, type(parsed).__name__, in_channel.reason
        )
        return
    if parsed.server is not None:
        server = services.servers.resolve(parsed.server, req.channel)
        if isinstance(server, UnknownServer):  # refused before any Connect is asked
            _ack(ack, unknown_server_view(server.name, server.names))
            return
    route = COMMANDS.get(type(parsed))
    if route is None:
        _ack(ack, notice_view("That command is not available in this version of connect-bot."))
        return
    answer = route.ack(parsed)
    if answer is None:
        ack()
    else:
        _ack(ack, answer)
    if route.work is not None:
        deps.submit(route.work, deps, req, parsed)


def _ack(ack: Ack, message: Message) -> None:
    ack(**message.to_dict())
