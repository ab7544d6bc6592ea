"""Rebuilds: plan (card with Start/Discard), start, discard, cancel, status, history, and
"Rebuild affected content" after a deletion. The card becomes the progress message once
started (see `bot.slack.rebuild_progress`)."""

from __future__ import annotations

import logging

from bot.services.caches import CacheTarget
from bot.services.outcomes import NotFound, UnknownServer
from bot.services.rebuilds import (
    Cancelling,
    Criteria,
    LockedContent,
    NoCachesDeleted,
    NothingToCancel,
    NothingToRebuild,
    NotStartable,
    PlanCard,
    RebuildPlanOutcome,
)
from bot.services.times import Proposal
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.handlers import caches, schedules
from bot.slack.poster import SlackUnavailable
from bot.slack.replies import (
    answer,
    answer_lost_click,
    listed_server,
    post_or_explain,
    server_label,
    shared_view,
)
from bot.slack.views import (
    cancel_requested_reply,
    cancel_view,
    history_view,
    notice_view,
    plan_card_view,
    status_view,
)
from bot.slack.views.rebuilds import locked_content_view
from bot.store import utcnow

log = logging.getLogger(__name__)


def plan(
    deps: Deps,
    req: Invocation,
    command: parser.RebuildPlan,
    *,
    selection: Criteria | None = None,
    proposal: Proposal | None = None,
) -> None:
    """`selection`: what the plan selects, as typed (`--uses-package` names, not the items
    they resolved to); `proposal`: the start time `--at`/`--in` gave."""
    outcome = deps.services.rebuilds.plan(
        req.actor,
        command.server,
        description=command.description,
        content_filter=command.filter,
        parallelism=command.parallelism,
        selection=selection,
        proposal=proposal,
        visited_within=command.visited_within,
        verify=command.verify,
    )
    _show_plan(deps, req, outcome)


def plan_affected(deps: Deps, click: Click) -> None:
    _show_plan(deps, click, deps.services.rebuilds.plan_affected(click.actor, click.value))


def _show_plan(deps: Deps, req: Invocation, outcome: RebuildPlanOutcome) -> None:
    if isinstance(outcome, LockedContent):
        answer(deps, req, locked_content_view(outcome.items, outcome.count, named=outcome.named))
        return
    if isinstance(outcome, NothingToRebuild):
        extra = (
            f" ({outcome.skipped} matching item(s) are already in a running rebuild.)"
            if outcome.skipped
            else ""
        )
        text = f"Nothing to rebuild: no published content matches {outcome.description}.{extra}"
        answer(deps, req, notice_view(text))
        return
    if isinstance(outcome, NoCachesDeleted):
        answer(deps, req, notice_view("No cache was deleted, so nothing needs a rebuild."))
        return
    if isinstance(outcome, NotFound):
        answer(deps, req, notice_view("That deletion no longer exists."))
        return
    if not isinstance(outcome, PlanCard):
        answer(deps, req, shared_view(outcome))
        return
    ts = post_or_explain(
        deps, req, plan_card_view(outcome, server=server_label(deps, outcome.server))
    )
    if ts is None:
        deps.services.rebuilds.plan_abandoned(outcome.pending_id)
    else:
        deps.services.rebuilds.plan_posted(outcome.pending_id, ts)


def start(deps: Deps, click: Click) -> None:
    outcome = deps.services.rebuilds.start(click.actor, click.value, click.message_ts)
    if isinstance(outcome, NotStartable):
        answer(deps, click, notice_view(f"Rebuild #{outcome.rebuild_id} can no longer be started."))
    else:
        answer_lost_click(deps, click, outcome, subject="plan", undone="built")


def discard(deps: Deps, click: Click) -> None:
    outcome = deps.services.rebuilds.discard(click.actor, click.value, click.message_ts)
    answer_lost_click(deps, click, outcome, subject="plan", undone="built")


def cancel_command(deps: Deps, req: Invocation, command: parser.RebuildCancel) -> None:
    _cancel(deps, req, command.rebuild_id)


def delete_stale_caches(deps: Deps, click: Click) -> None:
    """'Delete the caches of these runtimes…' under a summary whose items built but fail to
    start: the usual dry run and confirmation card for those caches."""
    if not click.value.isdigit():
        return
    found = deps.services.rebuilds.stale_caches(int(click.value))
    if isinstance(found, NotFound) or not found[1]:
        answer(deps, click, notice_view("That rebuild has no runtime cache left to delete."))
        return
    server, stale = found
    targets = [CacheTarget(c.language, c.version, c.image_name) for c in stale]
    caches.request_deletion(deps, click, server, targets)


def cancel_click(deps: Deps, click: Click) -> None:
    if click.value.isdigit():
        _cancel(deps, click, int(click.value))


def _cancel(deps: Deps, req: Invocation, rebuild_id: int) -> None:
    if schedules.cancel(deps, req, rebuild_id):
        return  # it was waiting for its start
    outcome = deps.services.rebuilds.cancel(req.actor, rebuild_id)
    if isinstance(outcome, NotFound):
        answer(deps, req, notice_view(f"There is no rebuild #{rebuild_id}."))
        return
    if isinstance(outcome, NothingToCancel):
        text = f"Rebuild #{rebuild_id} is {outcome.state}; there is nothing to cancel."
        answer(deps, req, notice_view(text))
        return
    if not isinstance(outcome, Cancelling):
        answer(deps, req, shared_view(outcome))
        return
    answer(deps, req, cancel_view(rebuild_id, outcome.building, outcome.queued))
    progress = outcome.progress
    if progress.thread_ts:
        try:
            deps.poster.post(
                progress.channel,
                cancel_requested_reply(rebuild_id, req.user),
                thread_ts=progress.thread_ts,
            )
        except SlackUnavailable as exc:
            log.warning("could not post the cancel notice: %s", exc.error)


def status(deps: Deps, req: Invocation, command: parser.RebuildStatus) -> None:
    outcome = deps.services.rebuilds.status(command.rebuild_id)
    if isinstance(outcome, NotFound):
        text = (
            f"There is no rebuild #{command.rebuild_id}."
            if command.rebuild_id is not None
            else "No rebuild has run yet. `/connect rebuild` plans one."
        )
        answer(deps, req, notice_view(text))
        return
    link = permalink(deps, outcome.channel, outcome.thread_ts)
    answer(
        deps,
        req,
        status_view(outcome, link, now=utcnow(), server=server_label(deps, outcome.server)),
    )


def history(deps: Deps, req: Invocation, command: parser.RebuildHistory) -> None:
    """`rebuild history`: the last rebuilds (of one server with `-n`)."""
    server = listed_server(deps, req, command.server)
    if isinstance(server, UnknownServer):
        return
    rebuilds = deps.services.rebuilds.history(command.limit, server)
    answer(
        deps,
        req,
        history_view(
            rebuilds,
            lambda channel, ts: permalink(deps, channel, ts),
            now=utcnow(),
            several_servers=deps.services.servers.several,
        ),
    )


def permalink(deps: Deps, channel: str, ts: str | None) -> str | None:
    """Slack's message permalink format, built locally (no chat.getPermalink call per row)."""
    base = deps.team_url
    if not base or not ts or not channel.isalnum():
        return None
    return f"{base.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
