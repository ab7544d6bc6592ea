"""Button clicks and menu selections, from the routes table. Ack at once; work on the executor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot.slack import requestlog
from bot.slack.deps import Click, Deps
from bot.slack.replies import answer
from bot.slack.routes import ACTIONS, ActionRoute
from bot.slack.views import denied_view

log = logging.getLogger("bot.slack.actions")


def click_from(body: dict[str, Any]) -> Click:
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    return Click(
        user=str((body.get("user") or {}).get("id", "")),
        channel=str((body.get("channel") or {}).get("id") or container.get("channel_id", "")),
        response_url=body.get("response_url"),
        team=(body.get("team") or {}).get("id"),
        action_id=str(action.get("action_id", "")),
        value=str(action.get("value", "")),
        message_ts=container.get("message_ts"),
        state=(body.get("state") or {}).get("values") or {},
        trigger_id=body.get("trigger_id"),
    )


def register(app: App, deps: Deps) -> None:
    for route in ACTIONS:
        app.action(route.action_id)(_listener(deps, route))


def _listener(deps: Deps, route: ActionRoute) -> Callable[..., None]:
    def listener(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        if route.work is None:
            return
        try:
            click = click_from(body)
            requestlog.annotate(action=click.action_id, user=click.user, channel=click.channel)
            on_home = (body.get("container") or {}).get("type") == "view"
            gate = deps.services.authz.channel(click.channel)
            # Home has no channel: its buttons are read-only and answered on Home itself.
            if not on_home and not gate.allowed:
                deps.submit(answer, deps, click, denied_view(gate.reason))
                return
            deps.submit(route.work, deps, click, prompt=route.prompt)
        except Exception:
            log.exception("the %s listener failed", route.action_id)

    return listener
