"""Faults: Connect gateway errors and resets, a build request Connect refuses, Slack 429s."""

from __future__ import annotations

import time
from collections import Counter

from rebuild_support import items, plan, rebuild_id_of, wait_final

from bot.sim.connect_seed import generated_seed
from bot.sim.stack import OPS_CHANNEL, start_stack


def test_connect_faults_are_retried_and_every_item_is_built_once() -> None:
    with start_stack(seed=generated_seed(16), build_seconds=0.15) as stack:
        connect, db = stack.connect, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        # From here on, a quarter of build requests and task polls hit a 502 or a reset.
        connect.inject_faults(
            error_rate=0.15, status=502, reset_rate=0.1, paths=r"/build$|/tasks/", seed=4
        )
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        summary = wait_final(stack.slack, card.ts, timeout=40)
        connect.clear_faults()

        rows = items(db, rebuild_id_of(card))
        assert Counter(row.state for row in rows) == {"succeeded": 16}
        faulted = [r for r in connect.requests if r.status in (0, 502)]
        assert any(r.method == "POST" for r in faulted)
        assert any(r.method == "GET" for r in faulted)
        # A faulted POST never reached Connect, and a retried one did: exactly one build each.
        assert Counter(connect.builds_started()) == Counter(row.guid for row in rows)
        assert set(Counter(connect.builds_started()).values()) == {1}
        assert any(row.attempts > 1 for row in rows)
        assert "16 succeeded, 0 failed" in summary.all_text()


def test_a_refused_build_request_fails_the_item_with_connects_reason() -> None:
    seed = generated_seed(6)
    with start_stack(seed=seed, build_seconds=0.1) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild")
        # The item is unpublished between the plan and the build: Connect answers 404 code 28.
        victim = seed.content[3]
        connect.add_content(**{**victim, "bundle_id": None, "app_mode": "unknown"})
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts, timeout=10)
        row = next(r for r in items(db, rebuild_id_of(card)) if r.guid == victim["guid"])
        assert row.state == "failed" and row.task_id is None
        assert "No application bundle to deploy" in (row.error or "")
        replies = "\n".join(r.all_text() for r in slack.thread(OPS_CHANNEL, card.ts))
        assert "No application bundle to deploy" in replies
        assert connect.count("POST", victim["guid"]) == 1  # not retried: Connect said no


def test_slack_rate_limits_slow_messages_but_not_builds() -> None:
    with start_stack(seed=generated_seed(24), build_seconds=0.2) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        slack.rate_limit("chat.update", count=2, retry_after=1)
        slack.rate_limit("chat.postMessage", count=1, retry_after=1)
        started = time.monotonic()
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        assert slack.wait_for(lambda s: len(connect.builds_started()) == 24, timeout=10)
        summary = wait_final(slack, card.ts, timeout=30)
        elapsed = time.monotonic() - started

        rows = items(db, rebuild_id_of(card))
        first_start = min(r.started_at for r in rows)
        last_end = max(r.finished_at for r in rows)
        build_span = (last_end - first_start).total_seconds()
        # 4 warm-up builds, then 20 more 4 at a time: 6 rounds of 0.2 s. Slack made the
        # reporter sleep Retry-After three times meanwhile; the builds did not wait for it.
        assert build_span < 2.0
        assert elapsed > 3
        limited = [c for c in slack.calls if c.status == 429]
        assert len(limited) == 3
        assert all(c.response_headers.get("Retry-After") == "1" for c in limited)
        assert "24 succeeded, 0 failed" in summary.all_text()
        assert "100% (24/24)" in slack.message(OPS_CHANNEL, card.ts).all_text()
