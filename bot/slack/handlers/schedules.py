"""Scheduled rebuilds in Slack: `--at`/`--in` read in the requester's time zone, the card's
"Schedule for …" button, the "Schedule…" modal (views.open, then its view_submission),
`/connect rebuild scheduled`, and cancelling one before its start."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.services.outcomes import Actor, NotFound
from bot.services.rebuilds import NotStartable
from bot.services.schedules import (
    NotScheduled,
    ScheduleForm,
    ScheduleMade,
    Schedules,
    TimeRefused,
    Unscheduled,
)
from bot.services.times import BadTime, Proposal, When, refusal, resolve, zone_named
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.poster import SlackUnavailable
from bot.slack.replies import answer, answer_lost_click, shared_view
from bot.slack.views import Message, notice_view, usage_error_view
from bot.slack.views.schedules import (
    MODAL_BLOCK,
    modal_values,
    schedule_modal,
    scheduled_list_view,
    unscheduled_reply,
)
from bot.store import utcnow

log = logging.getLogger(__name__)

NOT_WIRED = "Scheduled rebuilds are not set up on this bot."


def _service(deps: Deps, req: Invocation) -> Schedules | None:
    if deps.services.schedules is None:
        answer(deps, req, notice_view(NOT_WIRED))
    return deps.services.schedules


def proposal(deps: Deps, req: Invocation, when: When) -> Proposal | None:
    """`--at`/`--in` as an instant for `req.user` (their Slack zone); None: refused, said."""
    zone_name = deps.zones.zone(req.user) if deps.zones is not None else None
    try:
        at = resolve(when, zone_named(zone_name), utcnow())
    except BadTime as exc:
        answer(deps, req, usage_error_view(parser.ParseError(exc.message, parser.USAGE["rebuild"])))
        return None
    return Proposal(at, zone_name if zone_named(zone_name) else None)


def schedule(deps: Deps, click: Click) -> None:
    """ "Schedule for …": the time given with the plan."""
    service = _service(deps, click)
    if service is not None:
        _answer(deps, click, service.schedule(click.actor, click.value, None, click.message_ts))


def _answer(deps: Deps, req: Invocation, outcome: object) -> None:
    if isinstance(outcome, ScheduleMade):
        return  # the card says it
    if isinstance(outcome, TimeRefused):
        answer(deps, req, notice_view(outcome.reason, ":warning:"))
    elif isinstance(outcome, NotStartable):
        answer(deps, req, notice_view(f"Rebuild #{outcome.rebuild_id} can no longer be scheduled."))
    else:
        answer_lost_click(deps, req, outcome, subject="plan", undone="scheduled")


def open_form(deps: Deps, click: Click) -> None:
    """ "Schedule…": a modal with a date and time picker (the trigger lasts 3 s)."""
    service = _service(deps, click)
    if service is None:
        return
    form = service.form(click.actor, click.value)
    if not isinstance(form, ScheduleForm):
        answer(deps, click, shared_view(form, subject="plan", undone="scheduled"))
        return
    if not click.trigger_id:
        return
    view = schedule_modal(form, channel=click.channel, message_ts=click.message_ts)
    try:
        deps.poster.open_view(click.trigger_id, view)
    except SlackUnavailable as exc:
        log.warning("could not open the schedule modal: %s", exc.error)
        answer(deps, click, notice_view("Slack did not open the form in time; click again."))


def check_form(view: dict[str, Any]) -> dict[str, str]:
    """Field errors of a submitted modal (before the ack): a time is picked, ahead, near."""
    _, picked = modal_values(view)
    if picked is None:
        return {MODAL_BLOCK: "Pick a date and a time."}
    reason = refusal(datetime.fromtimestamp(picked, UTC), utcnow())
    if reason:
        return {MODAL_BLOCK: reason.split(";")[0].split(" (")[0] + "."}
    return {}


def submitted(deps: Deps, user: str, view: dict[str, Any]) -> None:
    """The modal closed with a time: schedule the plan (refusals are said privately)."""
    metadata, picked = modal_values(view)
    channel = str(metadata.get("channel") or "")
    pending_id = str(metadata.get("pending_id") or "")
    service = deps.services.schedules
    if service is None or picked is None or not pending_id:
        return
    ts = metadata.get("message_ts")
    outcome = service.schedule(
        Actor(user, channel),
        pending_id,
        datetime.fromtimestamp(picked, UTC),
        ts if isinstance(ts, str) else None,
    )
    message: Message | None = None
    if isinstance(outcome, TimeRefused):
        message = notice_view(outcome.reason, ":warning:")
    elif isinstance(outcome, NotStartable):
        message = notice_view(f"Rebuild #{outcome.rebuild_id} can no longer be scheduled.")
    elif not isinstance(outcome, ScheduleMade):
        message = shared_view(outcome, subject="plan", undone="scheduled")
    if message is not None and channel:
        try:
            deps.poster.ephemeral(channel, user, message)
        except SlackUnavailable as exc:
            log.warning("could not tell %s why the schedule was refused: %s", user, exc.error)


def list_scheduled(deps: Deps, req: Invocation, command: parser.RebuildScheduled) -> None:
    service = _service(deps, req)
    if service is None:
        return
    view = scheduled_list_view(service.listed(), several_servers=deps.services.servers.several)
    answer(deps, req, view)


def cancel(deps: Deps, req: Invocation, rebuild_id: int) -> bool:
    """Cancel `rebuild_id` if it waits for its start; False: it is not a scheduled one."""
    service = deps.services.schedules
    if service is None:
        return False
    outcome = service.cancel(req.actor, rebuild_id)
    if isinstance(outcome, NotScheduled):
        return False
    if isinstance(outcome, Unscheduled):
        answer(deps, req, unscheduled_reply(rebuild_id, outcome.item.scheduled_for))
    elif isinstance(outcome, NotFound):
        answer(deps, req, notice_view(f"There is no rebuild #{rebuild_id}."))
    else:
        answer(deps, req, shared_view(outcome))
    return True
