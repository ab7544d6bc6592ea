"""`/connect health [filters]`: probes the selected content, then posts the result card in the
channel (anyone in an allowed channel may run it: probing is what a visitor does)."""

from __future__ import annotations

from bot.services.health import HealthReport
from bot.services.queries import PackagesUnsupported
from bot.slack import parser
from bot.slack.deps import Deps, Invocation
from bot.slack.replies import answer, post_or_explain, server_label, shared_view
from bot.slack.views import health_view, notice_view, packages_unsupported_view

NOT_WIRED = "Health checks are not set up on this bot, so `health` can't run."


def check(deps: Deps, req: Invocation, command: parser.Health) -> None:
    service = deps.services.health
    if service is None:
        answer(deps, req, notice_view(NOT_WIRED))
        return
    outcome = service.check(req.actor, command.server, command.filter, command.packages)
    if isinstance(outcome, PackagesUnsupported):
        label = server_label(deps, outcome.server)
        answer(deps, req, packages_unsupported_view(outcome, server_label=label))
        return
    if not isinstance(outcome, HealthReport):
        answer(deps, req, shared_view(outcome))
        return
    post_or_explain(
        deps, req, health_view(outcome, server_label=server_label(deps, outcome.server))
    )
