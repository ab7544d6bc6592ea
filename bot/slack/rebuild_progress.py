"""Live progress of rebuilds in Slack, on one background thread per process.

Build workers never call Slack: they write the database and nudge this reporter, which reads the
state back and talks to Slack at its own pace. So a 429 (the WebClient sleeps `Retry-After` in
the calling thread) or a slow Slack only delays messages, never builds. Everything the thread
has been told is recorded in the database (`progress` flags, `notified` on failed items), so
after a restart nothing is lost or said twice.

With several processes, one reporter writes each rebuild's thread: the one in the process that
holds the rebuild's lease (`driver` is this instance). The engine tells it (`watch`) when it
takes a lease; a rebuild whose lease moved elsewhere is dropped at the next read. After the end
the lease is kept until the final summary is posted, and released with it (`report_final`);
if this process dies in between, another one takes the lease and posts the summary.

Slack calls per rebuild: chat.update of the parent at most every UPDATE_INTERVAL seconds and
only on change (the interval grows with the elapsed time, up to MAX_UPDATE_INTERVAL), a start
reply, a warm-up reply, one reply per batch of failures (at most one per failure), and the
final summary (reply_broadcast).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from bot.services.rebuild_store import Progress, RebuildStore
from bot.slack.poster import SlackPoster, SlackUnavailable
from bot.slack.views import (
    failures_reply,
    progress_view,
    start_reply,
    summary_reply,
    warmup_reply,
)
from bot.store import utcnow

log = logging.getLogger(__name__)

TICK = 0.5
MIN_ROUND = 0.2
UPDATE_INTERVAL = 5.0
MAX_UPDATE_INTERVAL = 30.0
REPLY_SPACING = 1.0  # chat.postMessage: about one message per second per channel
FAILURES_PER_REPLY = 10
ERROR_BACKOFF = 10.0
GONE = frozenset({"message_not_found", "cant_update_message"})


@dataclass
class _Seen:
    last_key: tuple[object, ...] = ()
    last_update: float = 0.0
    last_reply: float = 0.0
    quiet_until: float = 0.0


def update_interval(elapsed: float | None) -> float:
    """Every 5 s during the first minute, then slower for long rebuilds (capped at 30 s)."""
    return min(MAX_UPDATE_INTERVAL, max(UPDATE_INTERVAL, (elapsed or 0.0) / 12))


class RebuildReporter:
    def __init__(
        self,
        service: RebuildStore,
        poster: SlackPoster,
        *,
        instance_id: str,
        clock: Callable[[], datetime] = utcnow,
        several_servers: bool = False,
    ) -> None:
        self.service = service
        self.poster = poster
        self.instance_id = instance_id  # reports only the rebuilds whose lease it holds
        self.clock = clock  # wall clock for elapsed / time left in the messages
        self.several_servers = several_servers  # then every message names its server
        self._watched: dict[int, _Seen] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rebuild-reporter", daemon=True)

    def start(self) -> RebuildReporter:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def watch(self, rebuild_id: int) -> None:
        """Report this rebuild while this process holds its lease, until its final summary is
        posted (the engine's listener)."""
        with self._lock:
            self._watched.setdefault(rebuild_id, _Seen())
        self._wake.set()

    def watching(self) -> list[int]:
        with self._lock:
            return sorted(self._watched)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            # Workers nudge after every build; one round per MIN_ROUND keeps the queries few.
            if self._stop.wait(MIN_ROUND):
                return
            self._wake.clear()
            for rebuild_id in self.watching():
                if self._stop.is_set():
                    return
                try:
                    self._report(rebuild_id)
                except Exception:
                    log.exception("reporting rebuild %s failed", rebuild_id)

    def _report(self, rebuild_id: int) -> None:
        with self._lock:
            seen = self._watched.get(rebuild_id)
        now = time.monotonic()
        if seen is None or now < seen.quiet_until:
            return
        p = self.service.progress(rebuild_id)
        if p is None or p.driver != self.instance_id:
            self._drop(rebuild_id)  # gone, or another process holds the lease: it reports
            return
        if p.state == "planned":
            return
        try:
            self._tell(p, seen, now)
        except SlackUnavailable as exc:
            # Retried on a later tick; the 429 retries already slept Retry-After.
            log.warning("rebuild %s: Slack %s failed: %s", rebuild_id, exc.method, exc.error)
            seen.quiet_until = time.monotonic() + ERROR_BACKOFF

    def _tell(self, p: Progress, seen: _Seen, now: float) -> None:
        service = self.service
        if p.thread_ts is None:  # the plan card was never posted: start a parent message now
            ts = self.poster.post(
                p.channel, progress_view(p, now=self.clock(), server=self._server(p))
            )
            service.attach_message(p.rebuild_id, ts)
            p = replace(p, thread_ts=ts)
        assert p.thread_ts is not None
        if not p.flags.get("start_reported"):
            p = self._update(p, seen)
            self.poster.post(
                p.channel, start_reply(p, service.summary(p.rebuild_id)), thread_ts=p.thread_ts
            )
            service.set_flags(p.rebuild_id, start_reported=True)
            seen.last_reply = time.monotonic()
        if time.monotonic() - seen.last_reply >= REPLY_SPACING:
            failures = service.failures_to_report(p.rebuild_id, FAILURES_PER_REPLY)
            if failures:
                self.poster.post(
                    p.channel, failures_reply(p.rebuild_id, failures), thread_ts=p.thread_ts
                )
                service.mark_reported(item.id for item in failures)
                seen.last_reply = time.monotonic()
                self._wake.set()  # more may be waiting
                return
        if p.warmup_total and not p.warmup_open and not p.flags.get("warmup_reported"):
            self.poster.post(
                p.channel,
                warmup_reply(p, service.items(p.rebuild_id, wave=0), now=self.clock()),
                thread_ts=p.thread_ts,
            )
            service.set_flags(p.rebuild_id, warmup_reported=True)
            seen.last_reply = time.monotonic()
        if p.finished:
            if service.failures_to_report(p.rebuild_id, 1):
                self._wake.set()
                return  # the summary comes after the last failure reply
            p = self._update(p, seen)
            self.poster.post(
                p.channel,
                summary_reply(p, now=self.clock(), server=self._server(p)),
                thread_ts=p.thread_ts,
                reply_broadcast=True,
            )
            service.report_final(p.rebuild_id, self.instance_id)  # and release the lease
            self._drop(p.rebuild_id)
            return
        interval = update_interval(p.elapsed(self.clock()))
        if _key(p) != seen.last_key and now - seen.last_update >= interval:
            self._update(p, seen)

    def _drop(self, rebuild_id: int) -> None:
        with self._lock:
            self._watched.pop(rebuild_id, None)

    def _server(self, p: Progress) -> str | None:
        return p.server if self.several_servers else None

    def _update(self, p: Progress, seen: _Seen) -> Progress:
        assert p.thread_ts is not None
        try:
            self.poster.update(
                p.channel, p.thread_ts, progress_view(p, now=self.clock(), server=self._server(p))
            )
        except SlackUnavailable as exc:
            if exc.error not in GONE:
                raise
            # Someone deleted the card: carry on in a new parent message and its thread.
            ts = self.poster.post(
                p.channel, progress_view(p, now=self.clock(), server=self._server(p))
            )
            self.service.attach_message(p.rebuild_id, ts)
            p = replace(p, thread_ts=ts)
        seen.last_key = _key(p)
        seen.last_update = time.monotonic()
        return p


def _key(p: Progress) -> tuple[object, ...]:
    return (p.state, tuple(sorted(p.counts.items())))
