"""Cancel: no new builds, running builds finish and are reported, the rest is cancelled."""

from __future__ import annotations

from collections import Counter

from rebuild_support import (
    items,
    plan,
    rebuild_id_of,
    rebuild_row,
    wait_ephemeral,
    wait_final,
)

from sim.connect_seed import generated_seed
from sim.stack import OPS_CHANNEL, VIEWER, start_stack


def test_cancel_stops_dispatching_and_lets_running_builds_finish() -> None:
    with start_stack(seed=generated_seed(30), build_seconds=0.4) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 3")
        rebuild_id = rebuild_id_of(card)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        # Let the warm-up wave finish and the parallel wave begin.
        assert slack.wait_for(lambda s: len(connect.builds_started()) >= 7, timeout=10)

        stack.requests.command(f"rebuild cancel {rebuild_id}", user_id=VIEWER)
        wait_ephemeral(slack, "Only connect-bot administrators", user=VIEWER)
        stack.requests.command(f"rebuild cancel {rebuild_id}")
        ack = wait_ephemeral(slack, f"Cancelling rebuild #{rebuild_id}")
        posts_at_cancel = len(connect.builds_started())
        running_at_cancel = rebuild_row(db, rebuild_id).progress["running_at_cancel"]
        assert 1 <= running_at_cancel <= 3
        assert f"{running_at_cancel} build(s) already running on Connect finish" in ack

        summary = wait_final(slack, card.ts, timeout=10)
        rows = items(db, rebuild_id)
        states = Counter(row.state for row in rows)
        # Nothing new was sent to Connect after the cancel (at most a POST already under way).
        assert len(connect.builds_started()) <= posts_at_cancel + 1
        built = Counter(connect.builds_started())
        assert states["succeeded"] == len(built) and set(built.values()) == {1}
        assert states["cancelled"] == 30 - len(built) > 0
        assert "building" not in states and "queued" not in states
        # Every build Connect ran finished and was recorded with its task.
        for row in rows:
            if row.state == "succeeded":
                assert connect.task(row.task_id)["finished"]
        assert rebuild_row(db, rebuild_id).state == "cancelled"
        text = summary.all_text()
        assert "cancelled by <@U0ADMIN>" in text
        assert f"{states['succeeded']} succeeded, 0 failed, {states['cancelled']} cancelled" in text
        assert f"The {running_at_cancel} build(s) running on Connect at the cancel" in text
        thread = [r.all_text() for r in slack.thread(OPS_CHANNEL, card.ts)]
        assert any("<@U0ADMIN> cancelled rebuild" in t for t in thread)
        assert "cancelled" in slack.message(OPS_CHANNEL, card.ts).all_text()

        stack.requests.command(f"rebuild cancel {rebuild_id}")
        wait_ephemeral(slack, "is cancelled; there is nothing to cancel")
        audit = [(r.actor, r.action, r.outcome) for r in stack.runtime.services.audit.recent(20)]
        assert ("U0ADMIN", "rebuild_cancel", "cancelled") in audit
        assert (VIEWER, "rebuild_cancel", "denied") in audit


def test_cancel_button_on_the_progress_message() -> None:
    with start_stack(seed=generated_seed(12), build_seconds=0.5) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 2")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        assert slack.wait_for(
            lambda s: any(
                b["action_id"] == "rebuild_cancel"
                for b in s.message(OPS_CHANNEL, card.ts).buttons()
            ),
            timeout=5,
        )
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_cancel")
        wait_final(slack, card.ts, timeout=10)
        rows = items(db, rebuild_id_of(card))
        assert sum(row.state == "cancelled" for row in rows) >= 12 - 6
        assert len(connect.builds_started()) == sum(row.state == "succeeded" for row in rows)
