"""Content search (read-only) and the audit log view (admins)."""

from __future__ import annotations

from bot.connect import ConnectError
from bot.slack.deps import Deps, Invocation
from bot.slack.parser import ContentSearch, describe_filter
from bot.slack.views import audit_view, content_search_view, denied_view, error_view


def search(deps: Deps, req: Invocation, command: ContentSearch, *, replace: bool = False) -> None:
    try:
        items = deps.caches.connect.content.search(command.filter)
    except ConnectError as exc:
        deps.poster.respond(req.response_url, error_view("Content search", exc.reason))
        return
    view = content_search_view(
        items, page=command.page, args=command.args, description=describe_filter(command.filter)
    )
    deps.poster.respond(req.response_url, view, replace_original=replace)


def show_audit(deps: Deps, req: Invocation, limit: int) -> None:
    decision = deps.authz.destroy(req.user, req.channel)
    if not decision.allowed:
        deps.poster.respond(req.response_url, denied_view(decision.reason))
        deps.audit.record(
            actor=req.user,
            action="audit_view",
            outcome="denied",
            channel=req.channel,
            detail=decision.reason,
        )
        return
    deps.poster.respond(req.response_url, audit_view(deps.audit.recent(limit)))
