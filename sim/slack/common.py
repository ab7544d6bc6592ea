"""Primitives shared by every part of the fake Slack: JSON types, workspace constants,
Slack timestamps and booleans, and the Web API error exception."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

TEAM_NAME = "Fake Workspace"
TEAM_DOMAIN = "fake-workspace"
VERIFICATION_TOKEN = "fake-verification-token"  # the deprecated `token` field Slack still sends

JsonDict = dict[str, Any]
ApiHandler = Callable[[JsonDict], JsonDict]


def ts_key(ts: str) -> tuple[int, int]:
    """Exact sort key for Slack timestamps ("<epoch>.<6 digits>"); float() loses digits."""
    sec, _, frac = str(ts).partition(".")
    return int(sec or 0), int((frac or "0").ljust(6, "0")[:6])


def flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or form strings ("1", "true")."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class TsClock:
    """Issues unique, strictly increasing Slack timestamps."""

    def __init__(self) -> None:
        self._last_us = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
            return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"


class ApiError(Exception):
    """A Web API failure: answered as HTTP 200 with ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body: JsonDict = {"ok": False, "error": error, **extra}
