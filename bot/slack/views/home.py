"""The App Home tab: per Connect server its runtime caches, its active (and just finished)
rebuilds with progress, and buttons that expand a part of Home; the audit log for admins.

Pure: the overview and `now` in, a `HomeView` out. Home buttons only change what Home shows
(List caches, Rebuild history, Plan a rebuild): nothing destructive starts from Home, which has
no channel for the plan card, the confirmation and the thread. Non-admins see neither the audit
log nor "Plan a rebuild". With BOT_ALLOWED_CHANNELS set, whoever is neither an admin nor a
member of those channels sees one line saying where to ask, and no button. Every Connect
string goes through `esc`/`code`/`link`/`plain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
)

from bot.services.home import HomeOverview, Section, ServerHome
from bot.services.rebuilds import Progress
from bot.services.schedules import Scheduled
from bot.slack.text import clip, code, esc, link, plain
from bot.slack.views.audit import audit_view
from bot.slack.views.common import context, date, duration, md, who
from bot.slack.views.health import check_line
from bot.slack.views.rebuilds import STATE_LABEL, Permalink, counts_line, progress_bar

MAX_HOME_BLOCKS = 100  # views.publish: a Home view has at most 100 blocks
CACHES_SHOWN = 8  # per server, before "List caches"
CACHES_EXPANDED = 100
REBUILDS_SHOWN = 5  # active rebuilds per server
SCHEDULED_SHOWN = 5  # scheduled rebuilds per server
FINISHED_SHOWN = 3
BLOCKS_PER_SERVER = 6  # divider, header, caches, rebuilds, expanded part, buttons
FIXED_BLOCKS = 6  # header, intro, audit (divider, header, list), footer
CALLBACK_ID = "connect_home"


class HomeActions:
    """action_id values of the Home buttons (the value is the server's name)."""

    CACHES = "home_caches"
    HISTORY = "home_history"
    PLAN = "home_plan"


SECTION_OF_ACTION = {
    HomeActions.CACHES: "caches",
    HomeActions.HISTORY: "history",
    HomeActions.PLAN: "plan",
}


@dataclass(frozen=True)
class HomeView:
    blocks: list[Block] = field(default_factory=list)
    private_metadata: str = ""

    def to_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "type": "home",
            "callback_id": CALLBACK_ID,
            "blocks": self._blocks_json,
        }
        if self.private_metadata:
            view["private_metadata"] = self.private_metadata[:3000]
        return view

    @cached_property
    def _blocks_json(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]


def home_view(overview: HomeOverview, permalink: Permalink, *, now: datetime) -> HomeView:
    if overview.refused is not None:
        # BOT_ALLOWED_CHANNELS: nothing of Connect, only where to ask (the reason is ours:
        # channel mentions built from the configuration).
        return HomeView([HeaderBlock(text="Posit Connect"), md(clip(overview.refused, 3000))])
    role = (
        "You are a connect-bot administrator: the audit log is at the bottom."
        if overview.admin
        else "Anyone can look here; deleting caches and rebuilding content is for connect-bot"
        " administrators."
    )
    blocks: list[Block] = [
        HeaderBlock(text="Posit Connect: runtime caches and rebuilds"),
        context(f"Updated {date(now, '{time}', f'{now:%H:%M} UTC')} · {role}"),
    ]
    room = (MAX_HOME_BLOCKS - FIXED_BLOCKS - 1) // BLOCKS_PER_SERVER  # 1: "more servers"
    shown = overview.servers[:room]
    for index, server in enumerate(shown):
        blocks += _server_blocks(overview, server, index, permalink, now)
    if len(overview.servers) > len(shown):
        rest = ", ".join(esc(s.name) for s in overview.servers[len(shown) :])
        blocks.append(
            context(f"Not shown: {clip(rest, 2000)}. `/connect servers` lists every server.")
        )
    if overview.admin:
        blocks.append(DividerBlock())
        blocks += audit_view(overview.audit, several_servers=overview.several).blocks
    blocks.append(
        context(
            "Deleting caches and starting rebuilds happen in a channel, with Connect's dry run"
            " and a confirmation card. `/connect help` lists every command."
        )
    )
    return HomeView(blocks[:MAX_HOME_BLOCKS])


def _server_blocks(
    overview: HomeOverview,
    server: ServerHome,
    index: int,
    permalink: Permalink,
    now: datetime,
) -> list[Block]:
    section = (
        overview.section if overview.section and overview.section.server == server.name else None
    )
    title = f"Connect {server.name}" if overview.several else "Connect"
    if overview.several and server.default:
        title += " (default)"
    blocks: list[Block] = [
        DividerBlock(),
        HeaderBlock(text=plain(title, 150)),
        md(f"{link(server.url, server.url)}\n{_caches_summary(server, now)}"),
        md(_rebuilds_text(server, permalink, now)),
    ]
    if server.health is not None:
        blocks.append(md(f"*Latest content health check*\n{check_line(server.health, permalink)}"))
    expanded = _expanded(overview, server, section, permalink, now)
    if expanded is not None:
        blocks.append(expanded)
    blocks.append(_buttons(overview, server, section, index))
    return blocks


def _cache_line(language: str, version: str, image: str) -> str:
    return f"• {esc(language)} {esc(version)} · {code(image)}"


def _as_of(server: ServerHome, now: datetime) -> str:
    when = server.caches_as_of
    if when is None or (now - when).total_seconds() < 60:
        return ""
    return f" (as of {date(when, '{time}', f'{when:%H:%M} UTC')})"


def _caches_summary(server: ServerHome, now: datetime) -> str:
    caches = server.caches
    error = esc(clip(server.caches_error, 300)) if server.caches_error else ""
    if caches is None:
        if error:
            return f":warning: Connect could not list its caches: {error}"
        return ":hourglass_flowing_sand: Asking Connect for its runtime caches…"
    head = f":package: *Runtime caches: {len(caches)}*{_as_of(server, now)}"
    if error:
        head += f"\n:warning: Connect did not answer just now: {error}"
    elif server.caches_pending:
        head += " · asking Connect again…"
    if not caches:
        return head + "\nNo runtime caches."
    lines = [_cache_line(c.language, c.version, c.image_name) for c in caches[:CACHES_SHOWN]]
    if len(caches) > CACHES_SHOWN:
        lines.append(f"+{len(caches) - CACHES_SHOWN} more: *List caches* shows them all.")
    return clip("\n".join([head, *lines]), 3000)


def _ref(p: Progress, permalink: Permalink) -> str:
    url = permalink(p.channel, p.thread_ts)
    return link(url, f"Rebuild #{p.rebuild_id}") if url else f"Rebuild #{p.rebuild_id}"


def _thread(p: Progress, permalink: Permalink) -> str:
    url = permalink(p.channel, p.thread_ts)
    return link(url, "the thread") if url else "its thread"


def _active_text(p: Progress, permalink: Permalink, now: datetime) -> str:
    timing = f"Elapsed {duration(p.elapsed(now))}"
    eta = p.eta(now)
    timing += f" · about {duration(eta)} left" if eta is not None else " · estimating time left"
    return "\n".join(
        [
            f"*{_ref(p, permalink)}* · {STATE_LABEL.get(p.state, esc(p.state))}"
            f" · {esc(clip(p.description, 120))}",
            progress_bar(p.done_items, p.total),
            counts_line(p),
            f"{timing} · started by {who(p.started_by)} · progress and failures in"
            f" {_thread(p, permalink)}",
        ]
    )


def _finished_text(p: Progress, permalink: Permalink, now: datetime) -> str:
    c = p.counts
    counts = f"{c.get('succeeded', 0)} succeeded, {c.get('failed', 0)} failed"
    if c.get("cancelled"):
        counts += f", {c['cancelled']} cancelled"
    ended = date(p.finished_at, "{time}") if p.finished_at else "-"
    state = "cancelled" if p.state == "cancelled" else "finished"
    return (
        f"{':octagonal_sign:' if state == 'cancelled' else ':checkered_flag:'}"
        f" *{_ref(p, permalink)}* {state} at {ended} after {duration(p.elapsed(now))}:"
        f" {counts} · {esc(clip(p.description, 80))}"
    )


def _rebuilds_text(server: ServerHome, permalink: Permalink, now: datetime) -> str:
    parts = [_active_text(p, permalink, now) for p in server.active[:REBUILDS_SHOWN]]
    if len(server.active) > REBUILDS_SHOWN:
        parts.append(
            f"+{len(server.active) - REBUILDS_SHOWN} more running: `/connect rebuild status ID`."
        )
    if not server.active:
        parts.append(":white_circle: No rebuild is running.")
    parts += [_finished_text(p, permalink, now) for p in server.finished[:FINISHED_SHOWN]]
    if server.scheduled:
        parts.append(_scheduled_text(server.scheduled))
    return clip("\n\n".join(parts), 3000)


def _scheduled_text(scheduled: Sequence[Scheduled]) -> str:
    lines = [f":alarm_clock: *Scheduled: {len(scheduled)}*"]
    for item in scheduled[:SCHEDULED_SHOWN]:
        lines.append(
            f"• #{item.rebuild_id} {date(item.scheduled_for)} · {esc(clip(item.description, 80))}"
            f" · {item.total} item(s) · by {who(item.scheduled_by)}"
        )
    if len(scheduled) > SCHEDULED_SHOWN:
        lines.append(f"+{len(scheduled) - SCHEDULED_SHOWN} more: `/connect rebuild scheduled`.")
    return "\n".join(lines)


def _name_flag(overview: HomeOverview, server: ServerHome) -> str:
    return f" -n {server.name}" if overview.several else ""


def _expanded(
    overview: HomeOverview,
    server: ServerHome,
    section: Section | None,
    permalink: Permalink,
    now: datetime,
) -> Block | None:
    if section is None:
        return None
    flag = esc(_name_flag(overview, server))
    if section.kind == "caches":
        caches = server.caches or ()
        lines = [_cache_line(c.language, c.version, c.image_name) for c in caches]
        listed = _fit(lines, CACHES_EXPANDED, 2500, "more")
        if not caches:
            listed = "Nothing to list yet." if server.caches is None else "No runtime caches."
        return md(
            f"*All runtime caches ({len(caches)})*\n{listed}\nTo delete some, run"
            f" `/connect caches list{flag}` in a channel: each has a *Delete…* button, Connect"
            " dry-runs the deletion, and an administrator confirms it on a card."
        )
    if section.kind == "history":
        if not server.history:
            return md("*Rebuild history*\nNo rebuild yet.")
        lines = [_history_line(p, permalink, now) for p in server.history]
        return md(f"*Rebuild history: last {len(server.history)}*\n{_fit(lines, 50, 2800, 'more')}")
    if section.kind == "plan" and overview.admin:
        return md(
            "*Plan a rebuild*\nIn the channel where the team works, run"
            f" `/connect rebuild{flag}` to rebuild every published item, or narrow it, e.g."
            f" `/connect rebuild{flag} --py-version 3.11.3` or `--content-type shiny`."
            " connect-bot posts a *plan*: counts by content type and runtime, the order (one"
            " warm-up build per runtime first) and the parallelism. Nothing runs until an"
            " administrator clicks *Start* on it; progress then shows here and in its thread."
        )
    return None


def _fit(lines: Sequence[str], count: int, chars: int, noun: str) -> str:
    shown: list[str] = []
    used = 0
    for line in lines[:count]:
        if used + len(line) + 1 > chars:
            break
        shown.append(line)
        used += len(line) + 1
    if len(shown) < len(lines):
        shown.append(f"+{len(lines) - len(shown)} {noun}")
    return "\n".join(shown)


def _history_line(p: Progress, permalink: Permalink, now: datetime) -> str:
    c = p.counts
    counts = f"{c.get('succeeded', 0)} ok, {c.get('failed', 0)} failed of {p.total}"
    started = date(p.started_at or p.created_at)
    took = duration(p.elapsed(now)) if p.started_at else "not started"
    return (
        f"• *{_ref(p, permalink)}* {started} · {who(p.started_by or p.requested_by)}"
        f" · {esc(p.state)} · {counts} · {took} · {esc(clip(p.description, 60))}"
    )


def _buttons(
    overview: HomeOverview, server: ServerHome, section: Section | None, index: int
) -> ActionsBlock:
    def button(action_id: str, label: str, hide: str) -> ButtonElement:
        kind = SECTION_OF_ACTION[action_id]
        is_open = section is not None and section.kind == kind
        return ButtonElement(
            text=hide if is_open else label,
            action_id=action_id,
            value=clip(server.name, 2000),
            accessibility_label=plain(f"{hide if is_open else label} of {server.name}", 75),
        )

    elements = [
        button(HomeActions.CACHES, "List caches", "Hide caches"),
        button(HomeActions.HISTORY, "Rebuild history", "Hide history"),
    ]
    if overview.admin:
        elements.append(button(HomeActions.PLAN, "Plan a rebuild", "Hide the plan help"))
    return ActionsBlock(block_id=f"home_server_{index}", elements=elements)
