"""Block Kit for rebuilds: the plan card (which becomes the progress message), thread replies,
status and history. Pure: the caller passes `now` wherever elapsed time or time left is shown.
Every Connect string goes through `esc`/`code`/`link`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    HeaderBlock,
)

from bot.connect import RuntimeCache
from bot.services.rebuilds import ItemView, PlanCard, PlanSummary, Progress
from bot.slack.text import clip, code, esc, link
from bot.slack.views.common import (
    Actions,
    Message,
    channel,
    context,
    date,
    duration,
    md,
    mrkdwn,
    on_server,
    who,
)
from bot.slack.views.plan_actions import decision_blocks
from bot.slack.views.visitors import coverage_line, served_text, unvisited_text

BAR_CELLS = 20
MAX_UNVERIFIED = 10  # items named in the summary as built but failing to start
Permalink = Callable[[str, str | None], str | None]


def _runtime(label: str) -> str:
    return esc(label) if label else "no R/Python"


def _counted(pairs: Sequence[tuple[str, int]], render: Callable[[str], str], limit: int) -> str:
    shown = [f"{render(key)} {n}" for key, n in pairs[:limit]]
    if len(pairs) > limit:
        shown.append(f"+{len(pairs) - limit} more")
    return " · ".join(shown) or "-"


# --- the plan card ---------------------------------------------------------------------------


def plan_card_view(card: PlanCard, *, server: str | None = None) -> Message:
    """`server`: the server's name, shown with several servers."""
    plan = card.summary
    title = f"Rebuild plan #{plan.rebuild_id}: {plan.total} item(s)"
    blocks: list[Block] = [HeaderBlock(text=clip(title, 150))]
    blocks.append(
        md(
            f"Requested by {who(plan.requested_by)}{on_server(server)}:"
            f" *{esc(clip(plan.description, 300))}*"
        )
    )
    blocks.append(md(_plan_details(plan)))
    coverage = coverage_line(plan.usage)
    if coverage:
        blocks.append(md(coverage))
    if plan.unvisited:
        within = (plan.usage or {}).get("within_days")
        text = unvisited_text(plan.unvisited, plan.unvisited_titles, within)
        blocks.append(context(clip(text, 2900)))
    duplicates = plan.skipped - plan.locked - plan.unvisited
    if duplicates > 0:
        names = ", ".join(esc(clip(t, 60)) for t in plan.skipped_titles)
        more = "…" if duplicates > len(plan.skipped_titles) else ""
        blocks.append(
            context(
                f":fast_forward: Skipped {duplicates} item(s) already queued or building in"
                f" another running rebuild: {names}{more}"
            )
        )
    if plan.locked:
        blocks.append(
            md(
                clip(
                    f":lock: Skipped {plan.locked} locked item(s) (Connect offers no rebuild for"
                    f" locked content):\n{_locked_lines(plan.locked_items, plan.locked)}",
                    2900,
                )
            )
        )
    blocks += decision_blocks(card)
    return Message(f"{title} ({esc(plan.description)})", blocks)


def _locked_lines(items: Sequence[tuple[str, str]], count: int) -> str:
    lines = [f"• *{esc(clip(title, 80))}*: {esc(clip(message, 200))}" for title, message in items]
    if count > len(items):
        lines.append(f"• +{count - len(items)} more")
    return "\n".join(lines)


def locked_content_view(items: Sequence[tuple[str, str]], count: int, *, named: bool) -> Message:
    """No plan: content named by `--guid` (`named`), or all the matching content, is locked."""
    if named:
        head = f"Not planned: {count} item(s) you named are locked in Connect, which offers no"
        head += " rebuild for locked content. Unlock them in Connect, or leave them out:"
    else:
        head = f"Nothing to rebuild: the {count} matching item(s) are locked in Connect:"
    text = f"{head}\n{_locked_lines(items, count)}"
    return Message(clip(text, 3000), [md(clip(f":lock: {text}", 2900))])


def _plan_details(plan: PlanSummary) -> str:
    warm = plan.waves.get(0, 0)
    interactive = plan.waves.get(1, 0)
    rendered = plan.waves.get(2, 0)
    visitors_first = bool(plan.usage and plan.usage.get("coverage_share") is not None)
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
            (
                f"  2. Visited apps and APIs, most visits per build minute first: {interactive}"
                if visitors_first
                else f"  2. Interactive apps and APIs: {interactive}"
            ),
            (
                f"  3. Unvisited, rendered and static content, longest first: {rendered}"
                if visitors_first
                else f"  3. Rendered and static content: {rendered}"
            ),
            f"*Parallelism:* {plan.parallelism} build(s) at a time",
        ]
    )


# --- the progress message (the same message, once started) -----------------------------------

STATE_LABEL = {
    "running": ":hammer_and_wrench: running",
    "cancelling": ":octagonal_sign: cancelling (running builds finish)",
    "done": ":checkered_flag: finished",
    "cancelled": ":octagonal_sign: cancelled",
    "scheduled": ":alarm_clock: scheduled",
    "starting": ":hourglass_flowing_sand: starting",
    "missed": ":warning: missed its start",
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
    return " · ".join(parts) + verify_line(p)


def verify_line(p: Progress) -> str:
    """The verification of the items that built, counted apart from the failures to build."""
    if p.verify_off:
        return "\n:see_no_evil: Verification off (`--no-verify`): built items were not probed"
    v = p.verify
    if not v:
        return ""
    parts = [f":large_green_circle: {v.get('starts', 0)} verified to start"]
    parts.append(f":rotating_light: {v.get('fails', 0)} built but fail to start")
    if v.get("unchecked"):
        parts.append(f":grey_question: {v['unchecked']} could not be verified")
    if v.get("pending"):
        parts.append(f":mag: {v['pending']} verifying")
    return "\n" + " · ".join(parts)


def progress_view(p: Progress, *, now: datetime, server: str | None = None) -> Message:
    title = f"Rebuild #{p.rebuild_id}: {p.total} item(s)"
    state = STATE_LABEL.get(p.state, esc(p.state))
    timing = f"Elapsed {duration(p.elapsed(now))}"
    if p.active:
        eta = p.eta(now)
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
        md(f"*{esc(clip(p.description, 300))}*{on_server(server)} · {state}"),
        md(
            progress_bar(p.done_items, p.total)
            + served_text(p.visitors_share)
            + "\n"
            + counts_line(p)
        ),
        context(
            f"{timing} · {p.parallelism} at a time{warm} · requested by {who(p.requested_by)},"
            f" started by {who(p.started_by)} · details in the thread"
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
                            text=mrkdwn(
                                "No new builds start. Builds already running on Connect finish."
                            ),
                            confirm="Cancel rebuild",
                            deny="Keep going",
                            style="danger",
                        ),
                    )
                ],
            )
        )
    failed = p.counts.get("failed", 0)
    text = f"{title}: {p.done_items}/{p.total} done, {failed} failed"
    if p.fails_to_start:
        text += f", {p.fails_to_start} built but fail to start"
    text += f" ({esc(p.state)})"
    return Message(text, blocks)


# --- thread replies --------------------------------------------------------------------------


def start_reply(p: Progress, plan: PlanSummary) -> Message:
    warm = plan.waves.get(0, 0)
    if plan.usage and plan.usage.get("coverage_share") is not None:
        rest = (
            f" {plan.waves.get(1, 0)} visited app(s) and API(s), most visits per build minute"
            f" first, then {plan.waves.get(2, 0)} item(s) nobody waits on."
        )
    else:
        rest = (
            f" {plan.waves.get(1, 0)} interactive app(s) and API(s), then"
            f" {plan.waves.get(2, 0)} rendered or static item(s)."
        )
    text = (
        f":rocket: Rebuild #{p.rebuild_id} started by {who(p.started_by)}: {p.total} item(s),"
        f" {p.parallelism} at a time. Warm-up first ({warm} item(s), one per runtime), then" + rest
    )
    if p.skipped:
        text += f" Skipped {p.skipped} already in another running rebuild."
    return Message(f"Rebuild #{p.rebuild_id} started", [md(text)])


def warmup_reply(p: Progress, items: Sequence[ItemView], *, now: datetime) -> Message:
    lines = [
        f"{':white_check_mark:' if i.state == 'succeeded' else ':x:'} {_runtime(i.runtime)}"
        f" · {esc(clip(i.title, 80))}"
        for i in items[:20]
    ]
    failed = sum(1 for i in items if i.state != "succeeded")
    head = f":fire: Warm-up finished after {duration(p.elapsed(now))}: {len(items)} runtime(s)"
    head += f", {failed} failed" if failed else ", all rebuilt"
    rest = p.counts.get("queued", 0) + p.counts.get("building", 0)
    tail = f"Now the other {rest} item(s), {p.parallelism} at a time." if rest else ""
    return Message(
        f"Rebuild #{p.rebuild_id}: warm-up finished", [md("\n".join([head, *lines, tail]))]
    )


def failures_reply(rebuild_id: int, items: Sequence[ItemView]) -> Message:
    blocks: list[Block] = []
    for item in items[:20]:
        logs = f"{item.dashboard_url.rstrip('/')}/logs" if item.dashboard_url else None
        reason = esc(clip(item.error or "no reason given", 600))
        blocks.append(
            md(
                f":x: *{link(item.dashboard_url, clip(item.title, 150))}* · {code(item.app_mode)}"
                f" · {_runtime(item.runtime)}\n> {reason}\n{link(logs, 'Logs')}"
            )
        )
    noun = "build failed" if len(items) == 1 else f"{len(items)} builds failed"
    return Message(f"Rebuild #{rebuild_id}: {noun}", blocks)


def summary_reply(
    p: Progress,
    *,
    now: datetime,
    server: str | None = None,
    unverified: Sequence[ItemView] = (),
    stale: Sequence[RuntimeCache] = (),
) -> Message:
    """`unverified`: items that built but fail to start (or could not be verified), with why;
    `stale`: the runtime caches of those that fail whose cache was not deleted (the hint, and
    the button to delete them)."""
    c = p.counts
    counts = f"{c.get('succeeded', 0)} succeeded, {c.get('failed', 0)} failed"
    fails_to_start = p.fails_to_start
    if fails_to_start:
        counts = (
            f"{c.get('succeeded', 0)} built ({fails_to_start} of them built but fail to start),"
            f" {c.get('failed', 0)} failed to build"
        )
    if c.get("cancelled"):
        counts += f", {c['cancelled']} cancelled"
    if p.skipped:
        counts += f", {p.skipped} skipped"
    if p.state == "cancelled":
        by = p.flags.get("cancelled_by")
        running = int(p.flags.get("running_at_cancel") or 0)
        text = (
            f":octagonal_sign: Rebuild #{p.rebuild_id}{on_server(server)}"
            f" ({esc(clip(p.description, 200))}) was"
            f" cancelled by {who(by)} after {duration(p.elapsed(now))}: {counts}."
        )
        if running:
            text += (
                f" The {running} build(s) running on Connect at the cancel were let finish"
                " (Connect cannot stop a build) and are counted above."
            )
    else:
        unsure = p.verify.get("unchecked") or p.verify.get("pending")
        troubled = c.get("failed") or fails_to_start or unsure
        emoji = ":warning:" if troubled else ":white_check_mark:"
        text = (
            f"{emoji} Rebuild #{p.rebuild_id}{on_server(server)} ({esc(clip(p.description, 200))})"
            " finished in"
            f" {duration(p.elapsed(now))}: {counts}."
        )
        if c.get("failed"):
            text += " The failures are listed in this thread."
    text += _verify_summary(p)
    if p.resent:
        text += (
            f" {p.resent} build request(s) were sent again because Connect did not answer the"
            " first and showed no build for it; Connect may have built those items twice."
        )
    blocks: list[Block] = [md(text)]
    blocks += _unverified_blocks(p, unverified, stale)
    return Message(f"Rebuild #{p.rebuild_id}: {counts}", blocks)


def _verify_summary(p: Progress) -> str:
    if p.verify_off:
        return " Verification was off (`--no-verify`): the built items were not probed."
    v = p.verify
    if not v:
        return ""
    starts, fails = v.get("starts", 0), v.get("fails", 0)
    unchecked, pending = v.get("unchecked", 0), v.get("pending", 0)
    if not (fails or unchecked or pending):
        return f" All {starts} interactive item(s) that built were verified to start."
    text = f" Verified: {starts} start, {fails} built but fail to start"
    if unchecked:
        text += f", {unchecked} could not be verified"
    if pending:
        text += f", {pending} not verified"
    return text + "."


def _unverified_blocks(
    p: Progress, items: Sequence[ItemView], stale: Sequence[RuntimeCache]
) -> list[Block]:
    if not items:
        return []
    lines = []
    for item in items[:MAX_UNVERIFIED]:
        mark = ":rotating_light:" if item.verified == "fails" else ":grey_question:"
        how = "built but fails to start" if item.verified == "fails" else "could not be verified"
        reason = esc(clip(item.verify_error or "no reason given", 300))
        lines.append(
            f"{mark} *{link(item.dashboard_url, clip(item.title, 100))}* · {how}"
            f" · {_runtime(item.runtime)}\n> {reason}"
        )
    shown = p.fails_to_start + p.verify.get("unchecked", 0)
    if shown > len(lines):
        lines.append(f"+{shown - len(lines)} more")
    blocks: list[Block] = [md(clip("\n".join(lines), 2900))]
    if stale:
        names = ", ".join(_runtime(cache.label) for cache in stale[:8])
        if len(stale) > 8:
            names += f", +{len(stale) - 8} more"
        blocks.append(
            md(
                f":broom: The cache of {names} was not deleted before this rebuild: it probably"
                " still holds packages built for the old system, which the builds re-used."
                " Delete the cache, then rebuild these items."
            )
        )
        blocks.append(
            ActionsBlock(
                block_id=f"rebuild_verify_{p.rebuild_id}",
                elements=[
                    ButtonElement(
                        text="Delete the caches of these runtimes…",
                        action_id=Actions.REBUILD_DELETE_CACHES,
                        value=str(p.rebuild_id),
                        style="danger",
                    )
                ],
            )
        )
    return blocks


# --- status, cancel, history -----------------------------------------------------------------


def status_view(
    p: Progress, permalink: str | None, *, now: datetime, server: str | None = None
) -> Message:
    view = progress_view(p, now=now, server=server)
    blocks = [b for b in view.blocks if not isinstance(b, ActionsBlock)]
    where = channel(p.channel)
    thread = link(permalink, "the thread") if permalink else "the thread"
    blocks.append(context(f"Progress and failures: {thread} in {where}."))
    return Message(view.text, blocks)


def cancel_view(rebuild_id: int, building: int, queued: int) -> Message:
    text = (
        f":octagonal_sign: Cancelling rebuild #{rebuild_id}: {queued} queued item(s) will not be"
        f" built; {building} build(s) already running on Connect finish first (Connect has no"
        " way to stop them) and are reported in the thread."
    )
    return Message(f"Cancelling rebuild #{rebuild_id}", [md(text)])


def cancel_requested_reply(rebuild_id: int, user: str) -> Message:
    return Message(
        f"Rebuild #{rebuild_id}: cancel requested",
        [
            md(
                f":octagonal_sign: {who(user)} cancelled rebuild #{rebuild_id}."
                " No new builds start; running ones finish."
            )
        ],
    )


def _history_state(state: str) -> str:
    """STATE_LABEL's words without the emoji (a history line is dense already)."""
    label = STATE_LABEL.get(state)
    return esc(label.split(" ", 1)[1] if label else state)


def history_view(
    rebuilds: Sequence[Progress],
    permalink: Permalink,
    *,
    now: datetime,
    several_servers: bool = False,
) -> Message:
    if not rebuilds:
        return Message("No rebuilds yet.", [md(":information_source: No rebuilds yet.")])
    lines = []
    for p in rebuilds:
        c = p.counts
        counts = (
            f"{c.get('succeeded', 0)} ok, {c.get('failed', 0)} failed"
            + (f", {c['cancelled']} cancelled" if c.get("cancelled") else "")
            + (f", {p.skipped} skipped" if p.skipped else "")
            + f" of {p.total}"
        )
        url = permalink(p.channel, p.thread_ts)
        ref = link(url, f"#{p.rebuild_id}") if url else f"#{p.rebuild_id}"
        by = who(p.started_by or p.requested_by)
        on = f" · {esc(p.server or '')}" if several_servers else ""
        lines.append(
            f"• *{ref}*{on} {date(p.started_at or p.created_at)} · {by} · {_history_state(p.state)}"
            f" · {counts}"
            f" · {duration(p.elapsed(now)) if p.started_at else 'not started'}"
            f" · {esc(clip(p.description, 80))}"
        )
    return Message(
        f"Last {len(rebuilds)} rebuilds",
        [HeaderBlock(text=f"Rebuilds: last {len(rebuilds)}"), md(clip("\n".join(lines), 3000))],
    )
