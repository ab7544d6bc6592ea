"""`/connect health [filters]`: probes the selected content, then posts the result card in the
channel (anyone in an allowed channel may run it: probing is what a visitor does)."""

from __future__ import annotations

from bot.services.health import HealthReport, Prepared
from bot.services.impact import PackagesUnsupported
from bot.slack import parser
from bot.slack.deps import Deps, Invocation
from bot.slack.replies import answer, post_or_explain, server_label, shared_view
from bot.slack.views import (
    health_started_view,
    health_view,
    notice_view,
    packages_unsupported_view,
)

NOT_WIRED = "Health checks are not set up on this bot, so `health` can't run."


def check(deps: Deps, req: Invocation, command: parser.Health) -> None:
    """Store the check, post its card, and probe (here or, if this process dies, in another);
    the card shows progress, then the result (`bot.slack.health_progress`)."""
    runs = deps.services.health_runs
    if runs is None:
        check_unstored(deps, req, command)
        return
    prepared = runs.prepare(req.actor, command.server, command.filter, command.packages)
    if isinstance(prepared, PackagesUnsupported):
        label = server_label(deps, prepared.server)
        answer(deps, req, packages_unsupported_view(prepared, server_label=label))
        return
    if not isinstance(prepared, Prepared):
        answer(deps, req, shared_view(prepared))
        return
    label = server_label(deps, prepared.server)
    ts = post_or_explain(deps, req, health_started_view(command.description, server_label=label))
    if ts is None:
        return
    runs.start(prepared, req.actor, card_ts=ts, description=command.description)


def check_unstored(deps: Deps, req: Invocation, command: parser.Health) -> None:
    """Without a store: probe in this request's worker, then post the result card."""
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
