"""One item's build on Connect, for the driver's workers: the journal, the build request, the
check for a build that a lost answer started, and following the task (or that job) to its end.

States
* An item's build is a small state machine (`Phase`). `Builds.run` starts it at BUILDING (a task
  id is known: re-attach) or QUEUED, and applies one transition per phase until an end:

      QUEUED --one request try--> BUILDING | FOLLOWING | WAITING | CANCELLED | FAILED
      BUILDING --task poll--> BUILDING | SUCCEEDED | FAILED | REQUEUED
      FOLLOWING --jobs listing--> FOLLOWING | SUCCEEDED | FAILED | REQUEUED

  One request try is QUEUED -> (CHECKING, the jobs of an earlier request) -> SENDING (journal,
  POST); the retry budget runs the try again as a whole after a transient fault (the jobs
  listing and the POST share one budget).
* Each transition observes (Connect's answer, the clocks) and applies its effects (the item's
  row); what comes next is decided by a pure function of what it observed (`on_queued`,
  `after_check`, `after_task`, `after_task_error`, `after_listing`). Transitions return the
  next `Step` as a value; exceptions are real errors only (Connect's, a lost lease) and the
  interruption of a shutdown (`Stopped`).

Retry budget (BOT_CONNECT_RETRY_SECONDS, default 600)
* Every call the driver makes for an item (the build POST, a task poll, a jobs listing) is
  retried on transient faults (no answer, 429, 502, 503, 504) with exponential backoff and
  jitter, honouring Retry-After on 429 and 503 (`RetryPolicy`, run by tenacity), until Connect
  has kept failing for the budget, on the driver's monotonic clock; the budget starts again
  after each answer. Only then does a fault fail the item, and the message says so and what
  Connect last said. Other answers (404 deleted content, 403, a failed build) fail it at once.

Journal
* Before a build request leaves, the item records `requested_at` in database time (`DbClock`):
  the latest request that may reach Connect, kept until one is answered. The answer writes
  `building` + task id.
* A request that may have reached Connect unanswered (reset, timeout, 502, 504, or a kill)
  is not simply sent again: `GET v1/content/{guid}/jobs` first. A restore job
  (`packrat_restore` / `python_restore`), running or ended, started at or after `requested_at`
  less CLOCK_SKEW is that build: the item is `building` without a task id, and the job is
  followed to its exit code. `requested_at` is the database's time, so no replica's clock takes
  part; CLOCK_SKEW covers only the database's clock against Connect's (both servers, kept by
  NTP) and Connect's whole-second times. A wider margin errs towards following a build someone
  started just before ours, never towards building twice.
* With no such job, a request this worker sent itself (its answer was lost) is sent again at
  once. A request of another process (taken over) may still be on its way: it is sent again
  only once `requested_at` + REQUEST_SECONDS has passed in database time (the item waits in the
  dispatcher meanwhile, WAITING) and the jobs still show nothing. `resent` counts re-sends
  (logged): Connect may then build twice only if the first request started a build that has no
  job yet (waiting for a build slot for longer than the request timeout).
* A request Connect never saw or did not handle (connection refused, 429, 503) is simply sent
  again.
* A task (or job) Connect no longer knows is built again, up to LOST_TASK_REBUILDS times.

Fencing
* Every write is conditioned on the driver's lease token (`leased`): a write that matches no
  row means another process took the rebuild over. `LeaseLost` is raised, `stopping` is set,
  and nothing more is written or sent to Connect; an answer that arrives after that is the
  other driver's to find (the journal: the item is `queued` with `requested_at`).
* Self-fencing: a build request leaves only while `lease_fresh()` (the driver's last renewal, on
  the monotonic clock, is recent enough that the lease cannot lapse before the request's answer
  is due) and only if the journal write before it was a moment ago. A process that hung does
  not wake up and send after another one took over.
* `SendGate`: the build requests under way (journal, POST, answer recorded). On SIGTERM the gate
  closes (nothing new leaves) and the engine waits for it to drain before it releases the lease,
  so a taker finds each of them `building` with its task id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import partial
from typing import Any, TypeVar

import tenacity
from sqlalchemy import ColumnElement, select, update

from bot.connect import ConnectClient, ConnectError, Job, NotSent, Task
from bot.connect.client import DEFAULT_TIMEOUT
from bot.connect.retry import RetryPolicy
from bot.store import Database, Rebuild, RebuildItem, utcnow
from bot.store.dbtime import DbClock

log = logging.getLogger(__name__)

POLL_WAIT = 20  # Connect's maximum long-poll
JOB_POLL_SECONDS = 2.0  # jobs have no long-poll
LOST_TASK_REBUILDS = 3
CLOCK_SKEW = timedelta(seconds=30)  # the database's clock against Connect's
# The longest a build request can be under way: connecting, then waiting for the answer (the
# client's timeouts; the small JSON body is written at once).
REQUEST_SECONDS = float(DEFAULT_TIMEOUT.connect or 0) + float(DEFAULT_TIMEOUT.read or 0)
SETTLE = timedelta(seconds=5)  # after that, for Connect to list the job it started
SEND_WINDOW = 5.0  # the most time between the journal write and the request leaving
DEFAULT_RETRY_SECONDS = 600.0
BACKOFF = 0.5  # first wait (jittered), doubling up to BACKOFF_CAP
BACKOFF_CAP = 5.0
RETRY_AFTER_CAP = 120.0

T = TypeVar("T")


# ---- the state ---------------------------------------------------------------------------


class Phase(Enum):
    """Where an item's build is. The first five are worked on; the others end a `run`."""

    QUEUED = "queued"  # no build of ours on Connect that we know of: a request try starts here
    CHECKING = "checking"  # an earlier request may have reached Connect: look at its jobs
    SENDING = "sending"  # journal a request, then send it
    BUILDING = "building"  # a task on Connect: long-poll it
    FOLLOWING = "following"  # a restore job on Connect (no task id): poll the jobs listing
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # nothing built: the row stays `queued`, the driver marks it
    REQUEUED = "requeued"  # Connect lost the task or job: build again soon
    WAITING = "waiting"  # another process's request may be under way: come back later


FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
ENDS = FINISHED | {Phase.REQUEUED, Phase.WAITING}


@dataclass(frozen=True, slots=True)
class Step:
    """The next phase of an item's build, and what that phase needs."""

    phase: Phase
    reason: str = ""  # FAILED: the row's error; REQUEUED: what Connect lost
    wait: float = 0.0  # WAITING: seconds until the item is taken up again
    job: Job | None = None  # FOLLOWING: the restore job
    first: int = 0  # BUILDING: the task's first output line not yet read


@dataclass(slots=True)
class WorkItem:
    """An item as its row says (the journal), and what this process knows of it besides."""

    id: int
    guid: str
    wave: int
    position: int
    task_id: str | None = None
    attempts: int = 0
    requested_at: datetime | None = None  # a build request that may have reached Connect
    sent_here: bool = False  # that request was this worker's, and it is over
    resent: int = 0
    running: bool = False  # `building`: a task, or a job, on Connect
    lost: int = 0  # tasks Connect lost, in this process
    interactive: bool = False  # an app or API: verified to start after its build

    @property
    def on_connect(self) -> bool:
        """Building on Connect already: followed to its end even after a cancel."""
        return self.task_id is not None or self.running


# ---- the decisions (pure) ----------------------------------------------------------------


def start_phase(item: WorkItem) -> Phase:
    """A build with a task id is re-attached; anything else starts with a request try."""
    return Phase.BUILDING if item.task_id is not None else Phase.QUEUED


def on_queued(item: WorkItem, cancelled: bool) -> Step:
    """A request try's first step. After a cancel, an item not yet on Connect stays queued
    (one that was `building` is looked for among the jobs still)."""
    if cancelled and not item.running:
        return Step(Phase.CANCELLED)
    if item.requested_at is not None:
        return Step(Phase.CHECKING)
    return Step(Phase.SENDING)


def after_check(job: Job | None, cancelled: bool, due_in: float) -> Step:
    """After looking at the jobs for an earlier request (`due_in`: seconds until another
    process's request can no longer reach Connect): follow the build it started; after a
    cancel, send nothing; wait for the other request; else send again."""
    if job is not None:
        return Step(Phase.FOLLOWING, job=job)
    if cancelled:
        return Step(Phase.CANCELLED)
    if due_in > 0:
        return Step(Phase.WAITING, wait=due_in)
    return Step(Phase.SENDING)


def adoptable_job(jobs: list[Job], requested_at: datetime) -> Job | None:
    """The restore job started since the request (running, else the latest that ended)."""
    since = requested_at - CLOCK_SKEW
    found = [job for job in jobs if job.restores and job.start_time and job.start_time >= since]
    return max(found, key=lambda job: (job.active, job.start_time)) if found else None


def request_due_in(requested_at: datetime, now: datetime) -> float:
    """Seconds until a request journalled at `requested_at` can no longer reach Connect and a
    build it started is listed (database time)."""
    due = requested_at + timedelta(seconds=REQUEST_SECONDS) + SETTLE
    return max(0.0, (due - now).total_seconds())


def after_task(task: Task) -> Step:
    """After a poll of the build's task."""
    if not task.finished:
        return Step(Phase.BUILDING, first=task.last)
    if task.succeeded:
        return Step(Phase.SUCCEEDED)
    return Step(Phase.FAILED, reason=task.failure_reason)


def after_task_error(exc: ConnectError, task_id: str, lost: int) -> Step:
    """After Connect would not report on the task: a task it no longer knows is built again,
    up to LOST_TASK_REBUILDS times."""
    if exc.not_found and lost < LOST_TASK_REBUILDS:
        return Step(Phase.REQUEUED, reason=f"task {task_id}")
    return Step(Phase.FAILED, reason=f"Connect would not report on task {task_id}: {exc.reason}")


def after_listing(jobs: list[Job], job: Job, lost: int) -> Step:
    """After a listing of the item's jobs, while following `job`."""
    current = next((j for j in jobs if j.key == job.key), None)
    if current is None:
        if lost < LOST_TASK_REBUILDS:
            return Step(Phase.REQUEUED, reason=f"job {job.key}")
        return Step(Phase.FAILED, reason=f"Connect no longer lists the build's job {job.key}")
    if current.active:
        return Step(Phase.FOLLOWING, job=job)
    if current.succeeded:
        return Step(Phase.SUCCEEDED)
    return Step(Phase.FAILED, reason=current.failure_reason)


def may_have_arrived(exc: ConnectError) -> bool:
    """Could Connect have acted on a request that failed so? Not if it was never sent, nor on
    429 / 503 (not handled: come back later); a reset, a timeout, 502 or 504 may follow a
    request Connect did act on."""
    return not isinstance(exc, NotSent) and exc.status not in (429, 503)


def post_reason(exc: ConnectError) -> str:
    """Why a build request Connect refused fails the item (locked content: code 222, say)."""
    if exc.status == 404:
        return f"Connect has no such content, or nothing deployed to build ({exc.reason})"
    if exc.status == 403:
        return f"Connect refused: the bot's API key may not build this content ({exc.reason})"
    return exc.reason


def gave_up_reason(what: str, spent: float, budget: float, exc: ConnectError) -> str:
    return (
        f"Connect kept failing for {_span(spent)} on {what}, so the bot gave up "
        f"(BOT_CONNECT_RETRY_SECONDS={budget:g}); it last said: {exc.reason}"
    )


def _span(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds" if round(seconds) != 1 else "1 second"


# ---- fencing -----------------------------------------------------------------------------


class Stopped(Exception):
    """The process is shutting down: leave the item as it is for the next start."""


class LeaseLost(Stopped):
    """Another process holds the rebuild's lease now: write nothing more, send nothing more."""


class SendGate:
    """The build requests under way in one driver. `close()` lets no new one start; `drain()`
    waits for those under way to be answered and recorded."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._sending = 0

    @contextmanager
    def sending(self) -> Iterator[None]:
        with self._cond:
            if not self._open:
                raise Stopped
            self._sending += 1
        try:
            yield
        finally:
            with self._cond:
                self._sending -= 1
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open = False

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` for the requests under way; how many are still out."""
        with self._cond:
            self._cond.wait_for(lambda: self._sending == 0, max(0.0, timeout))
            return self._sending


def leased(rebuild_id: int, token: str) -> ColumnElement[bool]:
    """The fence of a write: true while the rebuild's lease token is `token`. The rebuild row
    is locked FOR SHARE (PostgreSQL), so the lease cannot move before the write commits."""
    return (
        select(Rebuild.id)
        .where(Rebuild.id == rebuild_id, Rebuild.lease_token == token)
        .with_for_update(read=True)
        .exists()
    )


# ---- the machine -------------------------------------------------------------------------


class Builds:
    """Builds items of one rebuild on one Connect; called by the driver's worker threads."""

    def __init__(
        self,
        db: Database,
        rebuild_id: int,
        client: ConnectClient,
        *,
        retry_seconds: float,
        clock: Callable[[], float],
        stopping: threading.Event,
        cancelled: threading.Event,
        requeue: Callable[[WorkItem], None],
        later: Callable[[WorkItem, float], None] | None = None,
        lease: str | None = None,
        sleep: Callable[[float], None] | None = None,
        lease_fresh: Callable[[], bool] | None = None,
        gate: SendGate | None = None,
        db_clock: DbClock | None = None,
        verify: Callable[[WorkItem], None] | None = None,
    ) -> None:
        """`requeue`: build the item again soon (REQUEUED); `later`: take it up again in so
        many seconds (WAITING; None: wait here, then `requeue`); `lease`: the driver's lease
        token, which every write is fenced on (None: unfenced, for tests of one item); `clock`
        (monotonic) measures the budget; `sleep` (tests) replaces waiting on `stopping`, with
        the clock it goes with; `lease_fresh`: whether the lease surely holds until a request
        sent now is answered (self-fencing); `gate`: the driver's requests under way;
        `db_clock`: the time `requested_at` is judged in; `verify`: probe an interactive item
        that built (its row says `verified = pending` first, so a restart probes it too;
        None: items are not verified)."""
        self.db = db
        self.lease_fresh = lease_fresh or (lambda: True)
        self.gate = gate or SendGate()
        self.db_clock = db_clock or DbClock(db)
        self.rebuild_id = rebuild_id
        self.lease = lease
        # This layer retries, by the budget below; the client sends each request once, so an
        # outage costs one request per try here, not the client's attempts times these.
        self.client = client.single_try()
        self.policy = RetryPolicy(
            attempts=None,
            backoff=BACKOFF,
            cap=BACKOFF_CAP,
            max_seconds=retry_seconds,
            retry_after_cap=RETRY_AFTER_CAP,
        )
        self.clock = clock
        self.stopping = stopping
        self.cancelled = cancelled
        self.requeue = requeue
        self.later = later or self._wait_here
        self._sleeper = sleep
        self.verify = verify
        self._transitions: dict[Phase, Callable[[WorkItem, Step], Step]] = {
            Phase.QUEUED: self._request,
            Phase.BUILDING: self._poll_task,
            Phase.FOLLOWING: self._poll_job,
        }

    def build(self, item: WorkItem) -> bool:
        """Build one item to its end; False when it went back to the queue."""
        step = self.run(item)
        if step.phase is Phase.REQUEUED:
            self.requeue(item)
        elif step.phase is Phase.WAITING:
            self.later(item, step.wait)
        return step.phase in FINISHED

    def run(self, item: WorkItem) -> Step:
        """Apply the item's transitions until it ends, record the end, and return it. Raises
        `Stopped` on shutdown (the item is left as it is), `LeaseLost` when fenced off."""
        step = Step(start_phase(item))
        while step.phase not in ENDS:
            self._check_stop()
            step = self._transitions[step.phase](item, step)
        self._record(item, step)
        return step

    def fail(self, item: WorkItem, reason: str) -> None:
        self._write(item.id, state="failed", error=reason[:4000], finished_at=utcnow())

    # ---- QUEUED: the build request -------------------------------------------------------

    def _request(self, item: WorkItem, _: Step) -> Step:
        """Request tries, within the retry budget, until one leaves QUEUED."""
        try:
            return self._keep_trying(item, "the build request", partial(self._request_try, item))
        except ConnectError as exc:  # Connect refused the request: no retry helps
            return Step(Phase.FAILED, reason=post_reason(exc))

    def _request_try(self, item: WorkItem) -> Step:
        """One try: check for a build an earlier request started, else journal and POST. A
        transient fault ends the try (raised); the next one starts again from QUEUED."""
        self._check_stop()
        step = on_queued(item, self.cancelled.is_set())
        if step.phase is Phase.CHECKING:
            step = self._check(item)
        if step.phase is Phase.SENDING:
            with self.gate.sending():  # SIGTERM waits for this block before releasing the lease
                step = self._send(item)
        return step

    def _check(self, item: WorkItem) -> Step:
        """CHECKING: an earlier request may have reached Connect; its jobs say whether it did."""
        assert item.requested_at is not None
        # Another process's request: its deadline first, the jobs are looked at after it. This
        # worker's own request is over.
        due_in = 0.0 if item.sent_here else request_due_in(item.requested_at, self.db_clock.now())
        jobs = self._jobs_or_none(item)
        job = adoptable_job(jobs, item.requested_at) if jobs is not None else None
        step = after_check(job, self.cancelled.is_set(), due_in)
        if step.job is not None:
            self._adopt(item, step.job)
        elif step.phase is Phase.CANCELLED:  # it was `building`, but nothing runs on Connect
            item.running = False
            self._write(item.id, state="queued")
        return step

    def _jobs_or_none(self, item: WorkItem) -> list[Job] | None:
        """The item's jobs; None if Connect will not list them (a transient fault is raised)."""
        try:
            return self.client.jobs.list(item.guid)
        except ConnectError as exc:
            if exc.transient:
                raise
            log.warning(
                "rebuild %s: Connect would not list the jobs of %s (%s)",
                self.rebuild_id,
                item.guid,
                exc.reason,
            )
            return None

    def _adopt(self, item: WorkItem, job: Job) -> None:
        log.info(
            "rebuild %s: %s is building on Connect already (job %s, started %s): following it "
            "instead of sending the build request again",
            self.rebuild_id,
            item.guid,
            job.key,
            job.start_time,
        )
        item.running = True
        self._write(item.id, state="building", started_at=job.start_time or utcnow(), error=None)

    def _send(self, item: WorkItem) -> Step:
        """SENDING: journal the request, then send it while the lease surely holds."""
        if item.requested_at is not None:
            item.resent += 1
            log.warning(
                "rebuild %s: re-sending the build request for %s: the one sent at %s may have "
                "reached Connect, but Connect shows no build of it (re-sent %d time(s))",
                self.rebuild_id,
                item.guid,
                item.requested_at,
                item.resent,
            )
        # Each request's own time: the one a taker waits from and looks for jobs since.
        item.requested_at = self.db_clock.now()
        self._fence()
        journaled = self.clock()
        item.attempts += 1
        # The journal, before the request leaves: a lost answer or a kill leaves this trace.
        self._write(
            item.id, attempts=item.attempts, requested_at=item.requested_at, resent=item.resent
        )
        self._fence(journaled)
        item.sent_here = True
        try:
            # bundle_id None: Connect builds the active bundle (a redeploy since the plan
            # already built the new one; building an old bundle would be wrong).
            task_id = self.client.content.build(item.guid)
        except ConnectError as exc:
            if not may_have_arrived(exc):
                item.requested_at = None  # Connect never saw it: nothing to look for
            raise
        item.task_id, item.running = task_id, True
        self._write(item.id, state="building", task_id=task_id, started_at=utcnow(), error=None)
        return Step(Phase.BUILDING)

    def _fence(self, journaled: float | None = None) -> None:
        """Send nothing once the lease may have lapsed, or long after the journal write (a
        taker would not wait long enough): a process that hung and woke up."""
        stalled = journaled is not None and self.clock() - journaled > SEND_WINDOW
        if stalled or not self.lease_fresh():
            log.warning(
                "rebuild %s: the lease was not renewed recently; sending nothing more",
                self.rebuild_id,
            )
            self.stopping.set()
            raise LeaseLost

    # ---- BUILDING and FOLLOWING: to the build's end --------------------------------------

    def _poll_task(self, item: WorkItem, step: Step) -> Step:
        """BUILDING: one long-poll of the task."""
        task_id = item.task_id
        assert task_id is not None
        poll = partial(self.client.tasks.get, task_id, first=step.first, wait=POLL_WAIT)
        try:
            task = self._keep_trying(item, f"polling task {task_id}", poll)
        except ConnectError as exc:
            return after_task_error(exc, task_id, item.lost)
        if isinstance(task, Step):  # gave up
            return task
        self._check_stop()  # shutting down: the next start re-attaches this task
        return after_task(task)

    def _poll_job(self, item: WorkItem, step: Step) -> Step:
        """FOLLOWING: wait, then list the item's jobs (a restart finds the job again by the
        journal)."""
        job = step.job
        assert job is not None
        self._sleep(JOB_POLL_SECONDS)
        listing = partial(self.client.jobs.list, item.guid)
        try:
            jobs = self._keep_trying(item, f"following job {job.key}", listing)
        except ConnectError as exc:
            return Step(
                Phase.FAILED, reason=f"Connect would not report on job {job.key}: {exc.reason}"
            )
        if isinstance(jobs, Step):  # gave up
            return jobs
        return after_listing(jobs, job, item.lost)

    # ---- the ends ------------------------------------------------------------------------

    def _record(self, item: WorkItem, end: Step) -> None:
        """Write how the item ended (CANCELLED and WAITING leave the row as it is)."""
        if end.phase is Phase.SUCCEEDED:
            verifying = self.verify is not None and item.interactive
            extra = {"verified": "pending", "verify_error": None} if verifying else {}
            self._write(item.id, state="succeeded", finished_at=utcnow(), **extra)
            if verifying:
                assert self.verify is not None
                self.verify(item)  # off the build slot: a separate pool probes it
        elif end.phase is Phase.FAILED:
            self.fail(item, end.reason)
        elif end.phase is Phase.REQUEUED:
            item.lost += 1
            log.warning("rebuild %s: Connect lost %s of %s", self.rebuild_id, end.reason, item.guid)
            item.task_id, item.requested_at, item.running = None, None, False
            self._write(item.id, state="queued", task_id=None, requested_at=None)

    def _wait_here(self, item: WorkItem, seconds: float) -> None:
        """WAITING without a dispatcher (one item): wait, then hand the item back."""
        self._sleep(seconds)
        self.requeue(item)

    # ---- plumbing ------------------------------------------------------------------------

    def _keep_trying(self, item: WorkItem, what: str, call: Callable[[], T]) -> T | Step:
        """`call()`, retried on transient faults within the budget; when the budget runs out,
        the step that fails the item saying so. Any other ConnectError is raised as it is."""
        started = self.clock()

        def tell(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "rebuild %s: %s for %s failed (%s); try %d again in %.1f s",
                self.rebuild_id,
                what,
                item.guid,
                error.reason if isinstance(error, ConnectError) else error,
                state.attempt_number + 1,
                state.upcoming_sleep,
            )

        retrying = self.policy.retrying(
            retry_on=_transient, sleep=self._sleep, clock=self.clock, before_sleep=tell
        )
        try:
            return retrying(call)
        except ConnectError as exc:
            if not exc.transient:
                raise
            spent, budget = self.clock() - started, self.policy.max_seconds or 0.0
            return Step(Phase.FAILED, reason=gave_up_reason(what, spent, budget, exc))

    def _write(self, item_id: int, **values: Any) -> None:
        """One item's change, if this driver still holds the lease (else LeaseLost)."""
        query = update(RebuildItem).where(RebuildItem.id == item_id)
        if self.lease is not None:
            query = query.where(leased(self.rebuild_id, self.lease))
        with self.db.session() as session:
            written = session.execute(query.values(**values)).rowcount  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
        if not written and self.lease is not None:
            self.stopping.set()  # every worker of this driver stops before its next request
            raise LeaseLost

    def _check_stop(self) -> None:
        if self.stopping.is_set():
            raise Stopped

    def _sleep(self, seconds: float) -> None:
        if self._sleeper is not None:
            self._sleeper(seconds)
            self._check_stop()
        elif self.stopping.wait(seconds):
            raise Stopped


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectError) and exc.transient
