"""Tasks: GET /__api__/v1/tasks/{id} with `first` (output offset) and `wait` (server long-poll)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.connect.client import HttpCore
from bot.connect.errors import expect_shape
from bot.connect.models import Task

MAX_WAIT = 20  # Connect refuses wait > 20 s


class Tasks:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def get(self, task_id: str, *, first: int | None = None, wait: int = 0) -> Task:
        wait = max(0, min(MAX_WAIT, int(wait)))
        params: dict[str, int] = {"wait": wait}
        if first is not None:
            params["first"] = first
        # The read timeout must outlast the server-side wait.
        path = f"v1/tasks/{task_id}"
        body = self._http.get(path, params=params, read_timeout=wait + 15.0)
        with expect_shape("GET", path, "a task object"):
            return Task.from_json(body)

    def follow(
        self,
        task_id: str,
        *,
        wait: int = MAX_WAIT,
        timeout: float | None = None,
        on_output: Callable[[list[str]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Task:
        """Long-poll a task to its end, collecting every output line.

        Returns the finished task (check `succeeded`). If `timeout` passes or `should_stop`
        says so, returns the task as last seen, unfinished.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        output: list[str] = []
        first = 0
        while True:
            step = wait
            if deadline is not None:
                step = max(0, min(wait, int(deadline - time.monotonic())))
            task = self.get(task_id, first=first, wait=step)
            if task.output:
                output.extend(task.output)
                if on_output:
                    on_output(task.output)
            first = max(first, task.last)
            task.output = output
            if task.finished:
                return task
            if should_stop and should_stop():
                return task
            if deadline is not None and time.monotonic() >= deadline:
                return task
