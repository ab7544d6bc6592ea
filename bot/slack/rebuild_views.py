"""Block Kit for rebuilds: the plan card (which becomes the progress message), thread replies,
status and history. Pure functions; every Connect string goes through `esc`/`code`/`link`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.services.rebuilds import ItemView, PlanSummary, Progress
from bot.slack.text import clip, code, esc, link
from bot.slack.views import Actions, Message

BAR_CELLS = 20
Permalink = Callable[[str, str | None], str | None]


def _md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, 3000))])


def _who(user_id: str | None) -> str:
    if not user_id:
        return "someone"
    return f"<@{user_id}>" if user_id.isalnum() else esc(user_id)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _runtime(label: str) -> str:
    return esc(label) if label else "no R/Python"


def _counted(pairs: Sequence[tuple[str, int]], render: Callable[[str], str], limit: int) -> str:
    shown = [f"{render(key)} {n}" for key, n in pairs[:limit]]
    if len(pairs) > limit:
        shown.append(f"+{len(pairs) - limit} more")
    return " · ".join(shown) or "-"


# --- the plan card ---------------------------------------------------------------------------


def plan_card_view(
    plan: PlanSummary,
    *,
    pending_id: str,
    expires_at: datetime | None = None,
    two_person: bool = False,
    state: str = "pending",  # pending | discarded | expired | refused
    decided_by: str | None = None,
) -> Message:
    title = f"Rebuild plan #{plan.rebuild_id}: {plan.total} item(s)"
    blocks: list[Block] = [HeaderBlock(text=clip(title, 150))]
    blocks.append(
        _md(f"Requested by {_who(plan.requested_by)}: *{esc(clip(plan.description, 300))}*")
    )
    blocks.append(_md(_plan_details(plan)))
    if plan.skipped:
        names = ", ".join(esc(clip(t, 60)) for t in plan.skipped_titles)
        more = "…" if plan.skipped > len(plan.skipped_titles) else ""
        blocks.append(
            _context(
                f":fast_forward: Skipped {plan.skipped} item(s) already queued or building in"
                f" another running rebuild: {names}{more}"
            )
        )
    if state == "pending":
        rule = " Another administrator must start it." if two_person else ""
        expiry = ""
        if expires_at is not None:
            stamp = int(expires_at.timestamp())
            expiry = f" Expires <!date^{stamp}^{{time}}|soon>."
        blocks.append(_context(f"Nothing runs until an administrator clicks Start.{expiry}{rule}"))
        blocks.append(
            ActionsBlock(
                block_id=f"rebuild_plan_{plan.rebuild_id}",
                elements=[
                    ButtonElement(
                        text="Start",
                        action_id=Actions.REBUILD_START,
                        value=pending_id,
                        style="primary",
                        confirm=ConfirmObject(
                            title="Start the rebuild?",
                            text=clip(
                                f"Connect rebuilds {plan.total} item(s), {plan.parallelism} at a"
                                " time. Builds that have started cannot be stopped.",
                                300,
                            ),
                            confirm="Start",
                            deny="Not yet",
                        ),
                    ),
                    ButtonElement(
                        text="Discard", action_id=Actions.REBUILD_DISCARD, value=pending_id
                    ),
                ],
            )
        )
    elif state == "discarded":
        blocks.append(_context(f"Discarded by {_who(decided_by)}. Nothing was built."))
    elif state == "expired":
        blocks.append(_context("Nobody started it in time. Nothing was built; plan again."))
    else:
        blocks.append(_context("This plan could not be started. Nothing was built."))
    return Message(f"{title} ({esc(plan.description)})", blocks)


def _plan_details(plan: PlanSummary) -> str:
    warm = plan.waves.get(0, 0)
    interactive = plan.waves.get(1, 0)
    rendered = plan.waves.get(2, 0)
    warm_list = ", ".join(_runtime(runtime) for runtime, _ in plan.warmup[:8])
    if len(plan.warmup) > 8:
        warm_list += f", +{len(plan.warmup) - 8} more"
    return "\n".join(
        [
            f"*By content type:* {_counted(plan.by_type, code, 12)}",
            f"*By runtime:* {_counted(plan.by_runtime, _runtime, 10)}",
            "*Order:*",
            f"  1. Warm-up: {warm} item(s), one per runtime, so each cache is rebuilt once"
            + (f" ({warm_list})" if warm_list else ""),
            f"  2. Interactive apps and APIs: {interactive}",
            f"  3. Rendered and static content: {rendered}",
            f"*Parallelism:* {plan.parallelism} build(s) at a time",
        ]
    )


# --- the progress message (the same message, once started) -----------------------------------

_STATE_LABEL = {
    "running": ":hammer_and_wrench: running",
    "cancelling": ":octagonal_sign: cancelling (running builds finish)",
    "done": ":checkered_flag: finished",
    "cancelled": ":octagonal_sign: cancelled",
}


def progress_bar(done: int, total: int) -> str:
    filled = round(BAR_CELLS * done / total) if total else BAR_CELLS
    percent = round(100 * done / total) if total else 100
    return f"`{'█' * filled}{'░' * (BAR_CELLS - filled)}` {percent}% ({done}/{total})"


def counts_line(p: Progress) -> str:
    c = p.counts
    parts = [
        f":white_check_mark: {c.get('succeeded', 0)} succeeded",
        f":x: {c.get('failed', 0)} failed",
        f":hammer: {c.get('building', 0)} building",
        f":hourglass_flowing_sand: {c.get('queued', 0)} queued",
    ]
    if c.get("cancelled"):
        parts.append(f":no_entry_sign: {c['cancelled']} cancelled")
    if c.get("skipped"):
        parts.append(f":fast_forward: {c['skipped']} skipped")
    return " · ".join(parts)


def progress_view(p: Progress) -> Message:
    title = f"Rebuild #{p.rebuild_id}: {p.total} item(s)"
    state = _STATE_LABEL.get(p.state, esc(p.state))
    timing = f"Elapsed {duration(p.elapsed)}"
    if p.active:
        eta = p.eta
        timing += f" · about {duration(eta)} left" if eta is not None else " · estimating time left"
    warm = ""
    if p.warmup_total:
        warm = (
            f" · warm-up {p.warmup_total - p.warmup_open}/{p.warmup_total}"
            if p.warmup_open
            else " · warm-up done"
        )
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, 150)),
        _md(f"*{esc(clip(p.description, 300))}* · {state}"),
        _md(progress_bar(p.done_items, p.total) + "\n" + counts_line(p)),
        _context(
            f"{timing} · {p.parallelism} at a time{warm} · requested by {_who(p.requested_by)},"
            f" started by {_who(p.started_by)} · details in the thread"
        ),
    ]
    if p.state == "running":
        blocks.append(
            ActionsBlock(
                block_id=f"rebuild_progress_{p.rebuild_id}",
                elements=[
                    ButtonElement(
                        text="Cancel",
                        action_id=Actions.REBUILD_CANCEL,
                        value=str(p.rebuild_id),
                        style="danger",
                        confirm=ConfirmObject(
                            title="Cancel the rebuild?",
                            text="No new builds start. Builds already running on Connect finish.",
                            confirm="Cancel rebuild",
                            deny="Keep going",
                            style="danger",
                        ),
                    )
                ],
            )
        )
    text = f"{title}: {p.done_items}/{p.total} done, {p.counts.get('failed', 0)} failed ({p.state})"
    return Message(text, blocks)


# --- thread replies --------------------------------------------------------------------------


def start_reply(p: Progress, plan: PlanSummary) -> Message:
    warm = plan.waves.get(0, 0)
    text = (
        f":rocket: Rebuild #{p.rebuild_id} started by {_who(p.started_by)}: {p.total} item(s),"
        f" {p.parallelism} at a time. Warm-up first ({warm} item(s), one per runtime), then"
        f" {plan.waves.get(1, 0)} interactive app(s) and API(s), then"
        f" {plan.waves.get(2, 0)} rendered or static item(s)."
    )
    if p.skipped:
        text += f" Skipped {p.skipped} already in another running rebuild."
    return Message(f"Rebuild #{p.rebuild_id} started", [_md(text)])


def warmup_reply(p: Progress, items: Sequence[ItemView]) -> Message:
    lines = [
        f"{':white_check_mark:' if i.state == 'succeeded' else ':x:'} {_runtime(i.runtime)}"
        f" · {esc(clip(i.title, 80))}"
        for i in items[:20]
    ]
    failed = sum(1 for i in items if i.state != "succeeded")
    head = f":fire: Warm-up finished after {duration(p.elapsed)}: {len(items)} runtime(s)"
    head += f", {failed} failed" if failed else ", all rebuilt"
    rest = p.counts.get("queued", 0) + p.counts.get("building", 0)
    tail = f"Now the other {rest} item(s), {p.parallelism} at a time." if rest else ""
    return Message(
        f"Rebuild #{p.rebuild_id}: warm-up finished", [_md("\n".join([head, *lines, tail]))]
    )


def failures_reply(rebuild_id: int, items: Sequence[ItemView]) -> Message:
    blocks: list[Block] = []
    for item in items[:20]:
        logs = f"{item.dashboard_url.rstrip('/')}/logs" if item.dashboard_url else None
        reason = esc(clip(item.error or "no reason given", 600))
        blocks.append(
            _md(
                f":x: *{link(item.dashboard_url, clip(item.title, 150))}* · {code(item.app_mode)}"
                f" · {_runtime(item.runtime)}\n> {reason}\n{link(logs, 'Logs')}"
            )
        )
    noun = "build failed" if len(items) == 1 else f"{len(items)} builds failed"
    return Message(f"Rebuild #{rebuild_id}: {noun}", blocks)


def summary_reply(p: Progress) -> Message:
    c = p.counts
    counts = f"{c.get('succeeded', 0)} succeeded, {c.get('failed', 0)} failed"
    if c.get("cancelled"):
        counts += f", {c['cancelled']} cancelled"
    if p.skipped:
        counts += f", {p.skipped} skipped"
    if p.state == "cancelled":
        who = p.flags.get("cancelled_by")
        running = int(p.flags.get("running_at_cancel") or 0)
        text = (
            f":octagonal_sign: Rebuild #{p.rebuild_id} ({esc(clip(p.description, 200))}) was"
            f" cancelled by {_who(who)} after {duration(p.elapsed)}: {counts}."
        )
        if running:
            text += (
                f" The {running} build(s) running on Connect at the cancel were let finish"
                " (Connect cannot stop a build) and are counted above."
            )
    else:
        emoji = ":white_check_mark:" if not c.get("failed") else ":warning:"
        text = (
            f"{emoji} Rebuild #{p.rebuild_id} ({esc(clip(p.description, 200))}) finished in"
            f" {duration(p.elapsed)}: {counts}."
        )
        if c.get("failed"):
            text += " The failures are listed in this thread."
    return Message(f"Rebuild #{p.rebuild_id}: {counts}", [_md(text)])


# --- status, cancel, history -----------------------------------------------------------------


def status_view(p: Progress, permalink: str | None) -> Message:
    view = progress_view(p)
    blocks = [b for b in view.blocks if not isinstance(b, ActionsBlock)]
    where = f"<#{p.channel}>" if p.channel.isalnum() else esc(p.channel)
    thread = link(permalink, "the thread") if permalink else "the thread"
    blocks.append(_context(f"Progress and failures: {thread} in {where}."))
    return Message(view.text, blocks)


def cancel_view(rebuild_id: int, building: int, queued: int) -> Message:
    text = (
        f":octagonal_sign: Cancelling rebuild #{rebuild_id}: {queued} queued item(s) will not be"
        f" built; {building} build(s) already running on Connect finish first (Connect has no"
        " way to stop them) and are reported in the thread."
    )
    return Message(f"Cancelling rebuild #{rebuild_id}", [_md(text)])


def cancel_requested_reply(rebuild_id: int, user: str) -> Message:
    return Message(
        f"Rebuild #{rebuild_id}: cancel requested",
        [
            _md(
                f":octagonal_sign: {_who(user)} cancelled rebuild #{rebuild_id}."
                " No new builds start; running ones finish."
            )
        ],
    )


def history_view(rebuilds: Sequence[Progress], permalink: Permalink) -> Message:
    if not rebuilds:
        return Message("No rebuilds yet.", [_md(":information_source: No rebuilds yet.")])
    lines = []
    for p in rebuilds:
        when = p.started_at or p.created_at
        stamp = int(when.timestamp())
        date = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"
        c = p.counts
        counts = (
            f"{c.get('succeeded', 0)} ok, {c.get('failed', 0)} failed"
            + (f", {c['cancelled']} cancelled" if c.get("cancelled") else "")
            + (f", {p.skipped} skipped" if p.skipped else "")
            + f" of {p.total}"
        )
        url = permalink(p.channel, p.thread_ts)
        ref = link(url, f"#{p.rebuild_id}") if url else f"#{p.rebuild_id}"
        who = _who(p.started_by or p.requested_by)
        lines.append(
            f"• *{ref}* {date} · {who} · {esc(p.state)} · {counts}"
            f" · {duration(p.elapsed) if p.started_at else 'not started'}"
            f" · {esc(clip(p.description, 80))}"
        )
    return Message(
        f"Last {len(rebuilds)} rebuilds",
        [HeaderBlock(text=f"Rebuilds: last {len(rebuilds)}"), _md(clip("\n".join(lines), 3000))],
    )
