"""Rebuild commands and buttons: plan (card with Start/Discard), start, discard, cancel, status,
history, and "Rebuild affected content" after a cache deletion. Every destructive act (start,
cancel) and every refusal is audited. The card becomes the progress message once started
(see `bot.slack.rebuild_progress`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.connect import ConnectError, ContentFilter, RuntimeCache
from bot.services.pending import Claim, Pending
from bot.services.rebuilds import RebuildNotFound, RebuildService
from bot.slack import parser
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.flows.caches import KIND as DELETION_KIND
from bot.slack.flows.caches import deleted_caches, post_or_explain
from bot.slack.poster import SlackUnavailable
from bot.slack.rebuild_views import (
    cancel_requested_reply,
    cancel_view,
    history_view,
    plan_card_view,
    status_view,
)
from bot.slack.views import Actions, denied_view, error_view, notice_view

log = logging.getLogger(__name__)
KIND = "rebuild_start"


def install(
    handlers: dict[type, tuple[str | None, Callable[..., None]]],
    actions: dict[str, Callable[[Deps, Click], None]],
) -> None:
    """Register the rebuild commands and buttons with the Slack listeners."""
    handlers[parser.RebuildPlan] = ("Planning the rebuild: asking Connect for its content…", plan)
    handlers[parser.RebuildStatus] = (None, status)
    handlers[parser.RebuildCancel] = (None, cancel_command)
    handlers[parser.RebuildHistory] = (None, history)
    actions[Actions.REBUILD_AFFECTED] = plan_affected
    actions[Actions.REBUILD_START] = start
    actions[Actions.REBUILD_DISCARD] = discard
    actions[Actions.REBUILD_CANCEL] = cancel_click


def _service(deps: Deps) -> RebuildService:
    service = deps.rebuilds
    if not isinstance(service, RebuildService):
        raise RuntimeError("the rebuild engine is not wired (deps.rebuilds)")
    return service


def _audit(
    deps: Deps,
    req: Invocation,
    action: str,
    outcome: str,
    *,
    target: str = "",
    reference: str | None = None,
    detail: str = "",
    channel: str | None = None,
) -> None:
    deps.audit.record(
        actor=req.user,
        action=action,
        outcome=outcome,
        target=target,
        channel=channel or req.channel,
        reference=reference,
        detail=detail,
    )


# --- planning --------------------------------------------------------------------------------


def plan(deps: Deps, req: Invocation, parsed: parser.RebuildPlan) -> None:
    decision = deps.authz.destroy(req.user, req.channel)
    if not decision.allowed:
        deps.poster.respond(req.response_url, denied_view(decision.reason))
        _audit(
            deps, req, "rebuild_plan", "denied", target=parsed.description, detail=decision.reason
        )
        return
    _plan_and_post(
        deps,
        req,
        description=parsed.description,
        parallelism=parsed.parallelism,
        content_filter=parsed.filter,
    )


def plan_affected(deps: Deps, click: Click) -> None:
    """'Rebuild affected content' on a finished deletion card: the deleted caches' content."""
    deletion = deps.pending.get(click.value)
    if deletion is None or deletion.kind != DELETION_KIND:
        deps.poster.respond(click.response_url, notice_view("That deletion no longer exists."))
        return
    caches = deleted_caches(deletion)
    labels = ", ".join(cache.label for cache in caches)
    decision = deps.authz.destroy(click.user, click.channel)
    if not decision.allowed:
        deps.poster.respond(click.response_url, denied_view(decision.reason))
        _audit(deps, click, "rebuild_plan", "denied", target=labels, detail=decision.reason)
        return
    if not caches:
        deps.poster.respond(
            click.response_url, notice_view("No cache was deleted, so nothing needs a rebuild.")
        )
        return
    _plan_and_post(
        deps,
        click,
        description=f"content using the deleted caches: {labels}",
        parallelism=None,
        caches=caches,
        reference=deletion.id,
    )


def _plan_and_post(
    deps: Deps,
    req: Invocation,
    *,
    description: str,
    parallelism: int | None,
    content_filter: ContentFilter | None = None,
    caches: list[RuntimeCache] | None = None,
    reference: str | None = None,
) -> None:
    service = _service(deps)
    try:
        summary = service.plan(
            requested_by=req.user,
            channel=req.channel,
            description=description,
            parallelism=parallelism,
            content_filter=content_filter,
            caches=caches,
        )
    except ConnectError as exc:
        deps.poster.respond(req.response_url, error_view("Planning the rebuild", exc.reason))
        return
    if summary.total == 0:
        service.close_plan(summary.rebuild_id, "discarded")
        extra = (
            f" ({summary.skipped} matching item(s) are already in a running rebuild.)"
            if summary.skipped
            else ""
        )
        deps.poster.respond(
            req.response_url,
            notice_view(f"Nothing to rebuild: no published content matches {description}.{extra}"),
        )
        return
    pending = deps.pending.create(
        kind=KIND,
        requested_by=req.user,
        channel=req.channel,
        payload={"rebuild_id": summary.rebuild_id},
    )
    card = plan_card_view(
        summary,
        pending_id=pending.id,
        expires_at=pending.expires_at,
        two_person=deps.two_person_rule,
    )
    ts = post_or_explain(deps, req, card)
    if ts is None:
        deps.pending.finish(pending.id, state="failed", result={"reason": "could not post card"})
        service.close_plan(summary.rebuild_id, "discarded")
        return
    deps.pending.attach_message(pending.id, ts)
    service.attach_message(summary.rebuild_id, ts)
    _audit(
        deps,
        req,
        "rebuild_plan",
        "requested",
        target=description,
        reference=reference or pending.id,
        detail=f"rebuild #{summary.rebuild_id}: {summary.total} item(s),"
        f" {summary.skipped} skipped, parallelism {summary.parallelism}",
    )


# --- start / discard / expiry ----------------------------------------------------------------


def start(deps: Deps, click: Click) -> None:
    pending = _pending(deps, click)
    if pending is None:
        return
    service = _service(deps)
    rebuild_id = int(pending.payload["rebuild_id"])
    target = f"rebuild #{rebuild_id}"
    refusal = _start_refusal(deps, click, pending)
    if refusal:
        deps.poster.respond(click.response_url, denied_view(refusal))
        _audit(
            deps,
            click,
            "rebuild_start",
            "denied",
            target=target,
            reference=pending.id,
            detail=refusal,
        )
        return
    claim, current = deps.pending.claim(pending.id, user_id=click.user, new_state="confirmed")
    if claim is not Claim.OK:
        _lost_claim(deps, click, claim, current or pending, "rebuild_start")
        return
    if not service.start(rebuild_id, started_by=click.user):
        deps.pending.finish(pending.id, state="failed", result={"reason": "not startable"})
        deps.poster.respond(
            click.response_url, notice_view(f"Rebuild #{rebuild_id} can no longer be started.")
        )
        return
    deps.pending.finish(pending.id, state="done", result={"rebuild_id": rebuild_id})
    _audit(
        deps,
        click,
        "rebuild_start",
        "started",
        target=target,
        reference=pending.id,
        channel=pending.channel,
    )


def discard(deps: Deps, click: Click) -> None:
    pending = _pending(deps, click)
    if pending is None:
        return
    rebuild_id = int(pending.payload["rebuild_id"])
    target = f"rebuild #{rebuild_id}"
    if click.user != pending.requested_by:
        decision = deps.authz.destroy(click.user, click.channel)
        if not decision.allowed:
            reason = "Only the requester or a connect-bot administrator can discard this plan."
            deps.poster.respond(click.response_url, denied_view(reason))
            _audit(
                deps,
                click,
                "rebuild_discard",
                "denied",
                target=target,
                reference=pending.id,
                detail=reason,
            )
            return
    claim, current = deps.pending.claim(pending.id, user_id=click.user, new_state="cancelled")
    if claim is not Claim.OK:
        _lost_claim(deps, click, claim, current or pending, "rebuild_discard")
        return
    _service(deps).close_plan(rebuild_id, "discarded")
    _update_card(deps, pending, "discarded", click.user)
    _audit(deps, click, "rebuild_discard", "discarded", target=target, reference=pending.id)


def expire_overdue(deps: Deps) -> int:
    """Scheduler job: plans nobody started within the TTL expire, and their cards say so."""
    if deps.rebuilds is None:
        return 0
    expired = deps.pending.expire_overdue(KIND)
    for pending in expired:
        rebuild_id = int(pending.payload["rebuild_id"])
        _service(deps).close_plan(rebuild_id, "expired")
        _update_card(deps, pending, "expired")
        deps.audit.record(
            actor=pending.requested_by,
            action="rebuild_plan",
            outcome="expired",
            target=f"rebuild #{rebuild_id}",
            channel=pending.channel,
            reference=pending.id,
        )
    return len(expired)


def _pending(deps: Deps, click: Click) -> Pending | None:
    pending = deps.pending.get(click.value)
    if pending is None or pending.kind != KIND:
        deps.poster.respond(click.response_url, notice_view("That plan no longer exists."))
        return None
    return pending


def _start_refusal(deps: Deps, click: Click, pending: Pending) -> str | None:
    decision = deps.authz.destroy(click.user, click.channel)
    if not decision.allowed:
        return decision.reason
    if deps.two_person_rule and click.user == pending.requested_by:
        return (
            "Two-person rule: someone other than the requester must start this rebuild "
            "(BOT_TWO_PERSON_RULE is on). Ask another connect-bot administrator."
        )
    return None


def _lost_claim(deps: Deps, click: Click, claim: Claim, pending: Pending, action: str) -> None:
    rebuild_id = int(pending.payload["rebuild_id"])
    if claim is Claim.EXPIRED:
        if pending.state == "pending":  # this click noticed the expiry
            _service(deps).close_plan(rebuild_id, "expired")
            _update_card(deps, pending, "expired")
            _audit(
                deps,
                click,
                action,
                "expired",
                target=f"rebuild #{rebuild_id}",
                reference=pending.id,
            )
        text = "This plan expired, so nothing was built. Run `/connect rebuild` again."
    elif claim is Claim.USED:
        text = f"This plan was already handled ({pending.state}); nothing more was done."
    else:
        text = "That plan no longer exists."
    deps.poster.respond(click.response_url, notice_view(text))


def _update_card(deps: Deps, pending: Pending, state: str, decided_by: str | None = None) -> None:
    if not pending.message_ts:
        return
    summary = _service(deps).summary(int(pending.payload["rebuild_id"]))
    view = plan_card_view(summary, pending_id=pending.id, state=state, decided_by=decided_by)
    try:
        deps.poster.update(pending.channel, pending.message_ts, view)
    except SlackUnavailable as exc:
        log.warning("could not update the rebuild plan card: %s", exc.error)


# --- cancel, status, history -----------------------------------------------------------------


def cancel_command(deps: Deps, req: Invocation, parsed: parser.RebuildCancel) -> None:
    _cancel(deps, req, parsed.rebuild_id)


def cancel_click(deps: Deps, click: Click) -> None:
    if click.value.isdigit():
        _cancel(deps, click, int(click.value))


def _cancel(deps: Deps, req: Invocation, rebuild_id: int) -> None:
    target = f"rebuild #{rebuild_id}"
    decision = deps.authz.destroy(req.user, req.channel)
    if not decision.allowed:
        deps.poster.respond(req.response_url, denied_view(decision.reason))
        _audit(deps, req, "rebuild_cancel", "denied", target=target, detail=decision.reason)
        return
    service = _service(deps)
    try:
        result = service.cancel(rebuild_id, by=req.user)
    except RebuildNotFound:
        deps.poster.respond(req.response_url, notice_view(f"There is no rebuild #{rebuild_id}."))
        return
    if not result.ok:
        deps.poster.respond(
            req.response_url,
            notice_view(f"Rebuild #{rebuild_id} is {result.state}; there is nothing to cancel."),
        )
        return
    _audit(
        deps,
        req,
        "rebuild_cancel",
        "cancelled",
        target=target,
        detail=f"{result.building} running build(s) left to finish, {result.queued} queued",
    )
    deps.poster.respond(req.response_url, cancel_view(rebuild_id, result.building, result.queued))
    progress = service.progress(rebuild_id)
    if progress is not None and progress.thread_ts:
        try:
            deps.poster.post(
                progress.channel,
                cancel_requested_reply(rebuild_id, req.user),
                thread_ts=progress.thread_ts,
            )
        except SlackUnavailable as exc:
            log.warning("could not post the cancel notice: %s", exc.error)


def status(deps: Deps, req: Invocation, parsed: parser.RebuildStatus) -> None:
    service = _service(deps)
    if parsed.rebuild_id is not None:
        progress = service.progress(parsed.rebuild_id)
        missing = f"There is no rebuild #{parsed.rebuild_id}."
    else:
        progress = service.latest(active_only=True) or service.latest()
        missing = "No rebuild has run yet. `/connect rebuild` plans one."
    if progress is None:
        deps.poster.respond(req.response_url, notice_view(missing))
        return
    deps.poster.respond(
        req.response_url,
        status_view(progress, permalink(deps, progress.channel, progress.thread_ts)),
    )


def history(deps: Deps, req: Invocation, parsed: parser.RebuildHistory) -> None:
    rebuilds = _service(deps).history(parsed.limit)

    def link_to(channel: str, ts: str | None) -> str | None:
        return permalink(deps, channel, ts)

    deps.poster.respond(req.response_url, history_view(rebuilds, link_to))


def permalink(deps: Deps, channel: str, ts: str | None) -> str | None:
    """Slack's message permalink format, built locally (no chat.getPermalink call per row)."""
    base: Any = getattr(deps.rebuilds, "team_url", None)
    if not base or not ts or not channel.isalnum():
        return None
    return f"{str(base).rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
