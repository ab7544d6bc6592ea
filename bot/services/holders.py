"""Which process holds a claim, and whether that process is still there.

A holder is `host/pid/token`. On this host a holder whose pid is gone (kill -9, then a restart)
is gone at once; one with our own pid but not created by this process (containers reuse pid 1)
is gone too. On another host, only time tells (the caller's staleness rule).
"""

from __future__ import annotations

import os
import secrets
import socket

_LIVE: set[str] = set()


def new_holder() -> str:
    holder = f"{socket.gethostname()[:80]}/{os.getpid()}/{secrets.token_hex(4)}"
    _LIVE.add(holder)
    return holder


def release(holder: str) -> None:
    _LIVE.discard(holder)


def is_gone(holder: str | None) -> bool:
    """True when `holder` is known to be dead: no holder, or a process of this host that ended."""
    if not holder:
        return True
    host, _, rest = holder.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname()[:80] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return holder not in _LIVE
    return not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
