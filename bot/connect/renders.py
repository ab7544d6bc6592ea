"""Rendering documents again (connect-api-2.md §11.3): `POST v1/content/{guid}/render` -> task;
on an older Connect, the default variant's `POST /__api__/variants/{id}/render` (posit-sdk's
`content.render()`). A render replaces what viewers see: callers ask an admin first."""

from __future__ import annotations

from typing import Any

from bot.connect.client import HttpCore
from bot.connect.errors import ConnectError, expect_shape

UNKNOWN_ROUTE_CODES = (None, 2)  # an unknown route: 404 without a code (or "not supported")


class Renders:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def start(self, guid: str) -> str:
        """Render the item's default variant; the task id. Sent once: a lost answer may have
        started a render."""
        path = f"v1/content/{guid}/render"
        try:
            body = self._http.post(path, json={})
        except ConnectError as exc:
            if exc.not_found and exc.code in UNKNOWN_ROUTE_CODES:
                return self._start_by_variant(guid)
            raise
        return _task_id("POST", path, body)

    def _start_by_variant(self, guid: str) -> str:
        path = f"applications/{guid}/variants"
        body = self._http.get(path)
        with expect_shape("GET", path, "a list of variants"):
            if not isinstance(body, list) or not body:
                raise ValueError("variants")
            variants = [v for v in body if isinstance(v, dict)]
            default = next((v for v in variants if v.get("is_default") is True), variants[0])
            variant = str(default["id"])
        render = f"variants/{variant}/render"
        return _task_id("POST", render, self._http.post(render))


def _task_id(method: str, path: str, body: Any) -> str:
    with expect_shape(method, path, "an object with a task id"):
        task_id = body.get("task_id") or body["id"]
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
            raise TypeError("task_id")
        return str(task_id)
