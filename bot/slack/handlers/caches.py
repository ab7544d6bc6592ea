"""Caches: list, ask to delete (dry run, card), confirm, cancel."""

from __future__ import annotations

from collections.abc import Sequence

from bot.connect import RuntimeCache
from bot.services.caches import CacheTarget, DeletionRequested, NothingToDelete, RequestOutcome
from bot.services.outcomes import NotFound
from bot.services.queries import CachesListed
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.replies import answer, answer_lost_click, post_or_explain, server_label, shared_view
from bot.slack.views import (
    Actions,
    caches_list_view,
    deletion_card_view,
    notice_view,
    parse_cache_value,
    rejections_view,
)


def list_caches(deps: Deps, req: Invocation, command: parser.CachesList) -> None:
    outcome = deps.services.queries.caches(req.actor, command.server)
    if not isinstance(outcome, CachesListed):
        answer(deps, req, shared_view(outcome))
        return
    view = caches_list_view(outcome.caches, outcome.url, server=server_label(deps, outcome.server))
    post_or_explain(deps, req, view)


def delete_command(deps: Deps, req: Invocation, command: parser.CachesDelete) -> None:
    request_deletion(deps, req, command.server, command.targets)


def delete_one(deps: Deps, click: Click) -> None:
    picked = parse_cache_value(click.value)
    if picked is not None:
        server, cache = picked
        request_deletion(deps, click, server, [_target(cache)])


def delete_selected(deps: Deps, click: Click) -> None:
    picked = [parse_cache_value(v) for v in click.selected_values(Actions.CACHE_SELECT)]
    chosen = [p for p in picked if p is not None]
    if not chosen:
        answer(deps, click, notice_view("Choose one or more caches in the menu first."))
        return
    server = chosen[0][0]  # one list, one server: every option names the same one
    request_deletion(deps, click, server, [_target(cache) for _, cache in chosen])


def _target(cache: RuntimeCache) -> CacheTarget:
    return CacheTarget(cache.language, cache.version, cache.image_name)


def request_deletion(
    deps: Deps, req: Invocation, server: str | None, targets: Sequence[CacheTarget]
) -> None:
    _show_request(deps, req, deps.services.deletions.request(req.actor, server, targets))


def retry(deps: Deps, click: Click) -> None:
    """'Retry the failed…' on a finished card: a new dry run and card for those caches."""
    outcome = deps.services.deletions.retry(click.actor, click.value)
    if isinstance(outcome, NotFound):
        answer(deps, click, notice_view("Nothing on that card is left to retry."))
        return
    _show_request(deps, click, outcome)


def _show_request(deps: Deps, req: Invocation, outcome: RequestOutcome) -> None:
    deletions = deps.services.deletions
    if isinstance(outcome, NothingToDelete):
        answer(deps, req, rejections_view(outcome.rejected, planned_any=False))
        return
    if not isinstance(outcome, DeletionRequested):
        answer(deps, req, shared_view(outcome))
        return
    if outcome.rejected:
        answer(deps, req, rejections_view(outcome.rejected, planned_any=True))
    state = outcome.state
    ts = post_or_explain(
        deps, req, deletion_card_view(state, server=server_label(deps, state.server))
    )
    if ts is None:
        deletions.abandon(state.id)
    else:
        deletions.posted(state.id, ts)


def confirm(deps: Deps, click: Click) -> None:
    outcome = deps.services.deletions.confirm(click.actor, click.value, click.message_ts)
    answer_lost_click(deps, click, outcome, subject="request", undone="deleted")


def cancel(deps: Deps, click: Click) -> None:
    outcome = deps.services.deletions.cancel(click.actor, click.value, click.message_ts)
    answer_lost_click(deps, click, outcome, subject="request", undone="deleted")
