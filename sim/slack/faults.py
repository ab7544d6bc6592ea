"""Fault injection: rate limits (queued or sliding-window), errors and latency."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.slack.common import JsonDict
from sim.slack.workspace import Workspace


@dataclass
class _Window:
    """Sliding-window limiter: at most max_calls per per_seconds (per channel if asked)."""

    max_calls: int
    per_seconds: float
    retry_after: int | None
    per_channel: bool
    hits: dict[str | None, deque[float]] = field(default_factory=dict)

    def hit(self, channel: str | None, now: float) -> int | None:
        key = channel if self.per_channel else None
        window = self.hits.setdefault(key, deque())
        while window and window[0] <= now - self.per_seconds:
            window.popleft()
        if len(window) >= self.max_calls:
            return self.retry_after or max(1, math.ceil(window[0] + self.per_seconds - now))
        window.append(now)
        return None


@dataclass
class _Targeted:
    """429s for the calls whose parameters `when` accepts."""

    when: Callable[[JsonDict], bool]
    left: int
    retry_after: int


@dataclass
class _Held:
    """One call answered late (`FaultsMixin.hold`)."""

    when: Callable[[JsonDict], bool]
    seconds: float
    arrived: threading.Event


class FaultsMixin(Workspace):
    """Faults FakeSlack injects into Web API answers and response_url webhooks."""

    def _init_faults(self) -> None:
        self._rate_limits: dict[str, deque[int]] = {}
        self._failures: dict[str, deque[str]] = {}
        self._latency: dict[str | None, float] = {}
        self._windows: dict[str, _Window] = {}
        self._targeted: dict[str, list[_Targeted]] = {}
        self._held: dict[str, list[_Held]] = {}

    def rate_limit(
        self,
        method: str,
        *,
        count: int = 1,
        retry_after: int = 1,
        when: Callable[[JsonDict], bool] | None = None,
    ) -> None:
        """The next `count` calls to `method` get HTTP 429 + Retry-After, error ratelimited;
        with `when`, only the calls whose parameters it accepts (e.g. one message's post)."""
        with self._lock:
            if when is not None:
                self._targeted.setdefault(method, []).append(_Targeted(when, count, retry_after))
                return
            self._rate_limits.setdefault(method, deque()).extend([int(retry_after)] * count)

    def rate_limit_window(
        self,
        method: str,
        *,
        max_calls: int,
        per_seconds: float,
        retry_after: int | None = None,
        per_channel: bool = False,
    ) -> None:
        """Enforce a sliding-window limit (e.g. chat.postMessage 1/s per channel)."""
        with self._lock:
            self._windows[method] = _Window(max_calls, per_seconds, retry_after, per_channel)

    def fail(self, method: str, error: str, *, count: int = 1) -> None:
        """The next `count` calls to `method` answer 200 {"ok": false, "error": error}."""
        with self._lock:
            self._failures.setdefault(method, deque()).extend([error] * count)

    def set_latency(self, method: str | None, seconds: float) -> None:
        """Delay answers to `method` (None: every method; "response_url" for webhooks)."""
        with self._lock:
            if seconds > 0:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def hold(
        self, method: str, seconds: float, *, when: Callable[[JsonDict], bool]
    ) -> threading.Event:
        """Answer the next call to `method` that `when` accepts `seconds` late (it is stored
        then, as Slack would, even if the caller has gone). The event is set on its arrival:
        e.g. kill the bot while its post is on the way."""
        held = _Held(when, seconds, threading.Event())
        with self._lock:
            self._held.setdefault(method, []).append(held)
        return held.arrived

    def clear_faults(self) -> None:
        with self._lock:
            self._rate_limits.clear()
            self._failures.clear()
            self._latency.clear()
            self._windows.clear()
            self._targeted.clear()
            self._held.clear()

    def _take_rate_limit(self, method: str, params: JsonDict) -> int | None:
        for target in self._targeted.get(method, []):
            if target.left > 0 and target.when(params):
                target.left -= 1
                return target.retry_after
        queued = self._rate_limits.get(method)
        if queued:
            return queued.popleft()
        window = self._windows.get(method)
        if window is None:
            return None
        return window.hit(str(params.get("channel") or ""), time.monotonic())

    def _take_failure(self, method: str) -> str | None:
        failures = self._failures.get(method)
        return failures.popleft() if failures else None

    def _sleep_latency(self, method: str, params: JsonDict | None = None) -> None:
        with self._lock:
            held = next(
                (h for h in self._held.get(method, []) if params is not None and h.when(params)),
                None,
            )
            if held is not None:
                self._held[method].remove(held)
        if held is not None:
            held.arrived.set()
            time.sleep(held.seconds)
            return
        delay = self._latency.get(method, self._latency.get(None, 0.0))
        if delay > 0:
            time.sleep(delay)
