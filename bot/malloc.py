"""Fewer glibc malloc arenas for the bot process, set before its threads start.

glibc gives each thread that allocates concurrently an arena of its own, up to 8 per core, and
an arena keeps the memory it freed. The bot runs a build worker per parallelism slot, Bolt's
workers and the background loops: after a 10,000-item rebuild on 16 slots its RSS was ~25 MB
higher with the default than with 2 arenas (`bench/rebuild.py --scenario plan`), for no
speed gained (the threads mostly wait on the network). MALLOC_ARENA_MAX, when set, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc <malloc.h>
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """mallopt(M_ARENA_MAX, arenas) on glibc unless MALLOC_ARENA_MAX is set; True if applied."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
