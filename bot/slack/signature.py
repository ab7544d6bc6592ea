"""Slack request signatures, checked before a request reaches Bolt (slack-platform.md section 3).

slack_sdk's `SignatureVerifier` calls `int()` on the timestamp header and `bytes.decode()` on
the body, so a forged request with a timestamp like "abc" (or a body that is not UTF-8) raises
inside Bolt and is answered 500. `RequestVerifier` validates both headers' shape first, then
does one HMAC-SHA256 over the raw body bytes, and refuses a replay of a signature it accepted
within the 5-minute window. Every failure is a reason string; the caller answers 401.

The headers are checked on their own first (`check_headers`), before the body is read. Replays
are remembered in this process and, with `shared` (PostgreSQL: `bot.store.seen`), in a table
every replica consults, so a request replayed to another replica is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

WINDOW_SECONDS = 60 * 5  # Slack's replay window: |now - timestamp| > 5 min is refused
MAX_REMEMBERED = 10_000  # accepted signatures kept for replay checks (~2 MB at most)

# Unix seconds, ASCII digits only: str.isdigit() also accepts "١٢٣" and int() accepts " 123",
# "1_0" and "+1". Twelve digits is year 33658; longer strings are never in the window.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

log = logging.getLogger("bot.http")


class SharedMemory(Protocol):
    """Signatures seen by any replica (`bot.store.seen.SeenSignatures`)."""

    def first_sighting(self, signature: str, sent: int) -> bool:
        """Record `signature` (its request sent at `sent`); False if it was already there."""
        ...


class RequestVerifier:
    """Checks `X-Slack-Request-Timestamp` / `X-Slack-Signature` for one raw body.

    `signing_secret=None` checks only what needs no secret (both headers present and well
    formed, timestamp within the window): the HMAC is then left to Bolt, and replays are not
    detected, since only a signature whose HMAC was checked may be remembered.
    """

    def __init__(
        self,
        signing_secret: str | None,
        *,
        clock: Callable[[], float] = time.time,
        window: int = WINDOW_SECONDS,
        max_remembered: int = MAX_REMEMBERED,
        shared: SharedMemory | None = None,
    ) -> None:
        self._mac = (
            hmac.new(signing_secret.encode(), digestmod=hashlib.sha256) if signing_secret else None
        )
        self.clock = clock
        self.window = window
        self.max_remembered = max_remembered
        self._seen: OrderedDict[str, int] = OrderedDict()  # signature -> its timestamp
        self._lock = threading.Lock()
        self.shared = shared

    @property
    def checks_hmac(self) -> bool:
        return self._mac is not None

    def check(self, body: bytes, timestamp: str | None, signature: str | None) -> str | None:
        """None if the request is authentic and new, else why not (for the log, not Slack)."""
        refused = self.check_headers(timestamp, signature)
        if refused is not None or self._mac is None:
            return refused
        assert timestamp is not None and signature is not None
        mac = self._mac.copy()
        mac.update(b"v0:" + timestamp.encode() + b":" + body)
        if not hmac.compare_digest("v0=" + mac.hexdigest(), signature):
            return "bad signature"
        return self._remember(signature, int(timestamp), self.clock())

    def check_headers(self, timestamp: str | None, signature: str | None) -> str | None:
        """What can be refused before the body is read: missing, malformed or stale headers."""
        if timestamp is None:
            return "missing timestamp"
        if signature is None:
            return "missing signature"
        if _TIMESTAMP.fullmatch(timestamp) is None:
            return "malformed timestamp"
        if _SIGNATURE.fullmatch(signature) is None:
            return "malformed signature"
        sent = int(timestamp)
        now = self.clock()
        if abs(now - sent) > self.window:
            return "stale timestamp"
        return None

    def _remember(self, signature: str, sent: int, now: float) -> str | None:
        """Record an authentic signature; a second sighting within the window is a replay."""
        oldest_valid = now - self.window
        with self._lock:
            seen = self._seen
            if signature in seen:
                return "replayed request"
            # Insertion order is close to timestamp order; entries out of the window can never
            # pass the timestamp check again, so dropping them loses nothing.
            while seen and (next(iter(seen.values())) < oldest_valid):
                seen.popitem(last=False)
            if len(seen) >= self.max_remembered:
                seen.popitem(last=False)
            seen[signature] = sent
        if self.shared is None:
            return None
        try:
            first = self.shared.first_sighting(signature, sent)
        except Exception as exc:
            # Fail open to this replica's own memory: a database outage must not turn every
            # Slack request into a 401 (the handlers report the outage to the user).
            log.warning(
                "replay check in the database failed: %s",
                type(exc).__name__,
                extra={"event": "replay_check_degraded"},
            )
            return None
        return None if first else "replayed request"
