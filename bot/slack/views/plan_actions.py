"""The part of a plan card that says what happens next, and its buttons: Start (or Schedule
for the time given with the plan), Schedule… (a modal with a date and time picker), Discard;
once scheduled, when it starts and a Cancel button. Pure."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.services.rebuilds import PlanCard
from bot.slack.text import clip
from bot.slack.views.common import Actions, context, date, mrkdwn, who


def decision_blocks(card: PlanCard) -> list[Block]:
    """What the card says of what happens next, and its buttons."""
    plan, state = card.summary, card.state
    if state == "pending":
        return _pending_blocks(card)
    if state == "scheduled" and card.scheduled_for is not None:
        return [
            context(
                f":alarm_clock: Scheduled for {date(card.scheduled_for)} by"
                f" {who(card.scheduled_by)}. Nothing runs before then; the selection is checked"
                " against Connect again at the start, and the thread is reminded before it."
            ),
            ActionsBlock(
                block_id=f"rebuild_scheduled_{plan.rebuild_id}",
                elements=[scheduled_cancel_button(plan.rebuild_id)],
            ),
        ]
    at = date(card.scheduled_for) if card.scheduled_for else "its time"
    said = {
        "discarded": f"Discarded by {who(card.decided_by)}. Nothing was built.",
        "expired": "Nobody started it in time. Nothing was built; plan again.",
        "unscheduled": f"Cancelled by {who(card.decided_by)} before its start ({at})."
        " Nothing was built.",
        "missed": f"Missed its start ({at}): the bot was not running then. Nothing was built;"
        " plan again.",
        "unmatched": f"At its start ({at}) no published content matched any more."
        " Nothing was built.",
    }
    return [context(said.get(state, "This plan could not be started. Nothing was built."))]


def _pending_blocks(card: PlanCard) -> list[Block]:
    plan, pending_id = card.summary, card.pending_id
    rule = " Another administrator must start it." if card.two_person else ""
    expiry = ""
    if card.expires_at is not None:
        expiry = f" Expires {date(card.expires_at, '{time}', 'soon')}."
    schedule_open = ButtonElement(
        text="Schedule…", action_id=Actions.REBUILD_SCHEDULE_OPEN, value=pending_id
    )
    discard = ButtonElement(text="Discard", action_id=Actions.REBUILD_DISCARD, value=pending_id)
    if card.proposed_for is not None:
        label = card.proposed_label or f"{card.proposed_for:%H:%M} UTC"
        note = (
            f":alarm_clock: Starts {date(card.proposed_for)} once an administrator clicks"
            f" *Schedule*; nothing runs until then.{expiry}{rule}"
        )
        primary = ButtonElement(
            text=clip(f"Schedule for {label}", 75),
            action_id=Actions.REBUILD_SCHEDULE,
            value=pending_id,
            style="primary",
            confirm=ConfirmObject(
                title="Schedule the rebuild?",
                text=mrkdwn(
                    f"Connect rebuilds what matches then (now {plan.total} item(s)),"
                    f" {plan.parallelism} at a time, starting {date(card.proposed_for)}.",
                    300,
                ),
                confirm="Schedule",
                deny="Not yet",
            ),
        )
    else:
        note = f"Nothing runs until an administrator clicks Start.{expiry}{rule}"
        primary = ButtonElement(
            text="Start",
            action_id=Actions.REBUILD_START,
            value=pending_id,
            style="primary",
            confirm=ConfirmObject(
                title="Start the rebuild?",
                text=mrkdwn(
                    f"Connect rebuilds {plan.total} item(s), {plan.parallelism} at a"
                    " time. Builds that have started cannot be stopped.",
                    300,
                ),
                confirm="Start",
                deny="Not yet",
            ),
        )
    return [
        context(note),
        ActionsBlock(
            block_id=f"rebuild_plan_{plan.rebuild_id}",
            elements=[primary, schedule_open, discard],
        ),
    ]


def scheduled_cancel_button(rebuild_id: int) -> ButtonElement:
    """Cancel of a rebuild waiting for its start (the card and the reminder)."""
    return ButtonElement(
        text="Cancel",
        action_id=Actions.REBUILD_CANCEL,
        value=str(rebuild_id),
        style="danger",
        confirm=ConfirmObject(
            title="Cancel the scheduled rebuild?",
            text=mrkdwn("It will not start; nothing is built."),
            confirm="Cancel it",
            deny="Keep it",
            style="danger",
        ),
    )
