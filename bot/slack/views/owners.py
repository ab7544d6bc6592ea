"""Block Kit for telling content owners about their failed builds: the direct message to one
owner (their items only), and the owners' part of the rebuild's thread summary. Pure. In the
thread an owner is only a Slack mention or their Connect username, never an email; every
Connect string goes through `esc`/`code`/`link`."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from bot.services.rebuilds import ItemView, OwnerFound, OwnerMissing, OwnersOutcome, Progress
from bot.slack.text import clip, code, esc, link
from bot.slack.views.common import MAX_BLOCKS, Message, channel, context, md, on_server, who

MAX_DM_ITEMS = 40  # sections in one DM (Slack allows 50 blocks)
MAX_MENTIONS = 40  # owners mentioned in the summary
MAX_MISSING = 15  # owners not found, listed in the summary
TITLES_PER_OWNER = 5

_REASONS = {
    "no_account": "no Slack account has their Connect email",
    "no_email": "Connect shows no email address for them",
    "unknown_user": "Connect no longer knows this user",
    "connect_error": "Connect could not be asked",
    "lookup_error": "the Slack lookup failed",
}


def _logs(item: ItemView) -> str | None:
    return f"{item.dashboard_url.rstrip('/')}/logs" if item.dashboard_url else None


def _failed_item(item: ItemView) -> str:
    reason = esc(clip(item.error or "no reason given", 600)).replace("\n", "\n> ")
    return (
        f":x: *{link(item.dashboard_url, clip(item.title, 150))}* · {code(item.app_mode)}"
        f"\n> {reason}\n{link(item.dashboard_url, 'Open in Connect')} · {link(_logs(item), 'Logs')}"
    )


def owner_dm(p: Progress, owner: OwnerFound, *, server: str | None = None) -> Message:
    """The one direct message to one owner: their failed items of this rebuild, nobody else's."""
    n = len(owner.items)
    noun = "an item you own" if n == 1 else f"{n} items you own"
    head = (
        f":warning: Rebuild #{p.rebuild_id}{on_server(server)} of Posit Connect content could not"
        f" rebuild {noun}."
    )
    blocks: list[Block] = [md(head)]
    shown = owner.items[:MAX_DM_ITEMS]
    blocks += [md(_failed_item(item)) for item in shown]
    if n > len(shown):
        blocks.append(context(f"…and {n - len(shown)} more of your items failed."))
    blocks.append(
        context(
            f"Started by {who(p.started_by or p.requested_by)} in {channel(p.channel)}:"
            f" {esc(clip(p.description, 200))}. The logs say why a build failed; once the"
            " content is fixed, redeploy it or ask a Connect administrator to rebuild it."
        )
    )
    text = f"Rebuild #{p.rebuild_id}: {n} of your items failed to build"
    return Message(text, blocks[:MAX_BLOCKS])


def _titles(items: Sequence[ItemView]) -> str:
    shown = ", ".join(esc(clip(item.title, 60)) for item in items[:TITLES_PER_OWNER])
    more = f", +{len(items) - TITLES_PER_OWNER} more" if len(items) > TITLES_PER_OWNER else ""
    return shown + more


def _missing_line(owner: OwnerMissing) -> str:
    name = code(clip(owner.username, 60)) if owner.username else "an owner Connect did not name"
    reason = _REASONS.get(owner.reason, "unknown")
    if owner.detail:
        reason += f" ({esc(clip(owner.detail, 80))})"
    return f"• {name}: {reason}. Their failed item(s): {_titles(owner.items)}"


def owners_blocks(outcome: OwnersOutcome) -> list[Block]:
    """The owners' part of the thread summary: who gets a DM, and who cannot, with why."""
    blocks: list[Block] = []
    if outcome.found:
        mentions = [who(owner.user_id) for owner in outcome.found[:MAX_MENTIONS]]
        if len(outcome.found) > MAX_MENTIONS:
            mentions.append(f"+{len(outcome.found) - MAX_MENTIONS} more")
        blocks.append(
            context(
                ":envelope: Each owner of a failed item gets a direct message listing their own"
                f" items: {', '.join(mentions)}."
            )
        )
    if outcome.missing:
        lines = [_missing_line(owner) for owner in outcome.missing[:MAX_MISSING]]
        if len(outcome.missing) > MAX_MISSING:
            lines.append(f"• +{len(outcome.missing) - MAX_MISSING} more owner(s)")
        n = len(outcome.missing)
        head = (
            f":bust_in_silhouette: {n} owner(s) of failed items could not be told in Slack;"
            " please let them know:"
        )
        blocks.append(md("\n".join([head, *lines])))
    return blocks


def with_owners(summary: Message, outcome: OwnersOutcome) -> Message:
    """The final summary with the owners' part added (who is told by DM, who is not)."""
    extra = owners_blocks(outcome)
    if not extra:
        return summary
    return Message(summary.text, [*summary.blocks, *extra][:MAX_BLOCKS])


def dm_refused_reply(rebuild_id: int, refused: Sequence[tuple[str, str]]) -> Message:
    """Owners whose direct message Slack refused (user id, Slack's error), after the summary
    had announced it."""
    names = ", ".join(f"{who(user_id)} ({esc(error)})" for user_id, error in refused[:40])
    text = (
        f":warning: Slack refused the direct message to {names}; please tell them about their"
        " failed items (listed in this thread)."
    )
    return Message(f"Rebuild #{rebuild_id}: some owners could not be told", [md(text)])
