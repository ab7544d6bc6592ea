"""response_url webhooks (``/commands/...``, ``/actions/...``) and slash-command acks: what
they show in the workspace, their 30-minute / 5-use limits, and Slack's error ephemerals."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sim.slack.blocks import normalize_blocks
from sim.slack.common import ApiError, JsonDict, flag
from sim.slack.faults import FaultsMixin
from sim.slack.model import Ephemeral, Message, ResponseUrlPost, ResponseUrlState
from sim.slack.web_api import MAX_TEXT_POST, check_content


class _HookError(Exception):
    def __init__(self, status: int, answer: str) -> None:
        super().__init__(answer)
        self.status, self.answer = status, answer


def _ack_payload(body: bytes | str | JsonDict | None, content_type: str) -> JsonDict | None:
    """What a slash-command ack body asks Slack to show (None: nothing)."""
    if isinstance(body, dict):
        return body or None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    if not text.strip():
        return None
    if "application/json" in content_type or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return {"text": text}
        return data if isinstance(data, dict) else {"text": text}
    return {"text": text}


class ResponseUrlsMixin(FaultsMixin):
    """response_url handling of FakeSlack (``_handle_response_url`` is called over HTTP)."""

    response_url_ttl: float = 30 * 60
    response_url_max_uses: int = 5
    ack_timeout: float = 3.0  # Slack shows "operation_timeout" for slower acks

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

    def _init_response_urls(self) -> None:
        self._response_urls: dict[str, ResponseUrlState] = {}

    def new_response_url(
        self,
        *,
        channel: str,
        user: str,
        message_ts: str | None = None,
        ephemeral: bool = False,
        label: str = "",
    ) -> str:
        """A response_url for a command (message_ts None) or for a click on `message_ts`."""
        kind = "commands" if message_ts is None else "actions"
        with self._lock:
            self._counter += 1
            path = f"/{kind}/{self.team_id}/{self._counter}/{uuid.uuid4().hex[:24]}"
            self._response_urls[path] = ResponseUrlState(
                self.url + path, kind, channel, user, message_ts, ephemeral, time.time(), label
            )
        return self.url + path

    def expire_response_url(self, url: str) -> None:
        """Make `url` behave as if its 30 minutes were over."""
        self._hook_state(url).expired = True

    def response_url_uses(self, url: str) -> int:
        return self._hook_state(url).uses

    def deliver_ack(
        self,
        response_url: str,
        *,
        status: int = 200,
        body: bytes | str | JsonDict | None = None,
        content_type: str = "",
        elapsed: float = 0.0,
    ) -> None:
        """Show a slash command's ack the way Slack does: the body as a reply, or Slack's
        error ephemeral when the bot answered late or with a non-2xx status."""
        with self._lock:
            state = self._hook_state(response_url)
            if elapsed > self.ack_timeout:
                self._slack_error(state, "operation_timeout")
                return
            if not 200 <= status < 300:
                self._slack_error(state, "dispatch_failed")
                return
            payload = _ack_payload(body, content_type)
            if payload is not None:
                self._post_to_hook(state, payload, via="ack", count_use=False)

    def _handle_response_url(self, path: str, body: bytes) -> tuple[int, str]:
        self._sleep_latency("response_url")
        with self._lock:
            state = self._response_urls.get(path)
            if state is None:
                post = ResponseUrlPost(
                    self.url + path, None, 404, "no_service", "rejected", None, None, None
                )
                self.response_url_posts.append(post)
                return post.status, post.answer
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                payload = None
            post = self._post_to_hook(state, payload, via="http", count_use=True)
            return post.status, post.answer

    def _hook_state(self, url: str) -> ResponseUrlState:
        state = self._response_urls.get(urlsplit(url).path)
        if state is None:
            raise KeyError(f"unknown response_url {url}")
        return state

    def _post_to_hook(
        self, state: ResponseUrlState, payload: Any, *, via: str, count_use: bool
    ) -> ResponseUrlPost:
        """Apply one response_url POST (or ack) to the workspace and record it."""
        body = payload if isinstance(payload, dict) else None
        try:
            if count_use:
                self._check_hook_usable(state)
            if body is None:
                raise _HookError(400, "invalid_payload")
            action, ts = self._apply_hook(state, body)
            if count_use:
                state.uses += 1
            status, answer = 200, "ok"
        except _HookError as e:
            status, answer, action, ts = e.status, e.answer, "rejected", None
        post = ResponseUrlPost(
            state.url, body, status, answer, action, state.channel, state.user, ts, via
        )
        self.response_url_posts.append(post)
        return post

    def _check_hook_usable(self, state: ResponseUrlState) -> None:
        if state.expired or time.time() - state.created > self.response_url_ttl:
            raise _HookError(404, "expired_url")
        if state.uses >= self.response_url_max_uses:
            raise _HookError(404, "used_url")

    def _hook_original(self, state: ResponseUrlState) -> Message | Ephemeral | None:
        """The message replace_original/delete_original act on."""
        if state.kind == "actions":
            ts, ephemeral = state.message_ts, state.ephemeral
        else:
            ts, ephemeral = state.last_ts, state.last_ephemeral
        if ts is None:
            return None
        if ephemeral:
            return self._find_ephemeral(state.channel, ts)
        msg = self._by_ts.get((state.channel, ts))
        return msg if msg is not None and not msg.deleted else None

    def _apply_hook(self, state: ResponseUrlState, body: JsonDict) -> tuple[str, str | None]:
        if flag(body.get("delete_original")):
            target = self._hook_original(state)
            if target is None:
                raise _HookError(404, "message_not_found")
            target.deleted, target.modified = True, self.mark()
            return "delete_original", target.ts
        try:
            check_content(body, max_text=MAX_TEXT_POST)
        except ApiError as e:
            raise _HookError(400, e.body["error"]) from None
        if flag(body.get("replace_original")):
            target = self._hook_original(state)
            if target is not None:
                blocks = normalize_blocks(body.get("blocks") or [], self.mark())
                target._replace(str(body.get("text") or ""), blocks, self.mark())
                target.parse = "none"
                return "replace_original", target.ts
            if state.kind == "actions":
                raise _HookError(404, "message_not_found")
        if body.get("response_type") == "in_channel":
            try:
                parent = self._thread_parent(state.channel, body.get("thread_ts"))
            except ApiError as e:
                raise _HookError(400, e.body["error"]) from None
            msg = self._store_message(state.channel, body, parent=parent, source="response_url")
            state.last_ts, state.last_ephemeral = msg.ts, False
            return "in_channel", msg.ts
        eph = self._store_ephemeral(state.channel, state.user, body, source="response_url")
        state.last_ts, state.last_ephemeral = eph.ts, True
        return "ephemeral", eph.ts

    def _slack_error(self, state: ResponseUrlState, error: str) -> None:
        text = f'{state.label or "Your command"} failed with the error "{error}"'
        self._store_ephemeral(state.channel, state.user, {"text": text}, source="slack", bot=False)
