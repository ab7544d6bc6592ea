"""`/connect`: parse (pure), check the channel (pure), ack, then hand the work to the executor.

Nothing before `ack()` touches the network or the database: Slack gives us 3 s, the bar is 5 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot.slack import parser, requestlog
from bot.slack.deps import Deps, Invocation
from bot.slack.flows import caches, content
from bot.slack.views import Message, denied_view, help_view, notice_view, usage_error_view

log = logging.getLogger("bot.slack.commands")

COMMAND = "/connect"

# Extra command handlers (e.g. the rebuild engine's) register here: type -> (ack text, handler).
Handler = Callable[[Deps, Invocation, Any], None]
EXTRA_HANDLERS: dict[type, tuple[str | None, Handler]] = {}


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
    in_channel = deps.authz.channel(req.channel)
    if not in_channel.allowed:
        _ack(ack, denied_view(in_channel.reason))
        deps.submit(_audit_refusal, deps, req, parsed, in_channel.reason)
        return
    if isinstance(parsed, parser.Help):
        _ack(ack, help_view(parsed.topic))
        return
    if isinstance(parsed, parser.CachesList):
        ack()
        deps.submit(caches.list_caches, deps, req)
    elif isinstance(parsed, parser.CachesDelete):
        labels = ", ".join(t.label for t in parsed.targets)
        _ack(ack, notice_view(f"Dry-running the deletion of {labels} with Connect…", ":mag:"))
        deps.submit(caches.start_deletion, deps, req, parsed.targets)
    elif isinstance(parsed, parser.ContentSearch):
        ack()
        deps.submit(content.search, deps, req, parsed)
    elif isinstance(parsed, parser.Audit):
        ack()
        deps.submit(content.show_audit, deps, req, parsed.limit)
    elif type(parsed) in EXTRA_HANDLERS:
        text, handler = EXTRA_HANDLERS[type(parsed)]
        if text:
            _ack(ack, notice_view(text, ":hourglass_flowing_sand:"))
        else:
            ack()
        deps.submit(handler, deps, req, parsed)
    else:
        _ack(ack, notice_view("That command is not available in this version of connect-bot."))


def _ack(ack: Ack, message: Message) -> None:
    ack(**message.to_dict())


def _audit_refusal(deps: Deps, req: Invocation, parsed: Any, reason: str) -> None:
    deps.audit.record(
        actor=req.user,
        action=f"command_{type(parsed).__name__}",
        outcome="denied",
        channel=req.channel,
        detail=reason,
    )
