"""Block Kit for scheduled rebuilds: what their thread is told (reminder, the selection asked
again at the start, missed, cancelled), `/connect rebuild scheduled`, and the "Schedule…"
modal. Pure; times are `<!date^…>` tokens, shown in each reader's own time zone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DateTimePickerElement,
    HeaderBlock,
    InputBlock,
)

from bot.services.schedules import (
    STARTING,
    CancelledBeforeStart,
    MissedStart,
    NothingMatches,
    Notice,
    Reevaluated,
    Reminder,
    Scheduled,
    ScheduleForm,
    StartFailed,
)
from bot.slack.text import clip, esc
from bot.slack.views.common import Actions, Message, context, date, md, who
from bot.slack.views.plan_actions import scheduled_cancel_button

MODAL_BLOCK = "when"
MODAL_ACTION = "at"
LISTED = 10  # each line is up to ~250 characters: ten fit one section


def _minutes(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() / 60))


def _titles(titles: Sequence[str], count: int) -> str:
    shown = ", ".join(esc(clip(t, 60)) for t in titles)
    return f"{shown}, +{count - len(titles)} more" if count > len(titles) else shown


def schedule_notice_view(notice: Notice) -> Message:
    item = notice.item
    ref = f"Rebuild #{item.rebuild_id}"
    what = esc(clip(item.description, 200))
    if isinstance(notice, Reminder):
        text = (
            f":alarm_clock: {ref} starts {date(item.scheduled_for)} (in about"
            f" {_minutes(notice.lead)} min): *{what}*, scheduled by {who(item.scheduled_by)}."
            " Cancel it now if it should not run."
        )
        actions = ActionsBlock(
            block_id=f"rebuild_reminder_{item.rebuild_id}",
            elements=[scheduled_cancel_button(item.rebuild_id)],
        )
        return Message(f"{ref} starts soon", [md(text), actions])
    if isinstance(notice, MissedStart):
        text = (
            f":warning: {ref} was scheduled for {date(item.scheduled_for)}, but the bot was not"
            f" running then; it came back {_minutes(notice.late)} min later, more than the"
            f" {_minutes(notice.grace)} min allowed (BOT_MISSED_START_GRACE_SECONDS). It was"
            " not started and nothing was built: plan it again with `/connect rebuild`."
        )
        return Message(f"{ref} missed its start", [md(text)])
    if isinstance(notice, CancelledBeforeStart):
        text = (
            f":octagonal_sign: {who(notice.by)} cancelled {ref} before its start"
            f" ({date(item.scheduled_for)}). Nothing was built."
        )
        return Message(f"{ref} cancelled before its start", [md(text)])
    if isinstance(notice, StartFailed):
        text = (
            f":warning: {ref} could not start: `{esc(clip(notice.error, 300))}`. Nothing was"
            " built; it is scheduled again and the bot tries again in a minute or so."
        )
        return Message(f"{ref} could not start", [md(text)])
    if isinstance(notice, NothingMatches):
        text = (
            f":information_source: {ref}: at its start no published content matches *{what}*"
            " any more, so nothing was built."
        )
        return Message(f"{ref}: nothing matches now", [md(text)])
    return Message(f"{ref}: starting", [md(_reevaluated_text(notice))])


def _reevaluated_text(notice: Reevaluated) -> str:
    item = notice.item
    head = f":mag: Starting scheduled rebuild #{item.rebuild_id}"
    if notice.late is not None:
        head += (
            f", {_minutes(notice.late)} min late: the bot was not running at"
            f" {date(item.scheduled_for)}"
        )
    if notice.error:
        return f"{head}. :warning: {esc(clip(notice.error, 300))}: building the" + (
            f" {notice.planned} item(s) planned."
        )
    lines = [f"{head}. Planned {notice.planned} item(s); {notice.matching} match now."]
    if notice.added_count:
        lines.append(f"• {notice.added_count} new: {_titles(notice.added, notice.added_count)}")
    if notice.removed_count:
        lines.append(
            f"• {notice.removed_count} no longer match (or are in another running rebuild):"
            f" {_titles(notice.removed, notice.removed_count)}"
        )
    if not notice.added_count and not notice.removed_count:
        lines.append("Nothing changed since the plan.")
    return clip("\n".join(lines), 2900)


def scheduled_list_view(items: Sequence[Scheduled], *, several_servers: bool = False) -> Message:
    """`/connect rebuild scheduled`: id, what, when (the reader's time), who, server."""
    if not items:
        text = (
            "No rebuild is scheduled. Add `--at 02:00` or `--in 2h` to `/connect rebuild`,"
            " or use *Schedule…* on a plan."
        )
        return Message("No rebuild is scheduled.", [md(f":information_source: {text}")])
    lines = []
    for item in items[:LISTED]:
        on = f" · on *{esc(item.server or '')}*" if several_servers and item.server else ""
        starting = " · *starting now*" if item.state == STARTING else ""
        lines.append(
            f"• *#{item.rebuild_id}* {date(item.scheduled_for)}{starting}{on} ·"
            f" {esc(clip(item.description, 80))} · {item.total} item(s) · scheduled by"
            f" {who(item.scheduled_by)}"
        )
    more = f"+{len(items) - LISTED} more. " if len(items) > LISTED else ""
    blocks: list[Block] = [
        HeaderBlock(text=f"Scheduled rebuilds: {len(items)}"),
        md(clip("\n".join(lines), 2900)),
        context(f"{more}`/connect rebuild cancel ID` cancels one before its start."),
    ]
    return Message(f"{len(items)} scheduled rebuild(s)", blocks)


def scheduled_reply(item: Scheduled) -> Message:
    """The private answer to whoever scheduled it (the card says it for everyone)."""
    text = (
        f":alarm_clock: Rebuild #{item.rebuild_id} is scheduled for {date(item.scheduled_for)}."
        f" `/connect rebuild cancel {item.rebuild_id}` cancels it before then."
    )
    return Message(f"Rebuild #{item.rebuild_id} scheduled", [md(text)])


def unscheduled_reply(rebuild_id: int, at: datetime) -> Message:
    text = f":octagonal_sign: Cancelled rebuild #{rebuild_id} (it was to start {date(at)})."
    return Message(f"Cancelled rebuild #{rebuild_id}", [md(text + " Nothing was built.")])


# --- the "Schedule…" modal -------------------------------------------------------------------


def schedule_modal(form: ScheduleForm, *, channel: str, message_ts: str | None) -> dict[str, Any]:
    """A modal (views.open) with a date and time picker; `private_metadata` says which plan."""
    metadata = json.dumps(
        {"pending_id": form.pending_id, "channel": channel, "message_ts": message_ts}
    )
    picker = DateTimePickerElement(
        action_id=MODAL_ACTION, initial_date_time=int(form.initial.timestamp())
    )
    blocks: list[Block] = [
        md(
            f"Rebuild plan #{form.rebuild_id}: *{esc(clip(form.description, 200))}*.\n"
            "At the time, the selection is checked against Connect again, and the rebuild"
            " starts as if Start had been clicked."
        ),
        InputBlock(
            block_id=MODAL_BLOCK,
            label="Start at (your time zone)",
            element=picker,
        ),
    ]
    return {
        "type": "modal",
        "callback_id": Actions.SCHEDULE_MODAL,
        "title": {"type": "plain_text", "text": "Schedule rebuild"},
        "submit": {"type": "plain_text", "text": "Schedule"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": [block.to_dict() for block in blocks],
    }


def modal_values(view: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The submitted modal's metadata, and the picked instant (UNIX seconds) if any."""
    try:
        metadata = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        metadata = {}
    values = ((view.get("state") or {}).get("values") or {}).get(MODAL_BLOCK) or {}
    picked = (values.get(MODAL_ACTION) or {}).get("selected_date_time")
    at = picked if isinstance(picked, int) and not isinstance(picked, bool) else None
    return (metadata if isinstance(metadata, dict) else {}), at
