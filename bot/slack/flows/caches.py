"""Listing caches, and the deletion flow: dry run, card, confirm/cancel, deletion, audit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot.connect import ConnectError, RuntimeCache
from bot.services.caches import CacheTarget, DeletionResult, PlannedDeletion
from bot.services.pending import Claim, Pending
from bot.slack.deps import Click, Deps, Invocation
from bot.slack.poster import SlackUnavailable
from bot.slack.views import (
    DeletionCard,
    caches_list_view,
    deletion_card_view,
    denied_view,
    error_view,
    not_in_channel_view,
    notice_view,
    rejections_view,
)

log = logging.getLogger(__name__)
KIND = "cache_delete"


def list_caches(deps: Deps, req: Invocation) -> None:
    try:
        caches = deps.caches.list()
    except ConnectError as exc:
        deps.poster.respond(req.response_url, error_view("Listing caches", exc.reason))
        return
    post_or_explain(deps, req, caches_list_view(caches, deps.connect_server))


def post_or_explain(deps: Deps, req: Invocation, message: Any) -> str | None:
    """Post in the channel; if the bot can't, tell the user how to invite it."""
    try:
        return deps.poster.post(req.channel, message)
    except SlackUnavailable as exc:
        if exc.cannot_post_here:
            deps.poster.respond(req.response_url, not_in_channel_view(deps.bot_user_id))
        else:
            deps.poster.respond(req.response_url, error_view("Posting to Slack", exc.error))
        return None


def start_deletion(deps: Deps, req: Invocation, targets: Sequence[CacheTarget]) -> None:
    labels = ", ".join(t.label for t in targets)
    decision = deps.authz.destroy(req.user, req.channel)
    if not decision.allowed:
        deps.poster.respond(req.response_url, denied_view(decision.reason))
        deps.audit.record(
            actor=req.user,
            action="cache_delete_request",
            outcome="denied",
            target=labels,
            channel=req.channel,
            detail=decision.reason,
        )
        return
    try:
        plan = deps.caches.plan(targets)
    except ConnectError as exc:
        deps.poster.respond(req.response_url, error_view("The dry run", exc.reason))
        return
    if plan.rejected:
        deps.poster.respond(req.response_url, rejections_view(plan.rejected, plan.ok))
    if not plan.ok:
        return
    pending = deps.pending.create(
        kind=KIND,
        requested_by=req.user,
        channel=req.channel,
        payload={"deletions": [_planned_json(p) for p in plan.deletions]},
    )
    ts = post_or_explain(deps, req, deletion_card_view(_card(deps, pending)))
    if ts is None:
        deps.pending.finish(pending.id, state="failed", result={"reason": "could not post card"})
        return
    deps.pending.attach_message(pending.id, ts)
    deps.audit.record(
        actor=req.user,
        action="cache_delete_request",
        outcome="requested",
        target=", ".join(p.cache.label for p in plan.deletions),
        channel=req.channel,
        reference=pending.id,
    )


def confirm_deletion(deps: Deps, click: Click) -> None:
    pending = _claim_by_click(deps, click, "confirm", "confirmed", _confirm_refusal)
    if pending is None:
        return
    _update_card(deps, pending, _card(deps, pending, state="running", decided_by=click.user))
    planned_all = _planned(pending)
    results: list[DeletionResult] = []
    for planned in planned_all:
        result = deps.caches.delete(planned.cache)
        results.append(result)
        deps.audit.record(
            actor=click.user,
            action="cache_delete",
            outcome="succeeded" if result.succeeded else "failed",
            target=planned.cache.label,
            channel=pending.channel,
            reference=pending.id,
            detail=result.detail if not result.succeeded else f"Connect task {result.task_id}",
        )
        if len(results) < len(planned_all):
            _update_card(
                deps, pending, _card(deps, pending, "running", click.user, results=results)
            )
    failed = [r for r in results if not r.succeeded]
    deps.pending.finish(
        pending.id,
        state="failed" if failed else "done",
        result={"results": [_result_json(r) for r in results]},
    )
    candidates = sum(
        p.published_items for p, r in zip(planned_all, results, strict=True) if r.succeeded
    )
    final = _card(deps, pending, "done", click.user, results=results)
    _update_card(deps, pending, replace(final, rebuild_candidates=candidates))


def cancel_deletion(deps: Deps, click: Click) -> None:
    pending = _claim_by_click(deps, click, "cancel", "cancelled", _cancel_refusal)
    if pending is not None:
        _update_card(deps, pending, _card(deps, pending, "cancelled", click.user))


def _claim_by_click(
    deps: Deps,
    click: Click,
    verb: str,
    new_state: str,
    refusal: Callable[[Deps, Click, Pending], str | None],
) -> Pending | None:
    """The shared part of Confirm and Cancel: find the request, check the clicker, take it
    (exactly once), audit. Returns the request when this click won it."""
    pending = deps.pending.get(click.value)
    if pending is None or pending.kind != KIND:
        deps.poster.respond(click.response_url, notice_view("That request no longer exists."))
        return None
    action = f"cache_delete_{verb}"
    reason = refusal(deps, click, pending)
    if reason:
        deps.poster.respond(click.response_url, denied_view(reason))
        _audit(deps, click.user, action, "denied", pending, channel=click.channel, detail=reason)
        return None
    claim, current = deps.pending.claim(pending.id, user_id=click.user, new_state=new_state)
    if claim is not Claim.OK:
        _answer_lost_claim(deps, click, claim, current or pending)
        return None
    _audit(deps, click.user, action, new_state, pending)
    return _with_message(pending, click)


def _audit(
    deps: Deps,
    actor: str,
    action: str,
    outcome: str,
    pending: Pending,
    *,
    channel: str | None = None,
    detail: str = "",
) -> None:
    deps.audit.record(
        actor=actor,
        action=action,
        outcome=outcome,
        target=_labels(pending),
        channel=channel or pending.channel,
        reference=pending.id,
        detail=detail,
    )


def expire_overdue(deps: Deps) -> int:
    """Scheduler job: mark unconfirmed requests past their TTL expired and say so on the card."""
    expired = deps.pending.expire_overdue(KIND)
    for pending in expired:
        _update_card(deps, pending, _card(deps, pending, "expired"))
        _audit(deps, pending.requested_by, "cache_delete_request", "expired", pending)
    return len(expired)


# --- helpers ---------------------------------------------------------------------------------


def _cancel_refusal(deps: Deps, click: Click, pending: Pending) -> str | None:
    if click.user == pending.requested_by:
        return None
    if deps.authz.destroy(click.user, click.channel).allowed:
        return None
    return "Only the requester or a connect-bot administrator can cancel this."


def _confirm_refusal(deps: Deps, click: Click, pending: Pending) -> str | None:
    decision = deps.authz.destroy(click.user, click.channel)
    if not decision.allowed:
        return decision.reason
    if deps.two_person_rule and click.user == pending.requested_by:
        return (
            "Two-person rule: someone other than the requester must confirm "
            "(BOT_TWO_PERSON_RULE is on). Ask another connect-bot administrator."
        )
    return None


def _with_message(pending: Pending, click: Click) -> Pending:
    """A click can beat the card's ts being stored; the click itself names the message."""
    if pending.message_ts or not click.message_ts:
        return pending
    return replace(pending, message_ts=click.message_ts)


def _answer_lost_claim(deps: Deps, click: Click, claim: Claim, pending: Pending) -> None:
    pending = _with_message(pending, click)
    if claim is Claim.EXPIRED:
        if pending.state == "pending":  # this click is the one that noticed the expiry
            _update_card(deps, pending, _card(deps, pending, "expired"))
            _audit(deps, click.user, "cache_delete_confirm", "expired", pending)
        text = "This request expired, so nothing was deleted. Run the command again."
    elif claim is Claim.USED:
        text = f"This request was already handled ({pending.state}); nothing more was done."
    else:
        text = "That request no longer exists."
    deps.poster.respond(click.response_url, notice_view(text))


def _card(
    deps: Deps,
    pending: Pending,
    state: str = "pending",
    decided_by: str | None = None,
    *,
    results: Sequence[DeletionResult] = (),
) -> DeletionCard:
    return DeletionCard(
        pending_id=pending.id,
        requested_by=pending.requested_by,
        deletions=_planned(pending),
        state=state,
        decided_by=decided_by,
        results=tuple(results),
        expires_at=pending.expires_at,
        two_person=deps.two_person_rule,
    )


def _update_card(deps: Deps, pending: Pending, card: DeletionCard) -> None:
    if not pending.message_ts:
        return
    try:
        deps.poster.update(pending.channel, pending.message_ts, deletion_card_view(card))
    except SlackUnavailable as exc:
        log.warning("could not update the deletion card: %s", exc.error)


def _planned(pending: Pending) -> list[PlannedDeletion]:
    return [
        PlannedDeletion(
            cache=RuntimeCache(d["language"], d["version"], d["image_name"]),
            published_items=int(d.get("published_items", 0)),
            interactive_items=int(d.get("interactive_items", 0)),
        )
        for d in pending.payload.get("deletions", [])
    ]


def _labels(pending: Pending) -> str:
    return ", ".join(p.cache.label for p in _planned(pending))


def _planned_json(planned: PlannedDeletion) -> dict[str, Any]:
    return {
        "language": planned.cache.language,
        "version": planned.cache.version,
        "image_name": planned.cache.image_name,
        "published_items": planned.published_items,
        "interactive_items": planned.interactive_items,
    }


def _result_json(result: DeletionResult) -> dict[str, Any]:
    return {
        "language": result.cache.language,
        "version": result.cache.version,
        "image_name": result.cache.image_name,
        "succeeded": result.succeeded,
        "task_id": result.task_id,
        "detail": result.detail,
    }


def deleted_caches(pending: Pending) -> list[RuntimeCache]:
    """Caches whose deletion succeeded, for 'Rebuild affected content'."""
    results = (pending.result or {}).get("results") or []
    return [
        RuntimeCache(r["language"], r["version"], r["image_name"])
        for r in results
        if r.get("succeeded")
    ]
