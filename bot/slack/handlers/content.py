"""Content search (read-only). Its page buttons and `--uses-package` go through
`bot.slack.handlers.impact`, which comes back here for the plain search."""

from __future__ import annotations

from bot.services.queries import ContentFound
from bot.slack import parser
from bot.slack.deps import Deps, Invocation
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
