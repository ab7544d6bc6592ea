"""Runs a health check over a stream of items: at most `concurrency` probes at once, each
result handed to a sink as soon as it is known (a later step stores them per item, so another
replica can take a check over without probing an item twice).

Items needing no probe (skipped, or on a runtime Connect no longer offers) are reported at
once; `claim(item)` is asked before an item is probed (False: someone else has it, or it is
done) and is where a store records that a probe is under way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from bot.connect import ContentItem
from bot.services.health.outcomes import ItemHealth
from bot.services.health.selection import Installed, Probe, classify

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32

Sink = Callable[[ItemHealth], None]
Claim = Callable[[ContentItem], bool]
Check = Callable[[ContentItem, Probe], ItemHealth]


def clamp_concurrency(value: int | None) -> int:
    return max(1, min(MAX_CONCURRENCY, value or DEFAULT_CONCURRENCY))


def run_checks(
    items: Iterable[ContentItem],
    check: Check,
    *,
    runtimes: Installed | None,
    render: bool,
    concurrency: int = DEFAULT_CONCURRENCY,
    sink: Sink,
    claim: Claim | None = None,
    visited: frozenset[str] | None = None,
) -> None:
    """Classify each item and probe those that need it with `check`, `concurrency` at a time;
    returns when every result went to `sink` (called from one thread at a time); `visited`:
    the GUIDs `--visited-within` keeps (None: all)."""
    workers = clamp_concurrency(concurrency)
    sink_lock = threading.Lock()
    slots = threading.BoundedSemaphore(workers * 2)  # items in flight: memory stays flat
    failures: list[BaseException] = []

    def report(result: ItemHealth) -> None:
        with sink_lock:
            sink(result)

    def probe(item: ContentItem, how: Probe) -> None:
        try:
            report(check(item, how))
        finally:
            slots.release()

    def done(future: Future[None]) -> None:
        error = future.exception()
        if error is not None:
            failures.append(error)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health-probe") as pool:
        for item in items:
            if failures:
                break
            how = classify(item, runtimes, render=render, visited=visited)
            if not isinstance(how, Probe):
                report(ItemHealth(item, how))
                continue
            if claim is not None and not claim(item):
                continue
            slots.acquire()
            pool.submit(probe, item, how).add_done_callback(done)
    if failures:
        raise failures[0]
