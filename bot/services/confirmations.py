"""Deciding a single-use confirmation: who may, and exactly one of many clicks wins.

Shared by cache deletions (Confirm, Cancel) and rebuild plans (Start, Discard): find the request,
check the person, take it with one conditional UPDATE, and say why when the click lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.services.audit import AuditStore
from bot.services.authz import Authorizer
from bot.services.outcomes import Actor, AlreadyHandled, Denied, Expired, NotFound, Refusal
from bot.services.pending import Claim, Pending, PendingStore

Rule = Callable[[Actor, Pending], str | None]


class Confirmations:
    def __init__(
        self,
        pending: PendingStore,
        authz: Authorizer,
        audit: AuditStore,
        *,
        two_person_rule: bool = False,
    ) -> None:
        self.pending = pending
        self.authz = authz
        self.audit = audit
        self.two_person_rule = two_person_rule

    # ---- who may decide ------------------------------------------------------------------

    def confirmer(self, what: str) -> Rule:
        """An administrator, and with the two-person rule not the requester. `what`: the act,
        as in "someone other than the requester must {what}"."""

        def refusal(actor: Actor, pending: Pending) -> str | None:
            decision = self.authz.admin_in(actor.user, actor.channel)
            if not decision.allowed:
                return decision.reason
            if self.two_person_rule and actor.user == pending.requested_by:
                return (
                    f"Two-person rule: someone other than the requester must {what} "
                    "(BOT_TWO_PERSON_RULE is on). Ask another connect-bot administrator."
                )
            return None

        return refusal

    def requester_or_admin(self, what: str) -> Rule:
        def refusal(actor: Actor, pending: Pending) -> str | None:
            if actor.user == pending.requested_by:
                return None
            if self.authz.admin_in(actor.user, actor.channel).allowed:
                return None
            return f"Only the requester or a connect-bot administrator can {what}."

        return refusal

    # ---- deciding ------------------------------------------------------------------------

    def decide(
        self,
        actor: Actor,
        pending_id: str,
        *,
        kind: str,
        new_state: str,
        rule: Rule,
        action: str,
        describe: Callable[[Pending], tuple[str, str | None]],
        on_expired: Callable[[Pending], None],
        message_ts: str | None = None,
        instance_id: str | None = None,
    ) -> Pending | Refusal:
        """Take the request for `actor`, or say why not. Refusals and expiries are audited
        under `action`; the winner's own audit record is the caller's (it knows the outcome).

        `describe(pending)` gives the audit target and server; `on_expired(pending)` runs when
        this click is the one that noticed the expiry (the card must say so). `instance_id`: the
        process that will carry the act out, so a crash can be told from work under way."""
        pending = self.pending.get(pending_id)
        if pending is None or pending.kind != kind:
            return NotFound(kind)
        pending = _with_message(pending, message_ts)
        reason = rule(actor, pending)
        if reason:
            self._audit(actor, action, "denied", pending, describe, detail=reason)
            return Denied(reason)
        claim, current = self.pending.claim(
            pending.id, user_id=actor.user, new_state=new_state, instance_id=instance_id
        )
        if claim is Claim.OK:
            return _with_message(current or pending, message_ts)
        current = _with_message(current or pending, message_ts)
        if claim is Claim.EXPIRED:
            if current.state == "pending":  # this click is the one that noticed the expiry
                on_expired(current)
                self._audit(actor, action, "expired", current, describe)
            return Expired()
        if claim is Claim.USED:
            return AlreadyHandled(current.state)
        return NotFound(kind)

    def _audit(
        self,
        actor: Actor,
        action: str,
        outcome: str,
        pending: Pending,
        describe: Callable[[Pending], tuple[str, str | None]],
        *,
        detail: str = "",
    ) -> None:
        target, server = describe(pending)
        self.audit.record(
            actor=actor.user,
            action=action,
            outcome=outcome,
            target=target,
            channel=actor.channel or pending.channel,
            reference=pending.id,
            detail=detail,
            server=server,
        )


def _with_message(pending: Pending, message_ts: str | None) -> Pending:
    """A click can beat the card's ts being stored; the click itself names the message."""
    if pending.message_ts or not message_ts:
        return pending
    return replace(pending, message_ts=message_ts)
