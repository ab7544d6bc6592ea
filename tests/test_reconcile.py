"""Reconciliation and honest failures, in one process.

A rebuild Start whose process died between the claim and the start leaves a `confirmed`
request held by a process that is gone; the window is too short to hold a real process in, so
these tests make such a request the way a crash leaves it (held by an instance that no longer
exists) and let the reconciler find it. A DELETE that Connect does not answer is checked
against the cache list before anything is said about it.
"""

from __future__ import annotations

from datetime import timedelta

from rebuild_support import plan, rebuild_id_of, rebuild_row, wait_final
from sqlalchemy import select, update

from bot.store import AuditEntry, PendingAction, utcnow
from bot.store.coordination import Coordinator
from sim.stack import ADMIN, OPS_CHANNEL, Stack, start_stack
from tests.slack_helpers import card, has_cache, real_deletes


def _dead_holder() -> str:
    """The holder a killed process leaves: an instance id no process holds any more (on
    SQLite, any instance but this process's)."""
    return "0123456789abcdef"


def _orphan_start(stack: Stack, pending_id: str, *, age: timedelta = timedelta()) -> None:
    """What a crash between the Start claim and the start leaves in the database."""
    with stack.runtime.db.session() as session:
        session.execute(
            update(PendingAction)
            .where(PendingAction.id == pending_id)
            .values(
                state="confirmed",
                decided_by=ADMIN,
                decided_at=utcnow() - age,
                holder=_dead_holder(),
            )
        )


def _audit(stack: Stack, action: str) -> list[tuple[str, str]]:
    with stack.runtime.db.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ).all()
        return [(row.outcome, row.detail) for row in rows]


def test_an_interrupted_start_is_resumed_and_runs_once() -> None:
    with start_stack(build_seconds=0.05) as stack:
        message = plan(stack, "rebuild --parallelism 4")
        pending_id = message.find_element("rebuild_start")[1]["value"]
        _orphan_start(stack, pending_id)
        assert stack.runtime.services.rebuilds.reconcile() == 1
        assert stack.runtime.services.rebuilds.reconcile() == 0  # taken once, not twice
        wait_final(stack.slack, message.ts)
        rebuild_id = rebuild_id_of(message)
        assert rebuild_row(stack.runtime.db, rebuild_id).state == "done"
        built = stack.connect.builds_started()
        assert len(built) == len(set(built)) > 0
        assert _audit(stack, "rebuild_start") == [("started", "resumed after the bot restarted")]


def test_an_interrupted_start_too_old_to_act_on_closes_the_plan_and_says_so() -> None:
    with start_stack() as stack:
        message = plan(stack, "rebuild")
        pending_id = message.find_element("rebuild_start")[1]["value"]
        _orphan_start(stack, pending_id, age=timedelta(hours=2))
        assert stack.runtime.services.rebuilds.reconcile() == 1
        rebuild_id = rebuild_id_of(message)
        assert rebuild_row(stack.runtime.db, rebuild_id).state == "expired"
        assert stack.connect.builds_started() == []
        assert stack.slack.wait_for(
            lambda s: "could not be started" in s.message(OPS_CHANNEL, message.ts).all_text()
        )
        assert "Start" not in stack.slack.message(OPS_CHANNEL, message.ts).button_labels()
        [(outcome, detail)] = _audit(stack, "rebuild_start")
        assert outcome == "failed" and "restarted" in detail


def test_a_start_held_by_a_live_other_replica_is_not_taken_over(postgres_url: str) -> None:
    """On PostgreSQL a second replica holds its advisory lock: its claim is at work, until it
    dies; then the reconciler resumes the start, once."""
    with start_stack(bot_database_url=postgres_url, build_seconds=0.05) as stack:
        other = Coordinator(stack.runtime.db, instance_id="0ther0replica000").start()
        message = plan(stack, "rebuild --parallelism 4")
        pending_id = message.find_element("rebuild_start")[1]["value"]
        with stack.runtime.db.session() as session:
            session.execute(
                update(PendingAction)
                .where(PendingAction.id == pending_id)
                .values(
                    state="confirmed",
                    decided_by=ADMIN,
                    decided_at=utcnow(),
                    holder=other.instance_id,
                )
            )
        try:
            assert stack.runtime.services.rebuilds.reconcile() == 0
            assert rebuild_row(stack.runtime.db, rebuild_id_of(message)).state == "planned"
        finally:
            other.close()  # the other replica dies: its lock goes with it
        assert stack.runtime.services.rebuilds.reconcile() == 1
        wait_final(stack.slack, message.ts)
        assert rebuild_row(stack.runtime.db, rebuild_id_of(message)).state == "done"


def test_an_unanswered_delete_is_checked_before_it_is_reported() -> None:
    """Connect answers the real DELETE with 504 (it never reached Connect's API): the card
    says Connect did not answer and the cache is still listed, not that nothing changed."""
    with start_stack() as stack:
        stack.runtime.services.deletions.runner.settle_seconds = 0.5  # re-check briefly
        stack.requests.command("caches delete -l python -V 3.11.3")
        message = card(stack)
        stack.connect.inject_faults(error_rate=1.0, status=504, paths=r"caches/runtime$")
        value = message.find_element("cache_delete_confirm")[1]["value"]
        stack.requests.click(OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value)
        assert stack.slack.wait_for(
            lambda s: "deletion finished" in s.message(OPS_CHANNEL, message.ts).all_text(), 20
        )
        text = stack.slack.message(OPS_CHANNEL, message.ts).all_text()
        assert "Connect did not answer" in text and "the cache is still listed" in text
        assert "nothing was changed" not in text
        assert has_cache(stack, "Python", "3.11.3")
        assert len(real_deletes(stack)) == 1  # sent once, answered 504, never re-sent
        assert (
            "Retry the failed (1)…" in stack.slack.message(OPS_CHANNEL, message.ts).button_labels()
        )
        outcomes = _audit(stack, "cache_delete")
        assert len(outcomes) == 1 and outcomes[0][0] == "failed"
        assert "still listed" in outcomes[0][1]
        # Retry: a new dry run and a new card for the cache that is still there.
        stack.connect.clear_faults()
        stack.requests.click(OPS_CHANNEL, message.ts, "cache_delete_retry", value=value)

        def new_card(s: object) -> bool:
            return any(
                m.ts != message.ts and "Confirm" in m.button_labels()
                for m in stack.slack.messages(OPS_CHANNEL)
            )

        assert stack.slack.wait_for(new_card)
        assert len(real_deletes(stack)) == 1  # a retry is a new request: nothing sent yet
