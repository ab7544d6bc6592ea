"""The main rebuild flow over HTTP: plan card, Start, order, progress, thread, summary."""

from __future__ import annotations

import time
from collections import Counter

from rebuild_support import (
    items,
    plan,
    published,
    rebuild_id_of,
    rebuild_row,
    wait_ephemeral,
    wait_final,
)

from bot.connect.models import INTERACTIVE_MODES
from bot.store import RebuildItem
from sim.stack import ADMIN, OPS_CHANNEL, SECOND_ADMIN, VIEWER, start_stack
from tests.slack_helpers import later_request_handled


def rows_by_guid(rows: list[RebuildItem]) -> dict[str, RebuildItem]:
    return {row.guid: row for row in rows}


FAILING_TITLES = ("<!channel> Sales & <Ops>", "Quarterly Report")


def test_full_rebuild_with_failures_reports_progress_thread_and_summary() -> None:
    with start_stack(build_seconds=0.15) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        content = published(connect)
        by_title = {item["title"]: item for item in content}
        # Distinct durations keep the dispatch order observable at wave boundaries.
        for index, item in enumerate(content):
            connect.set_build_duration(item["guid"], 0.1 + 0.03 * index)
        connect.fail_builds(by_title[title]["guid"] for title in FAILING_TITLES)

        card = plan(stack, "rebuild --parallelism 3")
        text = card.all_text()
        assert card.text.startswith("Rebuild plan #1: 14 item(s)")
        assert "`python-dash` 2" in text and "`static` 1" in text
        assert "Python 3.11.3 (Local) 4" in text and "no R/Python 1" in text
        assert "1. Warm-up: 6 item(s)" in text
        assert "2. Interactive apps and APIs: 4" in text
        assert "3. Rendered and static content: 4" in text
        assert "*Parallelism:* 3" in text
        start_button = card.find_element("rebuild_start")[1]
        assert start_button["style"] == "primary"
        assert card.find_element("rebuild_discard")
        assert connect.builds_started() == []  # nothing runs before Start
        connect.remove_caches()  # as after a system change: every runtime is cold

        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        rebuild_id = rebuild_id_of(card)
        # This process holds the rebuild's lease while it drives and reports it ...
        me = stack.runtime.coordinator.instance_id
        assert slack.wait_for(lambda _: rebuild_row(db, rebuild_id).driver == me, timeout=5)
        summary = wait_final(slack, card.ts, timeout=20)
        # ... and releases it once the summary is posted.
        assert slack.wait_for(lambda _: rebuild_row(db, rebuild_id).driver is None, timeout=5)

        # Connect: every published item built exactly once, the warm-up wave first; within a
        # runtime, interactive content before the rest.
        started = connect.builds_started()
        assert Counter(started) == Counter(item["guid"] for item in content)
        rows = items(db, rebuild_id)
        wave = {row.guid: row.wave for row in rows}
        warm_count = sum(1 for row in rows if row.wave == 0)
        assert all(wave[guid] == 0 for guid in started[:warm_count])
        for runtime in {row.runtime for row in rows}:
            of_runtime = [wave[g] for g in started if rows_by_guid(rows)[g].runtime == runtime]
            assert of_runtime == sorted(of_runtime)
        warmup = [row for row in rows if row.wave == 0]
        runtimes = Counter(row.runtime for row in warmup)
        assert len(runtimes) == 6 and set(runtimes.values()) == {1}
        for row in warmup:
            has_interactive = any(
                other.runtime == row.runtime and other.app_mode in INTERACTIVE_MODES
                for other in rows
            )
            assert (row.app_mode in INTERACTIVE_MODES) == has_interactive
        assert all(row.app_mode in INTERACTIVE_MODES for row in rows if row.wave == 1)
        assert not any(row.app_mode in INTERACTIVE_MODES for row in rows if row.wave == 2)
        assert connect.max_concurrent_builds_seen() <= 3
        # The barrier, per cold runtime: no other build of a runtime started before its warm-up
        # build finished (other runtimes' warm-ups do not hold it back).
        warm_end = {row.runtimes: row.finished_at for row in warmup}
        assert all(
            row.started_at >= warm_end[row.runtimes] for row in rows if row.wave > 0 and row.runtime
        )

        # Few requests per item: one POST and (for short builds) one long poll.
        posts = connect.count("POST", r"/build$")
        polls = connect.count("GET", r"^/__api__/v1/tasks/")
        assert posts == 14
        assert polls <= 14 + 3
        assert all(r.query.get("wait") == "20" for r in connect.requests if "/tasks/" in r.path)

        # The store: states, task ids, timings, Connect's reasons.
        assert Counter(row.state for row in rows) == {"succeeded": 12, "failed": 2}
        for row in rows:
            assert row.task_id and row.started_at and row.finished_at >= row.started_at
            if row.state == "failed":
                assert row.error == connect.task(row.task_id)["error"]
        assert rebuild_row(db, rebuild_id).state == "done"

        # Slack: the card became the progress message; the thread tells the story.
        parent = slack.message(OPS_CHANNEL, card.ts)
        final_text = parent.all_text()
        assert "100% (14/14)" in final_text and "12 succeeded" in final_text
        assert parent.buttons() == []  # no Start or Cancel left
        replies = slack.thread(OPS_CHANNEL, card.ts)
        texts = [r.all_text() for r in replies]
        assert "started by <@U0ADMIN>: 14 item(s), 3 at a time" in texts[0]
        assert any("Warm-up finished" in t for t in texts)
        failure_text = "\n".join(t for t in texts if "build" in t and "failed" in t)
        assert "&lt;!channel&gt; Sales &amp; &lt;Ops&gt;" in failure_text
        assert "Quarterly Report" in failure_text
        assert "packrat::restore() failed" in failure_text  # Connect's own error
        guid = by_title["Quarterly Report"]["guid"]
        assert f"/connect/#/apps/{guid}|Quarterly Report>" in failure_text
        assert f"/connect/#/apps/{guid}/logs|Logs>" in failure_text
        assert replies[-1] is summary and summary.reply_broadcast
        assert "finished in" in summary.all_text()
        assert "12 succeeded, 2 failed" in summary.all_text()
        for message in [parent, *replies]:
            assert not [m for m in message.mentions() if m.startswith("!")]
        # Slack calls for the whole rebuild stay few: 1 card, a handful of updates, replies.
        updates = [c for c in slack.calls_to("chat.update") if c.params.get("ts") == card.ts]
        assert 1 <= len(updates) <= 4
        assert all(c.params.get("parse") == "none" for c in updates)
        assert len(replies) <= 5  # start, warm-up, failures (batched), summary

        actions = {(r.action, r.outcome) for r in stack.runtime.services.audit.recent(20)}
        assert ("rebuild_plan", "requested") in actions
        assert ("rebuild_start", "started") in actions


def test_status_and_history_commands() -> None:
    with start_stack(build_seconds=0.1) as stack:
        slack = stack.slack
        stack.requests.command("rebuild status")
        wait_ephemeral(slack, "No rebuild has run yet")
        guid = published(stack.connect)[0]["guid"]
        card = plan(stack, f"rebuild --guid {guid}")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts)

        stack.requests.command("rebuild status", user_id=VIEWER)
        status = wait_ephemeral(slack, "Rebuild #1", user=VIEWER)
        assert "100% (1/1)" in status and "1 succeeded" in status
        permalink = f"https://fake-workspace.slack.com/archives/{OPS_CHANNEL}/p"
        assert permalink + card.ts.replace(".", "") in status

        stack.requests.command("rebuild status 99", user_id=VIEWER)
        wait_ephemeral(slack, "There is no rebuild #99", user=VIEWER)

        stack.requests.command("rebuild history", user_id=VIEWER)
        history = wait_ephemeral(slack, "Rebuilds: last 1", user=VIEWER)
        assert "<@U0ADMIN>" in history and "· finished ·" in history
        assert "1 ok, 0 failed of 1" in history
        assert permalink in history


def test_viewer_is_refused_and_audited_and_discard_closes_the_plan() -> None:
    with start_stack(build_seconds=0.1) as stack:
        slack, connect = stack.slack, stack.connect
        stack.requests.command("rebuild", user_id=VIEWER)
        wait_ephemeral(slack, "Only connect-bot administrators", user=VIEWER)

        card = plan(stack, "rebuild --content-type shiny")
        assert card.text.startswith("Rebuild plan #1: 2 item(s)")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start", user_id=VIEWER)
        wait_ephemeral(slack, "Only connect-bot administrators", user=VIEWER)

        # A second click on the same Start button, e.g. from a stale client, after Discard.
        late_start = slack.action_payload(OPS_CHANNEL, card.ts, "rebuild_start", user_id=ADMIN)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_discard", user_id=ADMIN)
        assert slack.wait_for(
            lambda s: "Discarded by <@U0ADMIN>" in s.message(OPS_CHANNEL, card.ts).all_text()
        )
        assert slack.message(OPS_CHANNEL, card.ts).buttons() == []
        stack.requests.send_action(late_start)
        wait_ephemeral(slack, "already handled")
        later_request_handled(stack)
        assert connect.builds_started() == []
        audit = [(r.actor, r.action, r.outcome) for r in stack.runtime.services.audit.recent(20)]
        assert (VIEWER, "rebuild_plan", "denied") in audit
        assert (VIEWER, "rebuild_start", "denied") in audit
        assert (ADMIN, "rebuild_discard", "discarded") in audit


def test_start_follows_the_two_person_rule_and_expiry() -> None:
    with start_stack(
        build_seconds=0.1, bot_two_person_rule=True, bot_confirm_ttl_seconds=1
    ) as stack:
        slack = stack.slack
        card = plan(stack, "rebuild --content-type api")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start", user_id=ADMIN)
        wait_ephemeral(slack, "Two-person rule")
        time.sleep(1.2)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start", user_id=SECOND_ADMIN)
        wait_ephemeral(slack, "This plan expired", user=SECOND_ADMIN)
        assert slack.wait_for(
            lambda s: "Nobody started it in time" in s.message(OPS_CHANNEL, card.ts).all_text()
        )
        assert stack.connect.builds_started() == []
        audit = [(r.actor, r.action, r.outcome) for r in stack.runtime.services.audit.recent(20)]
        assert (ADMIN, "rebuild_start", "denied") in audit
        assert (SECOND_ADMIN, "rebuild_start", "expired") in audit
