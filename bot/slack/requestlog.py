"""One log line per Slack request: the HTTP layer writes it, listeners add who/where/what.

Socket Mode has no HTTP layer, so there the listener's fields are logged on their own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("bot.http")
_current = threading.local()


def begin() -> None:
    _current.fields = {}


def end() -> dict[str, Any]:
    fields = getattr(_current, "fields", None) or {}
    _current.fields = None
    return fields


def annotate(**fields: Any) -> None:
    """Attach Slack user, channel and command to the current request's log line."""
    current = getattr(_current, "fields", None)
    if current is not None:
        current.update(fields)
    elif log.isEnabledFor(logging.INFO):
        log.info("socket request", extra={"event": "request", "transport": "socket", **fields})
