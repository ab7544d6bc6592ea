"""Fault injection: rate limits (queued or sliding-window), errors and latency."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from bot.sim.slack.common import JsonDict
from bot.sim.slack.workspace import Workspace


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


class FaultsMixin(Workspace):
    """Faults FakeSlack injects into Web API answers and response_url webhooks."""

    def _init_faults(self) -> None:
        self._rate_limits: dict[str, deque[int]] = {}
        self._failures: dict[str, deque[str]] = {}
        self._latency: dict[str | None, float] = {}
        self._windows: dict[str, _Window] = {}

    def rate_limit(self, method: str, *, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` calls to `method` get HTTP 429 + Retry-After, error ratelimited."""
        with self._lock:
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

    def clear_faults(self) -> None:
        with self._lock:
            self._rate_limits.clear()
            self._failures.clear()
            self._latency.clear()
            self._windows.clear()

    def _take_rate_limit(self, method: str, params: JsonDict) -> int | None:
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

    def _sleep_latency(self, method: str) -> None:
        delay = self._latency.get(method, self._latency.get(None, 0.0))
        if delay > 0:
            time.sleep(delay)
