"""How idempotent Connect calls are retried: a small policy, run by tenacity.

The policy is plain data (attempts, backoff, cap, optional time budget) so that settings can
build it; `RetryPolicy.retrying()` turns it into a `tenacity.Retrying`. Only the caller decides
*what* is retryable (`retry_on`); the policy decides how often and how long to wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import tenacity

T = TypeVar("T")

# Gateways in front of Connect answer these during restarts and overload (rsconnect-python#467);
# 429 is a rate limit. Only idempotent requests are retried on them.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Statuses whose Retry-After header is honoured (RFC 9110 §10.2.3, RFC 6585 §4).
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and for how long, an idempotent call is tried.

    * `attempts`: tries in all, the first included; None leaves only the time budget.
    * `backoff`: try n waits `backoff * 2**(n-1)`, capped at `cap`, times a jitter in [0.5, 1].
    * `max_seconds`: time budget from the first try; no retry is started whose wait would end
      past it. None (the default) means only `attempts` counts.
    * `retry_after_cap`: the longest Retry-After honoured; a longer one is cut to this.
    """

    attempts: int | None = 5
    backoff: float = 0.5
    cap: float = 10.0
    max_seconds: float | None = None
    retry_after_cap: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts is None and self.max_seconds is None:
            raise ValueError("a retry policy needs attempts, max_seconds or both")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts counts the first try: it must be at least 1")
        if self.max_seconds is not None and self.max_seconds < 0:
            raise ValueError("max_seconds must not be negative")

    @classmethod
    def from_retries(
        cls, retries: int | None, backoff: float, max_seconds: float | None = None
    ) -> RetryPolicy:
        """The client's knobs: `retries` after the first try (None: no count), `backoff` base."""
        attempts = None if retries is None else 1 + max(0, retries)
        return cls(attempts=attempts, backoff=backoff, max_seconds=max_seconds)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        backoff = min(self.cap, self.backoff * 2.0 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if retry_after is None:
            return backoff
        # The server's word, but never shorter than our own backoff nor longer than the cap.
        return min(self.retry_after_cap, max(retry_after, backoff))

    def retrying(
        self,
        *,
        retry_on: Callable[[BaseException], bool],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    ) -> tenacity.Retrying:
        """A tenacity `Retrying` for this policy; the last failure is re-raised as it was.

        The budget runs from this call, on `clock` (a monotonic clock; None: tenacity's own).
        `before_sleep(state)` is told of every retry (to log it).
        """
        stop: list[tenacity.stop.stop_base] = []
        if self.attempts is not None:
            stop.append(tenacity.stop_after_attempt(self.attempts))
        if self.max_seconds is not None:
            stop.append(_StopBeforeBudget(self.max_seconds, clock))
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(retry_on),
            stop=tenacity.stop_any(*stop),
            wait=self._wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def call(
        self,
        fn: Callable[[int], T],
        *,
        retry_on: Callable[[BaseException], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Run `fn(attempt_number)` until it returns, or raise its last error."""
        for attempt in self.retrying(retry_on=retry_on, sleep=sleep):
            with attempt:
                result = fn(attempt.retry_state.attempt_number)
        return result

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.delay(state.attempt_number, getattr(error, "retry_after", None))


class _StopBeforeBudget(tenacity.stop.stop_base):
    """Stop when the coming wait would end past the budget.

    Like tenacity's `stop_before_delay`, but time spent counts the waits asked for as well as
    the clock, so an injected sleep that returns at once (tests) still spends the budget. With
    a `clock`, time runs on it from the stop's creation (an injected clock in tests).
    """

    def __init__(self, max_seconds: float, clock: Callable[[], float] | None = None) -> None:
        self.max_seconds = max_seconds
        self._clock = clock
        self._started = clock() if clock is not None else 0.0

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if self._clock is None:
            elapsed = retry_state.seconds_since_start or 0.0
        else:
            elapsed = self._clock() - self._started
        spent = max(elapsed, retry_state.idle_for)
        return spent + retry_state.upcoming_sleep > self.max_seconds


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: `120` or an HTTP-date. None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
