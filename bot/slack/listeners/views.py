"""Modal submissions (`view_submission`), from the routes table: field errors are answered in
the ack (`response_action: errors`, pure checks); otherwise an empty ack closes the modal and
the work runs on the executor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot.slack import requestlog
from bot.slack.deps import Deps
from bot.slack.routes import VIEWS, ViewRoute

log = logging.getLogger("bot.slack.views")


def register(app: App, deps: Deps) -> None:
    for route in VIEWS:
        app.view(route.callback_id)(_listener(deps, route))


def _listener(deps: Deps, route: ViewRoute) -> Callable[..., None]:
    def listener(ack: Ack, body: dict[str, Any]) -> None:
        try:
            view = body.get("view") if isinstance(body.get("view"), dict) else {}
            user = str((body.get("user") or {}).get("id", ""))
            requestlog.annotate(action=route.callback_id, user=user)
            errors = route.check(view or {})
            if errors:
                ack(response_action="errors", errors=errors)
                return
            ack()
            deps.submit(route.work, deps, user, view or {})
        except Exception:
            log.exception("the %s submission listener failed", route.callback_id)
            if ack.response is None:
                ack()

    return listener
