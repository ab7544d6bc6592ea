"""What tests and the renderer ask the fake: recorded calls, waiting for the bot, and the
messages a person would see."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Self

from sim.slack.common import JsonDict, ts_key
from sim.slack.model import ApiCall, Ephemeral, Message
from sim.slack.workspace import Workspace


class QueriesMixin(Workspace):
    """Recording and query helpers of FakeSlack."""

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in list(self.calls) if c.method == method]

    def arrived(self, method: str) -> int:
        """How many calls to `method` have arrived (answered or still held by latency)."""
        with self._lock:
            return self.arrivals.count(method)

    def clear_recordings(self) -> None:
        with self._lock:
            self.arrivals.clear()
            self.calls.clear()
            self.response_url_posts.clear()
            self.interactions.clear()

    def wait_for(
        self,
        predicate: Callable[[Self], bool],
        timeout: float = 5.0,
        *,
        interval: float = 0.01,
    ) -> bool:
        """Poll `predicate(self)` until true or timeout (for flows the bot finishes async).
        A LookupError (KeyError, IndexError) from the predicate counts as "not yet"."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate(self):
                    return True
            except LookupError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        start: int = 0,
    ) -> ApiCall:
        """First call to `method` (from index `start` of `calls`) matching `predicate`."""
        found: list[ApiCall] = []

        def check(fake: QueriesMixin) -> bool:
            for call in list(fake.calls)[start:]:
                if call.method == method and (predicate is None or predicate(call)):
                    found.append(call)
                    return True
            return False

        if self.wait_for(check, timeout):
            return found[0]
        seen = [c.method for c in list(self.calls)[start:]]
        raise TimeoutError(f"no matching {method} call within {timeout}s; calls: {seen}")

    def messages(
        self, channel: str, *, include_deleted: bool = False, include_broadcasts: bool = True
    ) -> list[Message]:
        """Top-level messages in ts order, with current content. Thread replies sent with
        reply_broadcast also appear here (as in Slack's channel view)."""
        with self._lock:
            top = list(self._top.get(channel, []))
            if include_broadcasts:
                top += [r for m in top for r in m.replies if r.reply_broadcast]
        visible = [m for m in top if include_deleted or not m.deleted]
        return sorted(visible, key=lambda m: ts_key(m.ts))

    def last_message(self, channel: str) -> Message | None:
        top = self.messages(channel, include_broadcasts=False)
        return top[-1] if top else None

    def message(self, channel: str, ts: str) -> Message:
        """A message (top level or reply, deleted too) by ts."""
        with self._lock:
            msg = self._by_ts.get((channel, ts))
        if msg is None:
            raise KeyError(f"no message {ts} in {channel}")
        return msg

    def thread(self, channel: str, ts: str, *, include_deleted: bool = False) -> list[Message]:
        """Replies in the thread under parent `ts` (the parent itself is message())."""
        parent = self.message(channel, ts)
        with self._lock:
            replies = list(parent.replies)
        return [r for r in replies if include_deleted or not r.deleted]

    def ephemerals(
        self, channel: str | None = None, user: str | None = None, *, include_deleted: bool = False
    ) -> list[Ephemeral]:
        """Ephemeral messages (chat.postEphemeral, response_url, command acks, Slack errors)."""
        with self._lock:
            items = list(self._ephemerals)
        return [
            e
            for e in items
            if (channel is None or e.channel == channel)
            and (user is None or e.user == user)
            and (include_deleted or not e.deleted)
        ]

    def snapshot(self) -> JsonDict:
        """JSON-able dump of channels, threads and ephemerals (GET /_fake/state)."""
        with self._lock:
            channels = {
                cid: [
                    {
                        **m.to_api(self.team_id),
                        "replies": [r.to_api(self.team_id) for r in m.replies],
                    }
                    for m in msgs
                    if not m.deleted
                ]
                for cid, msgs in self._top.items()
            }
            ephemerals = [
                {**e.to_api(self.team_id), "channel": e.channel, "user": e.user, "source": e.source}
                for e in self._ephemerals
                if not e.deleted
            ]
            return {"channels": channels, "ephemerals": ephemerals, "api_calls": len(self.calls)}
