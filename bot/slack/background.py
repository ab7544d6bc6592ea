"""A daemon thread of its own that talks to Slack at its own pace, off the build workers.

Subclasses implement `_run`, looping until `_stop` is set and sleeping on `_wake`, which the
callers set to nudge it.
"""

from __future__ import annotations

import threading
from typing import Self


class BackgroundLoop:
    # How long `close` waits for a Slack call under way: past the Slack client's own timeout
    # (15 s, poster.py), so a post in flight has either reached Slack or failed when it returns.
    CLOSE_SECONDS = 20.0

    def __init__(self, name: str) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.CLOSE_SECONDS)

    def _run(self) -> None:
        raise NotImplementedError
