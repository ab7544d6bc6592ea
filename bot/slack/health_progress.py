"""The card of a health check, kept up to date on one background thread per process.

Probe threads never call Slack: they store verdicts and nudge this reporter, which reads the
counts back and updates the card (chat.update) at most every UPDATE_INTERVAL seconds, and
once more with the result when the check ends. Only the process holding a check's lease
updates its card; a process that takes a check over (its holder died) updates it from then on.
chat.update is idempotent, so an update repeated across a takeover shows the same thing.
After the final card the lease is released (`HealthRuns.reported`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.services.health import HealthReport
from bot.services.health.runner import HealthRuns
from bot.slack.background import BackgroundLoop
from bot.slack.poster import SlackPoster, SlackUnavailable
from bot.slack.views import (
    health_failed_view,
    health_needs_thread,
    health_progress_view,
    health_thread_replies,
    health_view,
)

log = logging.getLogger(__name__)

TICK = 0.5
MIN_ROUND = 0.5
UPDATE_INTERVAL = 3.0
ERROR_BACKOFF = 10.0
REPLY_SPACING = 1.0  # chat.postMessage: about one message per second per channel


class HealthReporter(BackgroundLoop):
    def __init__(
        self,
        runs: HealthRuns,
        poster: SlackPoster,
        *,
        instance_id: str,
        several_servers: bool = False,
        update_interval: float = UPDATE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        on_final: Callable[[], None] | None = None,
    ) -> None:
        """`on_final()`: after a check's final card (App Home shows the latest results)."""
        super().__init__("health-reporter")
        self.runs = runs
        self.poster = poster
        self.instance_id = instance_id
        self.several_servers = several_servers
        self.update_interval = update_interval
        self.clock = clock
        self.on_final = on_final
        self._watched: dict[int, tuple[float, tuple[int, ...]]] = {}  # id -> (last, shown)
        self._quiet_until: dict[int, float] = {}
        self._lock = threading.Lock()

    def changed(self, check_id: int) -> None:
        with self._lock:
            self._watched.setdefault(check_id, (float("-inf"), ()))
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            # Probes nudge after every result; one round per MIN_ROUND keeps the queries few.
            if self._stop.wait(MIN_ROUND):
                return
            self._wake.clear()
            with self._lock:
                ids = sorted(self._watched)
            for check_id in ids:
                if self._stop.is_set():
                    return
                try:
                    self._report(check_id)
                except Exception:
                    log.exception("reporting health check %s failed", check_id)

    def _post_lists(self, channel: str, ts: str, report: HealthReport) -> None:
        """The lists too long for the card, in its thread (a crash between these posts and
        the flag that records them may repeat them once: they are information, not acts)."""
        for reply in health_thread_replies(report):
            self.poster.post(channel, reply, thread_ts=ts)
            self._stop.wait(REPLY_SPACING)

    def _drop(self, check_id: int) -> None:
        with self._lock:
            self._watched.pop(check_id, None)

    def _report(self, check_id: int) -> None:
        now = self.clock()
        if now < self._quiet_until.get(check_id, float("-inf")):
            return
        progress = self.runs.progress(check_id)
        if progress is None or progress.row.driver != self.instance_id:
            self._drop(check_id)  # gone, or another process holds it: that one reports
            return
        row = progress.row
        label = row.server if self.several_servers else None
        try:
            if row.finished:
                report = self.runs.report(check_id)
                if row.card_ts is not None:
                    if report is not None and row.error is None:
                        threaded = health_needs_thread(report)
                        if threaded and not row.summary.get("thread_posted"):
                            self._post_lists(row.channel, row.card_ts, report)
                            self.runs.store.mark_summary(check_id, thread_posted=True)
                        message = health_view(
                            report, server_label=label, check_id=check_id, threaded=threaded
                        )
                    else:
                        message = health_failed_view(row.error or "", server_label=label)
                    self.poster.update(row.channel, row.card_ts, message)
                self.runs.reported(check_id)
                self._drop(check_id)
                if self.on_final is not None:
                    self.on_final()
                return
            with self._lock:
                last, shown = self._watched.get(check_id, (float("-inf"), ()))
            counts = progress.counts
            key = (row.total or 0, counts.total, progress.probing)
            if key == shown or now - last < self.update_interval or row.card_ts is None:
                return  # due later: the loop looks again every TICK while it is watched
            self.poster.update(
                row.channel, row.card_ts, health_progress_view(progress, server_label=label)
            )
            with self._lock:
                self._watched[check_id] = (now, key)
        except SlackUnavailable as exc:
            log.warning("health check %s: Slack %s failed: %s", check_id, exc.method, exc.error)
            wait = ERROR_BACKOFF if exc.retry_after is None else exc.retry_after
            self._quiet_until[check_id] = self.clock() + wait
