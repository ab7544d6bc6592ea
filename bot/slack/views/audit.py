"""`/connect audit` and the notices posted to the audit channel."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import HeaderBlock

from bot.services.audit import AuditRecord
from bot.slack.text import clip, code, esc
from bot.slack.views.common import (
    Message,
    channel,
    date,
    is_slack_id,
    md,
    notice_view,
    on_server,
    who,
)


def _on(record: AuditRecord, several_servers: bool) -> str:
    return on_server(record.server if several_servers else None)


def audit_view(records: Sequence[AuditRecord], *, several_servers: bool = False) -> Message:
    if not records:
        return notice_view("The audit log is empty.")
    lines = []
    for r in records:
        target = f" · {esc(clip(r.target, 200))}" if r.target else ""
        on = _on(r, several_servers)
        lines.append(
            f"• {date(r.at)} · {who(r.actor)} · {code(r.action)} → *{esc(r.outcome)}*{target}{on}"
        )
    return Message(
        f"Last {len(records)} audit entries",
        [HeaderBlock(text=f"Audit log: last {len(records)}"), md("\n".join(lines))],
    )


def audit_notice_view(record: AuditRecord, *, several_servers: bool = False) -> Message:
    target = f" {esc(clip(record.target, 500))}" if record.target else ""
    detail = f"\n> {esc(clip(record.detail, 500))}" if record.detail else ""
    where = f" in {channel(record.channel)}" if is_slack_id(record.channel) else ""
    act = f"{code(record.action)} → *{esc(record.outcome)}*"
    on = _on(record, several_servers)
    text = f":scroll: {who(record.actor)} {act}{target}{on}{where}{detail}"
    server = f" on {record.server}" if several_servers and record.server else ""
    fallback = f"audit: {record.actor} {record.action} {record.outcome}{server}"
    return Message(esc(fallback), [md(text)])
