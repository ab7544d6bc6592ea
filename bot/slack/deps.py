"""What the Slack layer needs from the rest of the bot, and the request shapes it passes around.

Work after the ack runs on `Deps.submit`, not Bolt's lazy listeners: the submit waits (bounded)
for a quiet moment between acks (`AckGate`), never raises into Bolt, and is drained on shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any

from bot.services.container import Services
from bot.services.outcomes import Actor
from bot.slack.poster import SlackPoster
from bot.slack.zones import UserZones

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Invocation:
    """Who asked, where, and how to answer them privately."""

    user: str
    channel: str
    response_url: str | None
    team: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.user, self.channel)


@dataclass(frozen=True, slots=True)
class Click(Invocation):
    action_id: str = ""
    value: str = ""
    message_ts: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    trigger_id: str | None = None  # opens a modal (views.open) within 3 s of the click

    def selected_values(self, action_id: str) -> list[str]:
        """Values chosen in a select menu of the same message (Slack sends them with the click)."""
        chosen: list[str] = []
        for block in self.state.values():
            element = block.get(action_id) if isinstance(block, dict) else None
            if isinstance(element, dict):
                for option in element.get("selected_options") or []:
                    if isinstance(option, dict) and isinstance(option.get("value"), str):
                        chosen.append(option["value"])
        return chosen


class AckGate:
    """Tracks Slack requests being answered, so background work can step aside.

    Slack's 3 s ack deadline is hard; background work has none. During a burst of commands,
    work queued after an ack waits (bounded) for a quiet moment, `quiet` seconds without a new
    request, so it doesn't compete with the next acks for the interpreter. One command at a
    time never waits: the next request is seconds away.
    """

    def __init__(self, quiet: float = 0.05) -> None:
        self.quiet = quiet
        self._inflight = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self._inflight += 1
            self._last = time.monotonic()

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
            self._last = time.monotonic()

    def wait_quiet(self, timeout: float) -> None:
        # Polled at the pace of the quiet period: waking every waiting worker on each request
        # would cost the acks more than the wait saves.
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                inflight, last = self._inflight, self._last
            now = time.monotonic()
            calm_for = now - last
            if now >= deadline or (inflight == 0 and calm_for >= self.quiet):
                return
            time.sleep(min(deadline - now, max(self.quiet - calm_for, 0.01)))


@dataclass
class Deps:
    """The use cases, and how the Slack layer talks back (poster) and works after the ack."""

    services: Services
    poster: SlackPoster
    executor: Executor
    bot_user_id: str | None = None
    team_url: str | None = None  # the workspace's URL, for links to threads
    zones: UserZones | None = None  # people's Slack time zones (None: `--at` is refused)
    gate: AckGate = field(default_factory=AckGate)
    background_yield: float = 2.0  # longest a background task waits for a quiet moment
    _outstanding: set[Future[None]] = field(default_factory=set, repr=False)
    _outstanding_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def submit(
        self, function: Callable[..., None], *args: Any, prompt: bool = False
    ) -> Future[None]:
        """Run work after the ack. Errors are logged, never raised into Bolt. `prompt`: do not
        wait for a quiet moment (opening a modal: the trigger expires 3 s after the click)."""

        def guarded() -> None:
            try:
                if not prompt:
                    self.gate.wait_quiet(self.background_yield)
                function(*args)
            except Exception:
                log.exception("background work %s failed", getattr(function, "__name__", "?"))

        future = self.executor.submit(guarded)
        with self._outstanding_lock:
            self._outstanding.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[None]) -> None:
        with self._outstanding_lock:
            self._outstanding.discard(future)

    def drain(self, timeout: float) -> int:
        """Wait (bounded) for background work to end; returns how many tasks are still running."""
        with self._outstanding_lock:
            pending = list(self._outstanding)
        _, not_done = wait(pending, timeout=timeout)
        return len(not_done)
