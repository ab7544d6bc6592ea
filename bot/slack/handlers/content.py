"""Content search (read-only, paged with buttons that repeat the search)."""

from __future__ import annotations

import dataclasses
import json

from bot.services.queries import ContentFound
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.replies import answer, server_label, shared_view
from bot.slack.views import content_search_view


def search(
    deps: Deps, req: Invocation, command: parser.ContentSearch, *, replace: bool = False
) -> None:
    outcome = deps.services.queries.content(req.actor, command.server, command.filter)
    if not isinstance(outcome, ContentFound):
        answer(deps, req, shared_view(outcome))
        return
    view = content_search_view(
        outcome.items,
        page=command.page,
        args=command.args,
        description=parser.describe_filter(command.filter),
        server=outcome.server,
        server_label=server_label(deps, outcome.server),
    )
    answer(deps, req, view, replace=replace)


def page(deps: Deps, click: Click) -> None:
    """'Next >' / '< Previous': the button carries the search's words, page and server."""
    try:
        data = json.loads(click.value)
        parsed = parser.parse(f"content search {data['args']} --page {int(data['page'])}")
        server = data.get("server")
    except (ValueError, KeyError, TypeError):
        return
    if isinstance(parsed, parser.ContentSearch):
        search(deps, click, _on(parsed, server), replace=True)


def _on(command: parser.ContentSearch, server: object) -> parser.ContentSearch:
    return dataclasses.replace(command, server=server) if isinstance(server, str) else command
