"""The audit log (admins) and the list of Connect servers."""

from __future__ import annotations

from bot.services.outcomes import Denied
from bot.slack import parser
from bot.slack.deps import Deps, Invocation
from bot.slack.replies import answer, shared_view
from bot.slack.views import audit_view, servers_view


def show_audit(deps: Deps, req: Invocation, command: parser.Audit) -> None:
    outcome = deps.services.queries.audit_log(req.actor, command.limit)
    if isinstance(outcome, Denied):
        answer(deps, req, shared_view(outcome))
        return
    answer(deps, req, audit_view(outcome, several_servers=deps.services.servers.several))


def list_servers(deps: Deps, req: Invocation, command: parser.Servers) -> None:
    answer(deps, req, servers_view(deps.services.queries.server_statuses()))
