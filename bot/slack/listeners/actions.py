"""Button clicks and menu selections. Ack at once; the work runs on the executor."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot.services.caches import CacheTarget
from bot.slack import parser, requestlog
from bot.slack.deps import Click, Deps
from bot.slack.flows import caches, content
from bot.slack.views import Actions, denied_view, notice_view, parse_cache_value

log = logging.getLogger("bot.slack.actions")

ClickHandler = Callable[[Deps, Click], None]
# Extra click handlers (e.g. the rebuild engine's) register here: action_id -> handler.
EXTRA_ACTIONS: dict[str, ClickHandler] = {}


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
    )


def register(app: App, deps: Deps) -> None:
    def on(action_id: str | re.Pattern[str], handler: ClickHandler) -> None:
        @app.action(action_id)
        def listener(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            try:
                click = click_from(body)
                requestlog.annotate(action=click.action_id, user=click.user, channel=click.channel)
                gate = deps.authz.channel(click.channel)
                if not gate.allowed:
                    deps.submit(_respond_denied, deps, click, gate.reason)
                    return
                deps.submit(handler, deps, click)
            except Exception:
                log.exception("the %s listener failed", action_id)

    on(Actions.CACHE_DELETE_START, _delete_one)
    on(Actions.CACHE_DELETE_SELECTED, _delete_selected)
    on(Actions.CACHE_DELETE_CONFIRM, caches.confirm_deletion)
    on(Actions.CACHE_DELETE_CANCEL, caches.cancel_deletion)
    on(re.compile(f"^{Actions.SEARCH_PAGE}"), _search_page)
    for action_id, handler in EXTRA_ACTIONS.items():
        on(action_id, handler)

    @app.action(Actions.CACHE_SELECT)
    def selection_changed(ack: Ack) -> None:
        ack()  # the choice travels with the "Delete selected" click; nothing to do now


def _respond_denied(deps: Deps, click: Click, reason: str) -> None:
    deps.poster.respond(click.response_url, denied_view(reason))


def _targets(values: list[str]) -> list[CacheTarget]:
    targets = []
    for value in values:
        cache = parse_cache_value(value)
        if cache is not None:
            targets.append(CacheTarget(cache.language, cache.version, cache.image_name))
    return targets


def _delete_one(deps: Deps, click: Click) -> None:
    targets = _targets([click.value])
    if targets:
        caches.start_deletion(deps, click, targets)


def _delete_selected(deps: Deps, click: Click) -> None:
    targets = _targets(click.selected_values(Actions.CACHE_SELECT))
    if not targets:
        deps.poster.respond(
            click.response_url, notice_view("Choose one or more caches in the menu first.")
        )
        return
    caches.start_deletion(deps, click, targets)


def _search_page(deps: Deps, click: Click) -> None:
    try:
        data = json.loads(click.value)
        parsed = parser.parse(f"content search {data['args']} --page {int(data['page'])}")
    except (ValueError, KeyError, TypeError):
        return
    if isinstance(parsed, parser.ContentSearch):
        content.search(deps, click, parsed, replace=True)
