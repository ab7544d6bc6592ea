"""The one table of everything the Slack app answers: every `/connect` verb and every action.

A command route says what the ack says (at once, no I/O) and what runs after it; an action
route names the handler of a button or menu. Listeners read these tables; nothing adds to them
at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.handlers import admin, caches, health, home, impact, rebuilds, schedules
from bot.slack.views import (
    Actions,
    HealthActions,
    HomeActions,
    ImpactActions,
    Message,
    help_view,
    notice_view,
)

WORKING = ":hourglass_flowing_sand:"


@dataclass(frozen=True)
class CommandRoute:
    ack: Callable[[Any], Message | None]  # the immediate answer (None: an empty ack)
    work: Callable[[Deps, Invocation, Any], None] | None = None  # after the ack


@dataclass(frozen=True)
class ActionRoute:
    action_id: str | re.Pattern[str]
    work: Callable[[Deps, Click], None] | None  # None: ack only
    prompt: bool = False  # at once, not after a quiet moment (it opens a modal)


@dataclass(frozen=True)
class ViewRoute:
    """A modal's submission: `check` (pure, before the ack) answers field errors by block id,
    `work` runs after an empty ack (the modal closes)."""

    callback_id: str
    check: Callable[[dict[str, Any]], dict[str, str]]
    work: Callable[[Deps, str, dict[str, Any]], None]


def _say(text: str, emoji: str = WORKING) -> Callable[[Any], Message]:
    message = notice_view(text, emoji)
    return lambda _command: message


def _silent(_command: Any) -> None:
    return None


def _dry_running(command: parser.CachesDelete) -> Message:
    labels = ", ".join(t.label for t in command.targets)
    return notice_view(f"Dry-running the deletion of {labels} with Connect…", ":mag:")


_CHECKING = notice_view(
    "Checking which content starts: requesting each item, a few at a time…", WORKING
)
_RENDER_ASKED = notice_view("Listing the documents that would be rendered again…", WORKING)


def _health_ack(command: parser.Health) -> Message:
    return _RENDER_ASKED if command.render else _CHECKING


COMMANDS: dict[type, CommandRoute] = {
    parser.Help: CommandRoute(ack=lambda command: help_view(command.topic)),
    parser.Servers: CommandRoute(ack=_silent, work=admin.list_servers),
    parser.CachesList: CommandRoute(ack=_silent, work=caches.list_caches),
    parser.CachesDelete: CommandRoute(ack=_dry_running, work=caches.delete_command),
    # `impact.search`/`impact.plan` resolve `--uses-package`, then search / plan as usual.
    parser.ContentSearch: CommandRoute(ack=_silent, work=impact.search),
    parser.Impact: CommandRoute(
        ack=_say("Asking Connect which content uses the package…"), work=impact.show
    ),
    parser.Health: CommandRoute(ack=_health_ack, work=health.check),
    parser.HealthHistory: CommandRoute(ack=_silent, work=health.history),
    parser.Audit: CommandRoute(ack=_silent, work=admin.show_audit),
    parser.RebuildPlan: CommandRoute(
        ack=_say("Planning the rebuild: asking Connect for its content…"), work=impact.plan
    ),
    parser.RebuildStatus: CommandRoute(ack=_silent, work=rebuilds.status),
    parser.RebuildCancel: CommandRoute(ack=_silent, work=rebuilds.cancel_command),
    parser.RebuildHistory: CommandRoute(ack=_silent, work=rebuilds.history),
    parser.RebuildScheduled: CommandRoute(ack=_silent, work=schedules.list_scheduled),
}

ACTIONS: tuple[ActionRoute, ...] = (
    ActionRoute(Actions.CACHE_DELETE_START, caches.delete_one),
    ActionRoute(Actions.CACHE_DELETE_SELECTED, caches.delete_selected),
    ActionRoute(Actions.CACHE_DELETE_CONFIRM, caches.confirm),
    ActionRoute(Actions.CACHE_DELETE_CANCEL, caches.cancel),
    ActionRoute(Actions.CACHE_DELETE_RETRY, caches.retry),
    ActionRoute(Actions.CACHE_SELECT, None),  # the choice travels with "Delete selected"
    ActionRoute(re.compile(f"^{Actions.SEARCH_PAGE}"), impact.page),
    ActionRoute(Actions.REBUILD_AFFECTED, rebuilds.plan_affected),
    ActionRoute(Actions.REBUILD_START, rebuilds.start),
    ActionRoute(Actions.REBUILD_DISCARD, rebuilds.discard),
    ActionRoute(Actions.REBUILD_CANCEL, rebuilds.cancel_click),
    ActionRoute(Actions.REBUILD_DELETE_CACHES, rebuilds.delete_stale_caches),
    ActionRoute(Actions.REBUILD_SCHEDULE, schedules.schedule),
    ActionRoute(Actions.REBUILD_SCHEDULE_OPEN, schedules.open_form, prompt=True),
    ActionRoute(ImpactActions.DELETE_CACHES, impact.delete_caches),
    ActionRoute(ImpactActions.REBUILD, impact.rebuild),
    ActionRoute(HealthActions.DELETE_CACHES, health.delete_caches),
    ActionRoute(HealthActions.REBUILD, health.rebuild),
    ActionRoute(HealthActions.RENDER_CONFIRM, health.confirm_render),
    ActionRoute(HealthActions.RENDER_CANCEL, health.cancel_render),
    # App Home: each button expands (or collapses) a part of Home; nothing destructive.
    ActionRoute(HomeActions.CACHES, home.toggle),
    ActionRoute(HomeActions.HISTORY, home.toggle),
    ActionRoute(HomeActions.PLAN, home.toggle),
)

VIEWS: tuple[ViewRoute, ...] = (
    ViewRoute(Actions.SCHEDULE_MODAL, schedules.check_form, schedules.submitted),
)
