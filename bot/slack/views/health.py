"""`/connect health`: the counts in words, the items that fail to start with their errors, the
runtimes and shared packages of the failures, and what could not be checked. Every Connect
string (titles, log lines, package names) goes through `esc`/`code`/`link`/`clip`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, HeaderBlock

from bot.services.health import (
    UNVISITED,
    CouldNotCheck,
    Counts,
    FailsToStart,
    HealthReport,
    ItemHealth,
    PackageFailures,
    RuntimeFailures,
)
from bot.services.health.runner import Progress
from bot.services.health.store import CheckRow
from bot.slack.text import clip, code, esc, link, plain
from bot.slack.views.common import Message, context, date, md, on_server, who
from bot.slack.views.visitors import unvisited_text


class HealthActions:
    """action_id values of the health card's buttons (the value is the check's id)."""

    DELETE_CACHES = "health_delete_caches"
    REBUILD = "health_rebuild"
    RENDER_CONFIRM = "health_render_confirm"  # the value is the pending action's id
    RENDER_CANCEL = "health_render_cancel"


MAX_FAILING = 15
SECTION_CHARS = 2800  # under a section's 3,000 characters, with whole lines
SECTIONS_PER_REPLY = 8
MAX_UNCHECKED = 8
MAX_REASON = 200
MAX_UNVISITED = 10


def counts_text(counts: Counts) -> str:
    """ "N checked: A start, B fail to start, C could not be checked, D skipped"."""
    return (
        f"{counts.total} checked: {counts.starts} start, {counts.fails} fail to start,"
        f" {counts.unchecked} could not be checked, {skipped_text(counts)}"
    )


def skipped_text(counts: Counts) -> str:
    """ "D skipped", and how many of them `--visited-within` left out."""
    unvisited = f" ({counts.unvisited} nobody visited)" if counts.unvisited else ""
    return f"{counts.skipped} skipped{unvisited}"


def _title(check_id: int | None) -> str:
    return "Content health" if check_id is None else f"Content health #{check_id}"


def health_started_view(description: str, *, server_label: str | None = None) -> Message:
    """The card as soon as the check is stored: it shows progress, then the result."""
    head = f"Content health{on_server(server_label)}"
    text = f":hourglass_flowing_sand: Checking {esc(clip(description, 300))}: listing the items…"
    return Message(
        esc(f"Content health: checking {description}…"),
        [
            HeaderBlock(text=plain(head, 150)),
            md(text),
        ],
    )


def health_render_confirm_view(
    description: str,
    rendered: int,
    pending_id: str,
    requested_by: str,
    *,
    server_label: str | None = None,
) -> Message:
    """`health --render`: rendering replaces what viewers see, so an admin confirms first."""
    head = f"Content health, rendering again{on_server(server_label)}"
    text = (
        f":warning: <@{requested_by}> asks to check {esc(clip(description, 300))} and to"
        f" *render again* its {rendered} rendered document(s): each render replaces what"
        " its viewers see (a failed render keeps the last good output). Interactive items are"
        " requested as usual."
    )
    return Message(
        esc(f"Confirm: render {rendered} document(s) again while checking {description}?"),
        [
            HeaderBlock(text=plain(head, 150)),
            md(text),
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Confirm",
                        action_id=HealthActions.RENDER_CONFIRM,
                        value=pending_id,
                        style="danger",
                    ),
                    ButtonElement(
                        text="Cancel", action_id=HealthActions.RENDER_CANCEL, value=pending_id
                    ),
                ]
            ),
        ],
    )


def health_render_cancelled_view(by: str, *, server_label: str | None = None) -> Message:
    text = f"Cancelled by <@{by}>: nothing was rendered or requested."
    return Message(
        esc(f"Content health, rendering again: {text}"),
        [
            HeaderBlock(
                text=plain(f"Content health, rendering again{on_server(server_label)}", 150)
            ),
            md(f":no_entry_sign: {text}"),
        ],
    )


def health_progress_view(progress: Progress, *, server_label: str | None = None) -> Message:
    row, counts = progress.row, progress.counts
    head = f"{_title(row.id)}{on_server(server_label)}"
    of = f" of {row.total}" if row.total is not None else ""
    line = (
        f":hourglass_flowing_sand: Checking {esc(clip(row.description, 300))}:"
        f" {counts.total}{of} items so far ({counts.starts} start, {counts.fails} fail to"
        f" start, {counts.unchecked} could not be checked, {skipped_text(counts)});"
        f" {progress.probing} being requested now."
    )
    return Message(
        esc(f"Content health #{row.id}: {counts.total}{of} items checked so far."),
        [
            HeaderBlock(text=plain(head, 150)),
            md(line),
        ],
    )


def health_failed_view(error: str, *, server_label: str | None = None) -> Message:
    text = f"The health check could not run to its end: {esc(clip(error, MAX_REASON))}."
    return Message(
        esc(f"Content health: {text}"),
        [
            HeaderBlock(text=plain(f"Content health{on_server(server_label)}", 150)),
            md(f":warning: {text}"),
        ],
    )


def health_view(
    report: HealthReport,
    *,
    server_label: str | None = None,
    check_id: int | None = None,
    threaded: bool = False,
) -> Message:
    """`check_id`: a stored check (its card gets the two buttons when items fail);
    `threaded`: the lists too long for the card are in its thread (`health_thread_replies`)."""
    counts = report.counts
    summary = counts_text(counts)
    head = f"{_title(check_id)}{on_server(server_label)}"
    blocks: list[Block] = [HeaderBlock(text=plain(head, 150))]
    emoji = ":white_check_mark:" if not counts.fails else ":rotating_light:"
    blocks.append(md(f"{emoji} {esc(summary)}."))
    failing = sorted(report.failing, key=lambda r: r.title.lower())
    if failing:
        blocks.append(md(_items_text("*Fail to start*", failing, MAX_FAILING, threaded)))
    if report.by_runtime:
        blocks.append(md(_runtimes_text(report.by_runtime)))
    if report.by_package:
        blocks.append(md(_packages_text(report.by_package)))
    unchecked = [r for r in report.items if isinstance(r.verdict, CouldNotCheck)]
    if unchecked:
        blocks.append(md(_items_text("*Could not be checked*", unchecked, MAX_UNCHECKED, threaded)))
    unvisited = sorted(r.title for r in report.items if r.verdict == UNVISITED)
    if unvisited:
        text = unvisited_text(
            len(unvisited),
            unvisited[:MAX_UNVISITED],
            report.visited_within,
            lead="Not checked",
            why="",
        )
        blocks.append(context(clip(text, 2900)))
    skipped = "Skipped: static, locked and unpublished content"
    skipped += "." if report.rendered else ", and rendered documents (they are not rendered again)."
    blocks.append(context(skipped))
    for note in report.notes:
        blocks.append(context(f":warning: {esc(note)}"))
    if check_id is not None and failing:
        buttons = []
        if any(_cache_suspect(r) for r in failing):
            buttons.append(
                ButtonElement(
                    text="Delete the caches of these runtimes…",
                    action_id=HealthActions.DELETE_CACHES,
                    value=str(check_id),
                    style="danger",
                )
            )
        buttons.append(
            ButtonElement(
                text=plain(f"Rebuild the {len(failing)} failing items", 75),
                action_id=HealthActions.REBUILD,
                value=str(check_id),
            )
        )
        blocks.append(ActionsBlock(elements=buttons))
    return Message(esc(f"Content health: {summary}."), blocks)


def _cache_suspect(result: ItemHealth) -> bool:
    """It failed on a runtime Connect still offers: its runtime cache may be what is stale."""
    return isinstance(result.verdict, FailsToStart) and result.verdict.stage != "runtime"


def health_needs_thread(report: HealthReport) -> bool:
    failing = sorted(report.failing, key=lambda r: r.title.lower())
    unchecked = [r for r in report.items if isinstance(r.verdict, CouldNotCheck)]
    return len(failing) > len(_fitting(failing, MAX_FAILING)) or len(unchecked) > len(
        _fitting(unchecked, MAX_UNCHECKED)
    )


def health_thread_replies(report: HealthReport) -> list[Message]:
    """The full lists of a card too small for them: each line whole, sections under Slack's
    limit, a few sections a reply."""
    failing = sorted(report.failing, key=lambda r: r.title.lower())
    unchecked = [r for r in report.items if isinstance(r.verdict, CouldNotCheck)]
    replies = []
    for head, results, limit in (
        ("Fail to start", failing, MAX_FAILING),
        ("Could not be checked", unchecked, MAX_UNCHECKED),
    ):
        if len(results) <= len(_fitting(results, limit)):
            continue
        sections: list[list[str]] = [[f"*{head}* ({len(results)})"]]
        for result in results:
            line = _item_line(result)
            if sum(len(x) + 1 for x in sections[-1]) + len(line) > SECTION_CHARS:
                sections.append([])
            sections[-1].append(line)
        for start in range(0, len(sections), SECTIONS_PER_REPLY):
            part = sections[start : start + SECTIONS_PER_REPLY]
            count = sum(len(lines) for lines in part)
            replies.append(
                Message(esc(f"{head}: {count} item(s)"), [md("\n".join(lines)) for lines in part])
            )
    return replies


def _reason(result: ItemHealth) -> str:
    verdict = result.verdict
    if isinstance(verdict, FailsToStart | CouldNotCheck):
        return verdict.reason
    return ""


def _fitting(results: Sequence[ItemHealth], limit: int) -> list[str]:
    """The lines of the first items, at most `limit`, whole, within one section."""
    lines: list[str] = []
    used = 200  # the head and the "…and N more" line
    for result in results[:limit]:
        line = _item_line(result)
        used += len(line) + 1
        if used > SECTION_CHARS:
            break
        lines.append(line)
    return lines


def _items_text(head: str, results: Sequence[ItemHealth], limit: int, threaded: bool) -> str:
    lines = _fitting(results, limit)
    if len(results) > len(lines):
        where = ": all of them are in the thread" if threaded else ""
        lines.append(f"• …and {len(results) - len(lines)} more{where}")
    return "\n".join([head, *lines])


def _item_line(result: ItemHealth) -> str:
    title = link(result.item.dashboard_url, clip(result.title, 120))
    reason = _reason(result)
    return f"• {title}: {code(clip(reason, MAX_REASON))}" if reason else f"• {title}"


def _runtimes_text(groups: Sequence[RuntimeFailures]) -> str:
    lines = ["*By runtime*"]
    for group in groups[:10]:
        runtime = group.runtime
        lines.append(
            f"• {esc(runtime.language)} {esc(runtime.version)} · {code(runtime.image_name)}:"
            f" {group.failing} of {group.checked} checked item(s) fail"
        )
    return "\n".join(lines)


def _packages_text(groups: Sequence[PackageFailures]) -> str:
    lines = ["*Packages they share*"]
    for group in groups:
        users = "" if group.users is None else f" (used by {group.users} checked item(s))"
        lines.append(
            f"• {code(group.name)} ({esc(group.language)}): {group.failing} of"
            f" {group.failing_total} failing items{users}"
        )
    return "\n".join(lines)


def check_line(
    row: CheckRow,
    permalink: Callable[[str, str | None], str | None],
    *,
    several_servers: bool = False,
) -> str:
    """One check in a listing: `#3 · when · who · result in words · what`."""
    url = permalink(row.channel, row.card_ts)
    ref = link(url, f"#{row.id}") if url else f"#{row.id}"
    if row.state == "done":
        result = esc(counts_text(row.counts))
    elif row.state == "failed":
        result = f"could not run to its end ({esc(clip(row.error or '', 80))})"
    else:
        result = f"running ({row.total if row.total is not None else '?'} items)"
    render = " · rendered again" if row.render else ""
    on = f" · {esc(row.server or '')}" if several_servers else ""
    return (
        f"• *{ref}*{on} {date(row.created_at)} · {who(row.requested_by)} · {result}{render}"
        f" · {esc(clip(row.description, 80))}"
    )


def health_history_view(
    rows: Sequence[CheckRow],
    permalink: Callable[[str, str | None], str | None],
    *,
    several_servers: bool = False,
) -> Message:
    if not rows:
        return Message("No health checks yet.", [md(":information_source: No health checks yet.")])
    lines = [check_line(row, permalink, several_servers=several_servers) for row in rows]
    return Message(
        f"Last {len(rows)} health checks",
        [
            HeaderBlock(text=plain(f"Health checks: last {len(rows)}", 150)),
            md(clip("\n".join(lines), 3000)),
        ],
    )
