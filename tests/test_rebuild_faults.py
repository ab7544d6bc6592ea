"""Faults: Connect gateway errors, resets, outages and lost answers, the retry budget running
out, a build request Connect refuses, Slack 429s."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ADMIN_KEY
from rebuild_support import items, plan, rebuild_id_of, wait_final

from bot.connect import ConnectClient
from bot.services.rebuilds.builds import BACKOFF, BACKOFF_CAP, Builds, WorkItem
from bot.store import Database, Rebuild, RebuildItem
from sim.connect_seed import generated_seed
from sim.connect_server import FakeConnect
from sim.stack import OPS_CHANNEL, start_stack


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


def _thread_text(stack, ts: str) -> str:
    return "\n".join(r.all_text() for r in stack.slack.thread(OPS_CHANNEL, ts))


def test_thirty_percent_502s_on_builds_and_polls_fail_no_item() -> None:
    """The issue's run: 51 items, 30 % of build POSTs and task polls answered 502."""
    with start_stack(
        seed=generated_seed(51), build_seconds=0.1, bot_connect_retry_seconds=120
    ) as stack:
        connect, db = stack.connect, stack.runtime.db
        # --no-verify: the jobs listings counted below are the journal's alone (a probe after
        # each build lists jobs too); the plan's (the warm-up candidates' restores) come before.
        card = plan(stack, "rebuild --parallelism 4 --no-verify")
        planned = connect.count("GET", r"/jobs$")
        connect.inject_faults(error_rate=0.3, status=502, paths=r"/build$|/tasks/", seed=30)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        summary = wait_final(stack.slack, card.ts, timeout=60)
        connect.clear_faults()

        rows = items(db, rebuild_id_of(card))
        assert Counter(row.state for row in rows) == {"succeeded": 51}
        assert "51 succeeded, 0 failed" in summary.all_text()
        faulted = [r for r in connect.requests if r.status == 502]
        assert any(r.method == "POST" for r in faulted) and any(r.method == "GET" for r in faulted)
        # A 502 may hide a build Connect started: the bot looked (jobs) before each re-send,
        # found none (the proxy had eaten the request) and recorded the re-send.
        assert set(Counter(connect.builds_started()).values()) == {1}
        assert all(row.resent == row.attempts - 1 for row in rows)
        assert sum(row.resent for row in rows) > 0
        assert connect.count("GET", r"/jobs$") - planned == sum(row.resent for row in rows)
        assert all(row.requested_at is not None and row.task_id for row in rows)


def test_connect_down_for_20_seconds_mid_rebuild_fails_no_item() -> None:
    with start_stack(seed=generated_seed(51), build_seconds=0.3) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        assert slack.wait_for(lambda _: len(connect.builds_started()) >= 12, timeout=20)
        connect.outage(20)  # connections refused, kept-alive ones and long polls reset
        assert connect.wait_up(timeout=30)
        summary = wait_final(slack, card.ts, timeout=40)

        rows = items(db, rebuild_id_of(card))
        assert Counter(row.state for row in rows) == {"succeeded": 51}
        assert "51 succeeded, 0 failed" in summary.all_text()
        assert any(r.status == 0 for r in connect.requests)  # the outage cut connections
        built = Counter(connect.builds_started())
        assert set(built) == {row.guid for row in rows}
        for row in rows:  # built once, or again only by a re-send the journal recorded
            assert 1 <= built[row.guid] <= 1 + row.resent


def test_when_connect_stays_down_past_the_budget_items_fail_saying_so() -> None:
    with start_stack(
        seed=generated_seed(8), build_seconds=0.3, bot_connect_retry_seconds=3
    ) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        assert slack.wait_for(lambda _: len(connect.builds_started()) >= 2, timeout=10)
        connect.outage(120)  # longer than the test: it ends with the stack
        summary = wait_final(slack, card.ts, timeout=30)

        rows = items(db, rebuild_id_of(card))
        failed = [row for row in rows if row.state == "failed"]
        assert len(failed) >= 4 and {row.state for row in rows} <= {"succeeded", "failed"}
        for row in failed:
            assert "Connect kept failing for" in (row.error or "")
            assert "BOT_CONNECT_RETRY_SECONDS=3)" in (row.error or "")
            assert "Could not reach Connect" in (row.error or "")
        assert any("on the build request" in (row.error or "") for row in failed)
        assert any("on polling task" in (row.error or "") for row in failed)
        assert f"{len(failed)} failed" in summary.all_text()
        assert "Connect kept failing for" in _thread_text(stack, card.ts)


def test_a_lost_build_answer_is_found_among_connects_jobs_not_built_twice() -> None:
    seed = generated_seed(8)
    guids = [item["guid"] for item in seed.content]
    followed, failing, quick = guids[2], guids[5], guids[6]
    with start_stack(seed=seed, build_seconds=0.1) as stack:
        connect, db = stack.connect, stack.runtime.db
        connect.set_build_duration(followed, 3.0)  # still running when the bot looks
        connect.set_build_duration(failing, 3.0)
        connect.fail_builds([failing])
        connect.set_build_duration(quick, 0.02)  # over before the bot looks
        card = plan(stack, "rebuild --parallelism 4")
        # Connect takes each of their first build requests, then the answer is lost.
        connect.inject_faults(
            lose_rate=1.0,
            paths=rf"/content/({followed}|{failing}|{quick})/build$",
            limit_per_path=1,
        )
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        summary = wait_final(stack.slack, card.ts, timeout=30)

        rows = {row.guid: row for row in items(db, rebuild_id_of(card))}
        built = Counter(connect.builds_started())
        # Its one request was processed, its answer lost (status 0): never sent again.
        statuses = [r.status for r in connect.requests if r.method == "POST" and quick in r.path]
        assert statuses == [0]
        # The running build was found by its job and followed: one build, no task id.
        assert built[followed] == 1
        assert (rows[followed].state, rows[followed].resent) == ("succeeded", 0)
        assert rows[followed].task_id is None and rows[followed].requested_at is not None
        assert built[failing] == 1 and rows[failing].state == "failed"
        assert "exited with status 1" in (rows[failing].error or "")
        # A build that already ended is found by its job too, and its exit code is the result.
        assert built[quick] == 1
        assert (rows[quick].state, rows[quick].resent, rows[quick].attempts) == ("succeeded", 0, 1)
        others = set(guids) - {followed, failing, quick}
        assert all(built[g] == 1 and rows[g].resent == 0 for g in others)
        assert "7 succeeded, 1 failed" in summary.all_text()


# --- one item's build, on a fake clock -------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def journal_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/faults.db")
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


def _builds(db: Database, fake: FakeConnect, clock: FakeClock, budget: float) -> tuple:
    guid = next(i["guid"] for i in fake.content() if i["bundle_id"] and i.get("py_version"))
    with db.session() as session:
        rebuild = Rebuild(requested_by="U1", channel="C1", state="running")
        session.add(rebuild)
        session.flush()
        row = RebuildItem(rebuild_id=rebuild.id, position=0, wave=1, guid=guid)
        session.add(row)
        session.flush()
        item = WorkItem(row.id, guid, 1, 0)
        rebuild_id = rebuild.id
    client = ConnectClient(fake.url, ADMIN_KEY, retries=0)
    builds = Builds(
        db,
        rebuild_id,
        client,
        retry_seconds=budget,
        clock=clock,
        stopping=threading.Event(),
        cancelled=threading.Event(),
        requeue=lambda _: None,
        sleep=clock.sleep,
    )
    return builds, item, client


def _row(db: Database, item: WorkItem) -> RebuildItem:
    with db.session() as session:
        row = session.get(RebuildItem, item.id)
        assert row is not None
        return row


def test_retry_after_is_honoured_and_the_budget_is_measured_on_the_clock(
    journal_db: Database, fake_connect: FakeConnect
) -> None:
    clock = FakeClock()
    builds, item, client = _builds(journal_db, fake_connect, clock, budget=20)
    fake_connect.inject_faults(error_rate=1.0, status=503, paths=r"/build$", retry_after="7")
    with client:
        assert builds.build(item) is True
    # 7 s, 7 s, and a third wait would end at 21 s, past the 20 s budget.
    assert clock.sleeps == [7.0, 7.0]
    row = _row(journal_db, item)
    assert row.state == "failed" and row.attempts == 3
    assert row.error is not None and row.error.startswith(
        "Connect kept failing for 14 seconds on the build request, so the bot gave up "
        "(BOT_CONNECT_RETRY_SECONDS=20); it last said: Connect answered HTTP 503"
    )
    # A 503 is Connect saying "not now": nothing to look for, nothing counted as re-sent.
    assert row.resent == 0 and fake_connect.count("GET", r"/jobs$") == 0
    assert fake_connect.builds_started() == []


def test_a_502_is_checked_against_jobs_then_re_sent_with_backoff(
    journal_db: Database, fake_connect: FakeConnect
) -> None:
    clock = FakeClock()
    builds, item, client = _builds(journal_db, fake_connect, clock, budget=600)
    fake_connect.inject_faults(error_rate=1.0, status=502, paths=r"/build$", limit=3)
    with client:
        assert builds.build(item) is True
    assert len(clock.sleeps) == 3
    assert all(low <= s <= high for s, (low, high) in zip(clock.sleeps, BACKOFFS, strict=True))
    row = _row(journal_db, item)
    assert (row.state, row.attempts, row.resent) == ("succeeded", 4, 3)
    assert row.requested_at is not None and row.task_id
    assert fake_connect.count("GET", r"/jobs$") == 3
    assert fake_connect.builds_started() == [item.guid]


BACKOFFS = [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0)]  # 0.5 s doubling, jittered in [0.5, 1]


def _most_tries(budget: float) -> int:
    """The most tries `Builds` can make of one call within `budget` seconds: its waits are
    BACKOFF doubling up to BACKOFF_CAP, jittered down to half at the least."""
    tries, waited = 1, 0.0
    while True:
        wait = min(BACKOFF_CAP, BACKOFF * 2 ** (tries - 1)) * 0.5
        if waited + wait > budget:
            return tries
        waited += wait
        tries += 1


def test_an_outage_costs_connect_the_budgeted_tries_not_their_product() -> None:
    """No retry inside a retry: during an outage each item sends at most the tries of the
    BOT_CONNECT_RETRY_SECONDS budget (the client sends each of them once), counted at Connect."""
    budget = 4.0
    with start_stack(
        seed=generated_seed(3), build_seconds=60, bot_connect_retry_seconds=budget
    ) as stack:
        connect, db = stack.connect, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        assert stack.slack.wait_for(lambda _: len(connect.builds_started()) >= 1, timeout=10)
        connect.outage(120, status=502)  # every request answered by the proxy: all counted
        summary = wait_final(stack.slack, card.ts, timeout=60)

        rows = items(db, rebuild_id_of(card))
        assert {row.state for row in rows} == {"failed"}, [row.error for row in rows]
        assert all("Connect kept failing for" in (row.error or "") for row in rows)
        assert "3 failed" in summary.all_text()
        build_calls = [
            r
            for r in connect.requests
            if r.status == 502 and re.search(r"/build$|/jobs$|/tasks/", r.path)
        ]
        # Before: each of Builds' tries was up to five of the client's (1 + 4 retries).
        assert 0 < len(build_calls) <= len(rows) * _most_tries(budget), len(build_calls)
