"""One item's probe: does it start? (connect-api-2.md §6, §11).

Visit: list the item's jobs, request its content URL (`Authorization: Key`), list its jobs
again. The verdict comes from the newest run job that was not listed before the request:
active, or ended with exit code 0, means it starts; another exit code means it fails to start,
with the relevant log line or Connect's error summary. The HTTP status alone decides nothing
(a healthy API answers `/` with 404; a key without viewer rights gets 401/403/404).

Why keys, not clocks: a job's `start_time` has whole seconds and comes from Connect's clock,
which may be seconds away from the bot's. Comparing it with the (floored) request time on the
bot's clock would drop the probe's own job when Connect's clock is behind, and take an older
job when it is ahead. The jobs listed just before the request are exactly those that did not
start after it, whatever either clock says; start times only order the new ones.

Render (rendered content, on request): render it again, follow the task to its end within the
timeout, and read the render job (`build_report`, `build_jupyter`, `build_site`).

A transient fault (no answer, a gateway error with no new job) is retried once; past that, or
when the key may not view the item, the item "could not be checked".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.connect import ConnectClient, ConnectError, ContentItem, Job, PackagesUnavailable
from bot.connect.models import normalise_package
from bot.services.health.outcomes import CouldNotCheck, FailsToStart, ItemHealth, Starts, Verdict
from bot.services.health.selection import Probe

# Job tags of a process serving content (connect-api-2.md §6, §11.2).
RUN_TAGS = frozenset(
    {
        "run_app",
        "run_api",
        "run_python_api",
        "run_fastapi_app",
        "run_dash_app",
        "run_streamlit",
        "run_bokeh_app",
        "run_panel_app",
        "run_gradio_app",
        "run_pyshiny_app",
        "run_voila_app",
        "run_tensorflow",
        "render_shiny",
    }
)
RENDER_TAGS = frozenset({"build_report", "build_jupyter", "build_site"})
DEFAULT_TIMEOUT = 60.0  # seconds, when the item sets no init_timeout
DENIED = (401, 403)
MAX_REASON = 300

# Log lines that say why a process died, most telling first.
_TELLING = (
    re.compile(r"cannot open shared object file", re.IGNORECASE),
    re.compile(r"Cannot find compatible environment", re.IGNORECASE),
    re.compile(r"^\s*(Error\b|[A-Za-z]*Error:|[A-Za-z]*Exception:)"),
)


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    default_timeout: float = DEFAULT_TIMEOUT
    log_lines: int = 50
    settle_polls: int = 10  # jobs re-read while a failed start is still ending
    settle_interval: float = 0.2
    retries: int = 1  # per item, for a transient fault


class _Transient(Exception):
    """A fault worth one more try of the whole probe."""


class Prober:
    """Probes items on one Connect. `client` should send each request once (`single_try()`):
    the probe retries by its own budget. `sleep` is injectable for tests."""

    def __init__(
        self,
        client: ConnectClient,
        *,
        settings: ProbeSettings | None = None,
        sleep: Callable[[float], None],
        on_before: Callable[[ContentItem, set[str]], None] | None = None,
    ) -> None:
        """`on_before(item, keys)`: told the job keys listed just before each request leaves
        (a store keeps them, so another process can find that request's job)."""
        self.client = client
        self.settings = settings or ProbeSettings()
        self._sleep = sleep
        self._on_before = on_before

    def check(self, item: ContentItem, probe: Probe) -> ItemHealth:
        """Probe `item` (retried once on a transient fault); failing items get their packages."""
        attempts = self.settings.retries + 1
        reason = ""
        for attempt in range(1, attempts + 1):
            try:
                verdict = self._visit(item) if probe is Probe.VISIT else self._render(item)
            except _Transient as exc:
                reason = str(exc)
                continue
            except ConnectError as exc:
                verdict = CouldNotCheck(self.client.http.redact(exc.reason))
            packages = self._packages(item) if isinstance(verdict, FailsToStart) else None
            return ItemHealth(item, verdict, attempts=attempt, packages=packages)
        tries = "once more" if attempts == 2 else f"{attempts - 1} more times"
        return ItemHealth(item, CouldNotCheck(f"{reason} (tried {tries})"), attempts=attempts)

    def resume(self, item: ContentItem, probe: Probe, before: set[str]) -> ItemHealth | None:
        """The verdict of a probe another process sent before it died, from the job Connect
        started for it (a job not among `before`); None when there is none (the request never
        reached Connect, or started nothing): probe it then."""
        tags = RUN_TAGS if probe is Probe.VISIT else RENDER_TAGS
        try:
            job = _newest(self._jobs(item), tags, before)
            # A render: wait for its end. A process: give a start under way the settle
            # window to fail; one still active after it counts as started (takeover itself
            # comes seconds after the request).
            polls = (
                int(self.timeout(item) / max(self.settings.settle_interval, 0.01))
                if probe is Probe.RENDER
                else self.settings.settle_polls
            )
            while job is not None and job.active and polls > 0:
                self._sleep(self.settings.settle_interval)
                polls -= 1
                job = _newest(self._jobs(item), tags, before)
        except (_Transient, ConnectError):
            return None  # probed again, within its own retry budget
        if job is None:
            return None
        if job.active and probe is Probe.RENDER:
            verdict: Verdict = CouldNotCheck(
                f"the render did not end within {self.timeout(item):g} s"
            )
        elif job.active or job.exit_code == 0:
            verdict = Starts("rendered" if probe is Probe.RENDER else "started")
        else:
            verdict = self._failed(item, job, "start" if probe is Probe.VISIT else "render")
        packages = self._packages(item) if isinstance(verdict, FailsToStart) else None
        return ItemHealth(item, verdict, attempts=1, packages=packages)

    def _listed_before(self, item: ContentItem) -> set[str]:
        before = {job.key for job in self._jobs(item)}
        if self._on_before is not None:
            self._on_before(item, before)
        return before

    def timeout(self, item: ContentItem) -> float:
        return item.init_timeout or self.settings.default_timeout

    # ---- visit -------------------------------------------------------------------------------

    def _visit(self, item: ContentItem) -> Verdict:
        before = self._listed_before(item)
        status: int | None = None
        fault = ""
        redirected: str | None = None
        try:
            answer = self.client.urls.visit(item.guid, timeout=self.timeout(item))
            status, redirected = answer.status, answer.redirected_to
        except ConnectError as exc:
            if not exc.transient:
                raise
            fault = self.client.http.redact(str(exc))
        unsure = fault or (status is not None and status >= 500)
        jobs = self._jobs(item)
        job = _newest(jobs, RUN_TAGS, before)
        for _ in range(self.settings.settle_polls if unsure else 0):
            if job is not None and not job.active:
                break
            self._sleep(self.settings.settle_interval)
            jobs = self._jobs(item)
            job = _newest(jobs, RUN_TAGS, before)
        if job is not None:
            if job.active and unsure:  # still starting when the answer failed: ask again
                raise _Transient(fault or f"Connect answered HTTP {status} while it was starting")
            if job.active or job.exit_code == 0:
                return Starts()
            return self._failed(item, job, "start")
        if redirected is not None:
            return CouldNotCheck(f"Connect sent the request elsewhere ({redirected})")
        if status in DENIED:
            return CouldNotCheck(f"the bot's key may not view this item (HTTP {status})")
        if unsure:
            raise _Transient(fault or f"Connect answered HTTP {status} and started no process")
        if any(job.active and job.tag in RUN_TAGS for job in jobs):
            return Starts("already running")
        return CouldNotCheck(f"Connect answered HTTP {status} and started no process")

    # ---- render ------------------------------------------------------------------------------

    def _render(self, item: ContentItem) -> Verdict:
        before = self._listed_before(item)
        try:
            task_id = self.client.renders.start(item.guid)
        except ConnectError as exc:
            if exc.transient and exc.status is None:
                raise _Transient(self.client.http.redact(str(exc))) from None
            raise
        try:
            task = self.client.tasks.follow(task_id, timeout=self.timeout(item))
        except ConnectError as exc:
            if exc.transient:
                raise _Transient(self.client.http.redact(str(exc))) from None
            raise
        if not task.finished:
            return CouldNotCheck(f"the render did not end within {self.timeout(item):g} s")
        job = _newest(self._jobs(item), RENDER_TAGS, before)
        if task.succeeded:
            return Starts("rendered")
        if job is not None and job.exit_code not in (None, 0):
            return self._failed(item, job, "render")
        return FailsToStart(task.failure_reason[:MAX_REASON], stage="render")

    # ---- reading Connect ---------------------------------------------------------------------

    def _jobs(self, item: ContentItem) -> list[Job]:
        try:
            return self.client.jobs.list(item.guid)
        except ConnectError as exc:
            if exc.transient:
                raise _Transient(self.client.http.redact(str(exc))) from None
            raise

    def _failed(
        self, item: ContentItem, job: Job, stage: Literal["start", "render"]
    ) -> FailsToStart:
        """Why the job failed: its telling log line, else Connect's summary, else its code."""
        summary = ""
        line = None
        try:
            error = self.client.jobs.error(item.guid, job.key)
            summary = error.summary if error is not None else ""
        except ConnectError:
            pass  # the log may still say why
        try:
            lines = self.client.jobs.log(item.guid, job.key, max_lines=self.settings.log_lines)
            line = telling_line([entry.data for entry in lines])
        except ConnectError:
            pass
        reason = line or summary or f"the process exited with code {job.exit_code}"
        return FailsToStart(
            reason[:MAX_REASON],
            stage=stage,
            summary=summary[:MAX_REASON],
            job_key=job.key,
        )

    def _packages(self, item: ContentItem) -> tuple[str, ...] | None:
        """The active bundle's packages ("language:name"), for grouping failures; None when
        Connect cannot say."""
        try:
            rows = self.client.packages.of_content(item.guid)
        except PackagesUnavailable:
            return None
        except ConnectError:
            return None
        names = {f"{row.language}:{normalise_package(row.language, row.name)}" for row in rows}
        return tuple(sorted(names))


def _newest(jobs: Sequence[Job], tags: frozenset[str], before: set[str]) -> Job | None:
    """The newest job with one of `tags` not among `before` (Connect lists newest first; start
    times, when given, decide)."""
    fresh = [job for job in jobs if job.tag in tags and job.key not in before]
    if not fresh:
        return None
    dated = [(job.start_time, job) for job in fresh if job.start_time is not None]
    if not dated:
        return fresh[0]
    newest = max(start for start, _ in dated)
    return next(job for start, job in dated if start == newest)


def telling_line(lines: Sequence[str]) -> str | None:
    """The log line that best says why a process died (`libgdal.so.30: cannot open shared
    object file: …`), stripped; None if none looks like an error."""
    for pattern in _TELLING:
        found = [line.strip() for line in lines if pattern.search(line)]
        if found:
            return found[-1]
    return None
