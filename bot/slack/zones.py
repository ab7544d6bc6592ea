"""Each person's Slack time zone (`users.info` `user.tz`, an IANA name; scope users:read), for
`--at HH:MM`. Asked once per person per TTL and shared by every command; a failed lookup is
not kept, so the next command asks again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

ZONE_TTL = 3600.0  # people rarely move; a changed zone is seen within the hour


class UserZones:
    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = ZONE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def zone(self, user: str) -> str | None:
        """`user`'s IANA zone name as Slack has it, or None when Slack does not say."""
        now = self._monotonic()
        with self._lock:
            known = self._known.get(user)
        if known is not None and now - known[0] < self.ttl:
            return known[1]
        try:
            answer = self.client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user, exc.response.get("error"))
            return None
        except Exception as exc:  # Slack unreachable: --at can't be read now
            log.warning("users.info for %s failed: %s", user, type(exc).__name__)
            return None
        tz = (answer.get("user") or {}).get("tz")
        zone = tz if isinstance(tz, str) and tz else None
        with self._lock:
            self._known[user] = (now, zone)
        return zone
