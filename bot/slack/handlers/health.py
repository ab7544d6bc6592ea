"""`/connect health [filters]`: probes the selected content, then posts the result card in the
channel (anyone in an allowed channel may run it: probing is what a visitor does)."""

from __future__ import annotations

from bot.connect import ContentFilter
from bot.services.caches import CacheTarget
from bot.services.health import HealthReport, Prepared
from bot.services.health.runner import Failing, RenderCancelled, RenderRequested, RenderStarted
from bot.services.outcomes import UnknownServer
from bot.services.queries import PackagesUnsupported
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.handlers import caches, impact
from bot.slack.handlers.rebuilds import permalink
from bot.slack.replies import (
    Shared,
    answer,
    answer_lost_click,
    listed_server,
    post_or_explain,
    server_label,
    shared_view,
)
from bot.slack.views import (
    health_history_view,
    health_render_cancelled_view,
    health_render_confirm_view,
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
    prepared = runs.prepare(
        req.actor,
        command.server,
        command.filter,
        command.packages,
        visited_within=command.visited_within,
    )
    if not isinstance(prepared, Prepared):
        _refused(deps, req, prepared)
        return
    label = server_label(deps, prepared.server)
    if command.render:
        _request_render(deps, req, command, prepared)
        return
    ts = post_or_explain(deps, req, health_started_view(command.description, server_label=label))
    if ts is None:
        return
    runs.start(prepared, req.actor, card_ts=ts, description=command.description)


def _request_render(
    deps: Deps, req: Invocation, command: parser.Health, prepared: Prepared
) -> None:
    """`--render`: admins only; the confirmation card, whose Confirm starts the check."""
    runs = deps.services.health_runs
    assert runs is not None
    requested = runs.request_render(req.actor, prepared, command.description)
    if not isinstance(requested, RenderRequested):
        answer(deps, req, shared_view(requested))
        return
    view = health_render_confirm_view(
        command.description,
        requested.rendered,
        requested.pending_id,
        req.user,
        server_label=server_label(deps, requested.server),
    )
    ts = post_or_explain(deps, req, view)
    if ts is not None:
        runs.attach_render_card(requested.pending_id, ts)


def confirm_render(deps: Deps, click: Click) -> None:
    """Confirm: the check starts, and the confirmation card becomes its card."""
    runs = deps.services.health_runs
    if runs is None:
        return
    outcome = runs.confirm_render(click.actor, click.value, click.message_ts)
    if not isinstance(outcome, RenderStarted):
        answer_lost_click(deps, click, outcome, subject="request", undone="rendered")
        return
    if click.message_ts:
        label = server_label(deps, outcome.server)
        view = health_started_view(outcome.description, server_label=label)
        deps.poster.update(click.channel, click.message_ts, view)


def cancel_render(deps: Deps, click: Click) -> None:
    runs = deps.services.health_runs
    if runs is None:
        return
    outcome = runs.cancel_render(click.actor, click.value, click.message_ts)
    if not isinstance(outcome, RenderCancelled):
        answer_lost_click(deps, click, outcome, subject="request", undone="cancelled")
        return
    if click.message_ts:
        label = server_label(deps, outcome.server)
        view = health_render_cancelled_view(click.user, server_label=label)
        deps.poster.update(click.channel, click.message_ts, view)


def check_unstored(deps: Deps, req: Invocation, command: parser.Health) -> None:
    """Without a store: probe in this request's worker, then post the result card."""
    service = deps.services.health
    if service is None:
        answer(deps, req, notice_view(NOT_WIRED))
        return
    outcome = service.check(
        req.actor,
        command.server,
        command.filter,
        command.packages,
        visited_within=command.visited_within,
    )
    if not isinstance(outcome, HealthReport):
        _refused(deps, req, outcome)
        return
    post_or_explain(
        deps, req, health_view(outcome, server_label=server_label(deps, outcome.server))
    )


def _failing(deps: Deps, click: Click) -> Failing | None:
    runs = deps.services.health_runs
    try:
        check_id = int(click.value)
    except ValueError:
        return None
    failing = runs.failing(check_id) if runs is not None else None
    if failing is None or not failing.guids:
        answer(deps, click, notice_view("That health check has nothing failing to act on."))
        return None
    return failing


def delete_caches(deps: Deps, click: Click) -> None:
    """'Delete the caches of these runtimes…': the usual dry run and confirmation card."""
    failing = _failing(deps, click)
    if failing is None:
        return
    if not failing.caches:
        text = "The failing items' runtimes are no longer installed: they have no cache to delete."
        answer(deps, click, notice_view(text))
        return
    targets = [CacheTarget(c.language, c.version, c.image_name) for c in failing.caches]
    caches.request_deletion(deps, click, failing.server, targets)


def rebuild(deps: Deps, click: Click) -> None:
    """'Rebuild the N failing items': the usual plan card (with Start) for exactly those items."""
    failing = _failing(deps, click)
    if failing is None:
        return
    command = parser.RebuildPlan(
        ContentFilter(published=True, guids=failing.guids),
        None,
        f"the {len(failing.guids)} item(s) failing health check #{failing.check_id}",
        server=failing.server,
    )
    impact.plan(deps, click, command)


def history(deps: Deps, req: Invocation, command: parser.HealthHistory) -> None:
    """`health history`: the last checks (of one server with `-n`), each linked to its card."""
    runs = deps.services.health_runs
    if runs is None:
        answer(deps, req, notice_view(NOT_WIRED))
        return
    server = listed_server(deps, req, command.server)
    if isinstance(server, UnknownServer):
        return
    rows = runs.history(command.limit, server)
    view = health_history_view(
        rows,
        lambda channel, ts: permalink(deps, channel, ts),
        several_servers=deps.services.servers.several,
    )
    answer(deps, req, view)


def _refused(deps: Deps, req: Invocation, outcome: PackagesUnsupported | Shared) -> None:
    """A check that cannot run: no packages API for `--uses-package`, or a shared refusal."""
    if isinstance(outcome, PackagesUnsupported):
        label = server_label(deps, outcome.server)
        answer(deps, req, packages_unsupported_view(outcome, server_label=label))
    else:
        answer(deps, req, shared_view(outcome))
