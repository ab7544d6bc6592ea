"""An item's build as a state machine (`bot.services.rebuilds.builds`), pure: given what a
transition observed (the item's journal, Connect's answer, the clocks), the next step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.connect import ConnectError, Job, NotSent, Task
from bot.services.rebuilds.builds import (
    CLOCK_SKEW,
    ENDS,
    FINISHED,
    LOST_TASK_REBUILDS,
    REQUEST_SECONDS,
    SETTLE,
    Phase,
    Step,
    WorkItem,
    adoptable_job,
    after_check,
    after_listing,
    after_task,
    after_task_error,
    gave_up_reason,
    may_have_arrived,
    on_queued,
    post_reason,
    request_due_in,
    start_phase,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTIVE, ENDED, SKIPPED = 0, 2, 3  # Job.status values


def _job(
    key: str,
    *,
    minutes: float = 0,
    status: int = ENDED,
    tag: str = "python_restore",
    exit_code: int | None = 0,
) -> Job:
    return Job(
        key=key,
        tag=tag,
        status=status,
        start_time=T0 + timedelta(minutes=minutes),
        end_time=None,
        exit_code=None if status == ACTIVE else exit_code,
        error=None,
        bundle_id="1",
    )


def _error(status: int | None, *, reason: str = "no", code: int | None = None) -> ConnectError:
    return ConnectError("failed", method="POST", path="/x", status=status, error=reason, code=code)


def _item(
    *, task_id: str | None = None, requested_at: datetime | None = None, running: bool = False
) -> WorkItem:
    return WorkItem(1, "guid-1", 1, 0, task_id=task_id, requested_at=requested_at, running=running)


def test_the_ends() -> None:
    assert {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED} == FINISHED
    assert FINISHED | {Phase.REQUEUED, Phase.WAITING} == ENDS
    worked = {Phase.QUEUED, Phase.CHECKING, Phase.SENDING, Phase.BUILDING, Phase.FOLLOWING}
    assert set(Phase) == ENDS | worked


@pytest.mark.parametrize(
    ("item", "phase"),
    [
        (_item(), Phase.QUEUED),
        (_item(requested_at=T0), Phase.QUEUED),  # a request that may have arrived: checked
        (_item(requested_at=T0, running=True), Phase.QUEUED),  # an adopted job: found again
        (_item(task_id="t1", running=True), Phase.BUILDING),  # re-attached
    ],
)
def test_start_phase(item: WorkItem, phase: Phase) -> None:
    assert start_phase(item) is phase


@pytest.mark.parametrize(
    ("case", "item", "cancelled", "step"),
    [
        ("first request", _item(), False, Step(Phase.SENDING)),
        ("an earlier one may have arrived", _item(requested_at=T0), False, Step(Phase.CHECKING)),
        ("cancelled before anything left", _item(), True, Step(Phase.CANCELLED)),
        ("cancelled, an earlier request", _item(requested_at=T0), True, Step(Phase.CANCELLED)),
        (
            "cancelled, but building on Connect: its job is looked for",
            _item(requested_at=T0, running=True),
            True,
            Step(Phase.CHECKING),
        ),
    ],
)
def test_on_queued(case: str, item: WorkItem, cancelled: bool, step: Step) -> None:
    assert on_queued(item, cancelled) == step, case


JOB = _job("j1", status=ACTIVE)


@pytest.mark.parametrize(
    ("case", "job", "cancelled", "due_in", "step"),
    [
        ("a build it started: followed", JOB, False, 0.0, Step(Phase.FOLLOWING, job=JOB)),
        (
            "followed even while the other may be under way",
            JOB,
            False,
            9.0,
            Step(Phase.FOLLOWING, job=JOB),
        ),
        ("followed even after a cancel", JOB, True, 0.0, Step(Phase.FOLLOWING, job=JOB)),
        ("no build, cancelled: nothing sent", None, True, 9.0, Step(Phase.CANCELLED)),
        (
            "no build, another's request may be under way",
            None,
            False,
            9.5,
            Step(Phase.WAITING, wait=9.5),
        ),
        ("no build, the request is over: re-sent", None, False, 0.0, Step(Phase.SENDING)),
    ],
)
def test_after_check(
    case: str, job: Job | None, cancelled: bool, due_in: float, step: Step
) -> None:
    assert after_check(job, cancelled, due_in) == step, case


@pytest.mark.parametrize(
    ("case", "jobs", "key"),
    [
        ("no jobs", [], None),
        ("not a restore", [_job("render", tag="run_app", minutes=1)], None),
        ("started before the request", [_job("old", minutes=-1)], None),
        ("started within the clock skew before it", [_job("skew", minutes=-0.4)], "skew"),
        ("started after it", [_job("ours", minutes=1)], "ours"),
        ("no start time", [replace(_job("none", minutes=1), start_time=None)], None),
        (
            "a running one before the latest ended one",
            [_job("ended", minutes=3), _job("running", minutes=1, status=ACTIVE)],
            "running",
        ),
        ("the latest of those ended", [_job("a", minutes=1), _job("b", minutes=2)], "b"),
    ],
)
def test_adoptable_job(case: str, jobs: list[Job], key: str | None) -> None:
    job = adoptable_job(jobs, T0)
    assert (job.key if job else None) == key, case


def test_the_skew_margin_is_inclusive() -> None:
    assert adoptable_job([_job("edge", minutes=-CLOCK_SKEW.total_seconds() / 60)], T0) is not None


@pytest.mark.parametrize(
    ("seconds_since", "due_in"),
    [
        (0.0, REQUEST_SECONDS + SETTLE.total_seconds()),
        (REQUEST_SECONDS, SETTLE.total_seconds()),
        (REQUEST_SECONDS + SETTLE.total_seconds(), 0.0),
        (3600.0, 0.0),
    ],
)
def test_request_due_in_database_time(seconds_since: float, due_in: float) -> None:
    assert request_due_in(T0, T0 + timedelta(seconds=seconds_since)) == pytest.approx(due_in)


def _task(*, finished: bool, code: int = 0, error: str = "", last: int = 7) -> Task:
    return Task(id="t1", finished=finished, code=code, error=error, last=last)


@pytest.mark.parametrize(
    ("case", "task", "step"),
    [
        (
            "running: poll on from its last line",
            _task(finished=False),
            Step(Phase.BUILDING, first=7),
        ),
        ("succeeded", _task(finished=True), Step(Phase.SUCCEEDED)),
        (
            "failed, Connect's error",
            _task(finished=True, code=1, error="boom"),
            Step(Phase.FAILED, reason="boom"),
        ),
        (
            "failed, only a code",
            _task(finished=True, code=2),
            Step(Phase.FAILED, reason="the task exited with status 2"),
        ),
    ],
)
def test_after_task(case: str, task: Task, step: Step) -> None:
    assert after_task(task) == step, case


@pytest.mark.parametrize(
    ("case", "status", "lost", "step"),
    [
        ("lost: built again", 404, 0, Step(Phase.REQUEUED, reason="task t1")),
        ("lost again", 404, LOST_TASK_REBUILDS - 1, Step(Phase.REQUEUED, reason="task t1")),
        (
            "lost too often",
            404,
            LOST_TASK_REBUILDS,
            Step(Phase.FAILED, reason="Connect would not report on task t1: no"),
        ),
        ("refused", 403, 0, Step(Phase.FAILED, reason="Connect would not report on task t1: no")),
    ],
)
def test_after_task_error(case: str, status: int, lost: int, step: Step) -> None:
    assert after_task_error(_error(status), "t1", lost) == step, case


FOLLOWED = _job("j1", status=ACTIVE)


@pytest.mark.parametrize(
    ("case", "jobs", "lost", "step"),
    [
        ("still running", [FOLLOWED, _job("other")], 0, Step(Phase.FOLLOWING, job=FOLLOWED)),
        ("ended well", [_job("j1", exit_code=0)], 0, Step(Phase.SUCCEEDED)),
        (
            "exited non-zero",
            [_job("j1", exit_code=1)],
            0,
            Step(Phase.FAILED, reason="the build (Connect job j1) exited with status 1"),
        ),
        (
            "skipped",
            [_job("j1", status=SKIPPED)],
            0,
            Step(Phase.FAILED, reason="Connect skipped the build (job j1)"),
        ),
        (
            "no longer listed: built again",
            [_job("other")],
            0,
            Step(Phase.REQUEUED, reason="job j1"),
        ),
        (
            "no longer listed, too often",
            [],
            LOST_TASK_REBUILDS,
            Step(Phase.FAILED, reason="Connect no longer lists the build's job j1"),
        ),
    ],
)
def test_after_listing(case: str, jobs: list[Job], lost: int, step: Step) -> None:
    assert after_listing(jobs, FOLLOWED, lost) == step, case


@pytest.mark.parametrize(
    ("case", "error", "arrived"),
    [
        ("never sent", NotSent("refused", method="POST", path="/x"), False),
        ("rate limited", _error(429), False),
        ("unavailable", _error(503), False),
        ("bad gateway", _error(502), True),
        ("gateway timeout", _error(504), True),
        ("reset or read timeout", _error(None), True),
    ],
)
def test_may_have_arrived(case: str, error: ConnectError, arrived: bool) -> None:
    assert may_have_arrived(error) is arrived, case


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            _error(404, reason="gone"),
            "Connect has no such content, or nothing deployed to build (gone)",
        ),
        (
            _error(403, reason="no"),
            "Connect refused: the bot's API key may not build this content (no)",
        ),
        (_error(400, reason="This content is locked", code=222), "This content is locked"),
    ],
)
def test_post_reason(error: ConnectError, reason: str) -> None:
    assert post_reason(error) == reason


@pytest.mark.parametrize(
    ("spent", "span"), [(1.2, "1 second"), (14.0, "14 seconds"), (600.0, "10 minutes")]
)
def test_gave_up_reason(spent: float, span: str) -> None:
    assert gave_up_reason("the build request", spent, 20, _error(502, reason="bad")) == (
        f"Connect kept failing for {span} on the build request, so the bot gave up "
        "(BOT_CONNECT_RETRY_SECONDS=20); it last said: bad"
    )
