"""`/connect health`: the counts in words, the items that fail to start with their errors, the
runtimes and shared packages of the failures, and what could not be checked. Every Connect
string (titles, log lines, package names) goes through `esc`/`code`/`link`/`clip`."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, HeaderBlock

from bot.services.health import (
    CouldNotCheck,
    Counts,
    FailsToStart,
    HealthReport,
    ItemHealth,
    PackageFailures,
    RuntimeFailures,
)
from bot.services.health.runner import Progress
from bot.slack.text import clip, code, esc, link, plain
from bot.slack.views.common import Message, context, md, on_server

MAX_FAILING = 15
MAX_UNCHECKED = 8
MAX_REASON = 200


def counts_text(counts: Counts) -> str:
    """ "N checked: A start, B fail to start, C could not be checked, D skipped"."""
    return (
        f"{counts.total} checked: {counts.starts} start, {counts.fails} fail to start,"
        f" {counts.unchecked} could not be checked, {counts.skipped} skipped"
    )


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


def health_progress_view(progress: Progress, *, server_label: str | None = None) -> Message:
    row, counts = progress.row, progress.counts
    head = f"{_title(row.id)}{on_server(server_label)}"
    of = f" of {row.total}" if row.total is not None else ""
    line = (
        f":hourglass_flowing_sand: Checking {esc(clip(row.description, 300))}:"
        f" {counts.total}{of} items so far ({counts.starts} start, {counts.fails} fail to"
        f" start, {counts.unchecked} could not be checked, {counts.skipped} skipped);"
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
    report: HealthReport, *, server_label: str | None = None, check_id: int | None = None
) -> Message:
    counts = report.counts
    summary = counts_text(counts)
    head = f"{_title(check_id)}{on_server(server_label)}"
    blocks: list[Block] = [HeaderBlock(text=plain(head, 150))]
    emoji = ":white_check_mark:" if not counts.fails else ":rotating_light:"
    blocks.append(md(f"{emoji} {esc(summary)}."))
    failing = sorted(report.failing, key=lambda r: r.title.lower())
    if failing:
        blocks.append(md(_items_text("*Fail to start*", failing, MAX_FAILING)))
    if report.by_runtime:
        blocks.append(md(_runtimes_text(report.by_runtime)))
    if report.by_package:
        blocks.append(md(_packages_text(report.by_package)))
    unchecked = [r for r in report.items if isinstance(r.verdict, CouldNotCheck)]
    if unchecked:
        blocks.append(md(_items_text("*Could not be checked*", unchecked, MAX_UNCHECKED)))
    skipped = "Skipped: static, locked and unpublished content"
    skipped += "." if report.rendered else ", and rendered documents (they are not rendered again)."
    blocks.append(context(skipped))
    for note in report.notes:
        blocks.append(context(f":warning: {esc(note)}"))
    return Message(esc(f"Content health: {summary}."), blocks)


def _reason(result: ItemHealth) -> str:
    verdict = result.verdict
    if isinstance(verdict, FailsToStart | CouldNotCheck):
        return verdict.reason
    return ""


def _items_text(head: str, results: Sequence[ItemHealth], limit: int) -> str:
    lines = [head]
    for result in results[:limit]:
        title = link(result.item.dashboard_url, clip(result.title, 120))
        reason = _reason(result)
        lines.append(f"• {title}: {code(clip(reason, MAX_REASON))}" if reason else f"• {title}")
    if len(results) > limit:
        lines.append(f"• …and {len(results) - limit} more")
    return "\n".join(lines)


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
