"""Events API: `app_home_opened` (over HTTP, signed; or over Socket Mode). Bolt acks events
itself; the listener only hands the open to the executor, where Home is rendered and published.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot.slack import requestlog
from bot.slack.deps import Deps
from bot.slack.handlers import home

log = logging.getLogger("bot.slack.events")


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def app_home_opened(event: dict[str, Any]) -> None:
        try:
            handle_home_opened(deps, event)
        except Exception:  # never into Bolt: the event is acked already
            log.exception("the app_home_opened listener failed")


def handle_home_opened(deps: Deps, event: dict[str, Any]) -> None:
    if event.get("tab") != "home":  # the Messages tab fires it too
        return
    user = str(event.get("user") or "")
    requestlog.annotate(event_type="app_home_opened", user=user)
    if deps.services.home is None or not user:
        return
    view = event.get("view") if isinstance(event.get("view"), dict) else None
    view_hash = view.get("hash") if view else None
    channel = str(event.get("channel") or "")
    deps.submit(home.opened, deps, user, channel, view_hash if isinstance(view_hash, str) else None)
