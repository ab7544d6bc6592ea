"""The Web API methods connect-bot uses (``/api/<method>``): request parsing, auth and
scopes, parameter checks, and the handlers for chat.*, users.*, usergroups.*,
conversations.info, conversations.members, conversations.history / replies, auth.test and
apps.connections.open."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sim.slack.blocks import normalize_blocks, validate_blocks
from sim.slack.common import (
    TEAM_DOMAIN,
    TEAM_NAME,
    ApiError,
    ApiHandler,
    JsonDict,
    flag,
    ts_key,
)
from sim.slack.faults import FaultsMixin
from sim.slack.model import ApiCall, Channel, Message

if TYPE_CHECKING:
    from sim.slack.socket_mode import SocketModeServer

log = logging.getLogger(__name__)

MAX_TEXT_POST = 40_000  # chat.postMessage truncates/rejects above this
MAX_TEXT_UPDATE = 4_000  # chat.update: "cannot exceed 4,000 characters"
MAX_ATTACHMENTS = 100
MAX_HISTORY_PAGE = 999  # conversations.history / replies: `limit` above this is capped


def _decode_json_fields(params: JsonDict) -> None:
    """Form bodies carry blocks/attachments as JSON strings; decode them in place."""
    for key in ("blocks", "attachments", "metadata"):
        value = params.get(key)
        if isinstance(value, str):
            # Undecodable values stay strings; handlers answer invalid_blocks_format.
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)


def _parse_params(content_type: str, body: bytes, query: str) -> tuple[JsonDict, str | None]:
    params: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params, None
    if "application/json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return params, "invalid_json"
        if not isinstance(data, dict):
            return params, "invalid_json"
        params.update(data)
    else:
        try:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return params, "invalid_form_data"
    _decode_json_fields(params)
    return params, None


def check_content(params: JsonDict, *, max_text: int, update: bool = False) -> None:
    """Raise the error Slack gives for missing/oversized text, blocks or attachments."""
    text, blocks, attachments = params.get("text"), params.get("blocks"), params.get("attachments")
    if isinstance(blocks, str):
        raise ApiError("invalid_blocks_format")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    if update:
        has_content = bool(text) or "blocks" in params or "attachments" in params
    else:
        has_content = bool(text or blocks or attachments or params.get("markdown_text"))
    if not has_content:
        raise ApiError("no_text")
    if text is not None and len(str(text)) > max_text:
        raise ApiError("msg_too_long")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        raise ApiError("too_many_attachments")


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class WebApiMixin(FaultsMixin):
    """The Web API of FakeSlack (``_handle_api`` is called by the HTTP handler)."""

    bot_token: str
    app_token: str
    scopes: list[str]
    _socket: SocketModeServer

    def _init_web_api(self) -> None:
        self._methods: dict[str, tuple[ApiHandler, str | None]] = {
            "auth.test": (self._auth_test, None),
            "chat.postMessage": (self._chat_post_message, "chat:write"),
            "chat.update": (self._chat_update, "chat:write"),
            "chat.postEphemeral": (self._chat_post_ephemeral, "chat:write"),
            "chat.delete": (self._chat_delete, "chat:write"),
            "users.info": (self._users_info, "users:read"),
            "usergroups.users.list": (self._usergroups_users_list, "usergroups:read"),
            "usergroups.list": (self._usergroups_list, "usergroups:read"),
            "conversations.info": (self._conversations_info, None),  # scope depends on channel
            "conversations.members": (self._conversations_members, None),  # as conversations.info
            "conversations.history": (self._conversations_history, None),  # ditto
            "conversations.replies": (self._conversations_replies, None),  # ditto
            "apps.connections.open": (self._apps_connections_open, None),
        }

    def register_method(self, name: str, handler: ApiHandler, *, scope: str | None = None) -> None:
        """Serve an extra Web API method: handler(params) -> response dict."""
        self._methods[name] = (handler, scope)

    def _handle_api(
        self, method: str, verb: str, headers: dict[str, str], body: bytes, query: str
    ) -> tuple[int, dict[str, str], JsonDict]:
        received = time.time()
        params, parse_error = _parse_params(headers.get("content-type", ""), body, query)
        with self._lock:
            self.arrivals.append(method)
        self._sleep_latency(method, params)
        with self._lock:
            status, extra, response = self._api_response(method, params, headers, parse_error)
            self.calls.append(
                ApiCall(method, params, headers, status, response, received, verb, extra)
            )
        log.debug("%s %s -> %s %s", verb, method, status, response.get("error") or "ok")
        return status, extra, response

    def _api_response(
        self, method: str, params: JsonDict, headers: dict[str, str], parse_error: str | None
    ) -> tuple[int, dict[str, str], JsonDict]:
        entry = self._methods.get(method)
        if entry is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        handler, scope = entry
        if parse_error:
            return 200, {}, {"ok": False, "error": parse_error}
        auth_error = self._auth_error(method, headers, params)
        if auth_error:
            return 200, {}, {"ok": False, "error": auth_error}
        extra = (
            {} if method == "apps.connections.open" else {"x-oauth-scopes": ",".join(self.scopes)}
        )
        retry_after = self._take_rate_limit(method, params)
        if retry_after is not None:
            return (
                429,
                {**extra, "Retry-After": str(retry_after)},
                {"ok": False, "error": "ratelimited"},
            )
        failure = self._take_failure(method)
        if failure is not None:
            return 200, extra, {"ok": False, "error": failure}
        try:
            self._require_scope(scope)
            return 200, extra, handler(params)
        except ApiError as e:
            return 200, extra, e.body

    # ---- auth and scopes ------------------------------------------------------------------

    def _auth_error(self, method: str, headers: dict[str, str], params: JsonDict) -> str | None:
        token = _bearer(headers) or params.get("token")  # Slack also accepts a body token
        if not token:
            return "not_authed"
        wanted, other = (
            (self.app_token, self.bot_token)
            if method == "apps.connections.open"
            else (self.bot_token, self.app_token)
        )
        if token == wanted:
            return None
        return "not_allowed_token_type" if token == other else "invalid_auth"

    def _require_scope(self, scope: str | None) -> None:
        if scope and scope not in self.scopes:
            raise ApiError("missing_scope", needed=scope, provided=",".join(self.scopes))

    # ---- Web API methods ------------------------------------------------------------------

    def _auth_test(self, params: JsonDict) -> JsonDict:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: JsonDict) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"), by_name=True)
        self._require_post_access(channel)
        check_content(params, max_text=MAX_TEXT_POST)
        parent = self._thread_parent(channel.id, params.get("thread_ts"))
        msg = self._store_message(channel.id, params, parent=parent, source="chat.postMessage")
        return {
            "ok": True,
            "channel": channel.id,
            "ts": msg.ts,
            "message": msg.to_api(self.team_id),
        }

    def _chat_update(self, params: JsonDict) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"))
        msg = self._find_message(channel.id, params.get("ts"))
        if msg.bot_id != self.bot_id:
            raise ApiError("cant_update_message")
        check_content(params, max_text=MAX_TEXT_UPDATE, update=True)
        text = str(params["text"]) if "text" in params else msg.text
        blocks = (
            normalize_blocks(params["blocks"] or [], self.mark())
            if "blocks" in params
            else msg.blocks
        )
        msg._replace(text, blocks, self.mark())
        if "attachments" in params:
            msg.attachments = list(params["attachments"] or [])
        msg.parse = str(params.get("parse") or "client")  # chat.update defaults to parse=client
        if "metadata" in params:
            msg.metadata = params["metadata"]
        return {
            "ok": True,
            "channel": channel.id,
            "ts": msg.ts,
            "text": msg.text,
            "message": msg.to_api(self.team_id),
        }

    def _chat_post_ephemeral(self, params: JsonDict) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"), by_name=True)
        self._require_post_access(channel)
        user = params.get("user")
        if not user:
            raise ApiError("user_not_found")
        if channel.members and user not in channel.members:
            raise ApiError("user_not_in_channel")
        check_content(params, max_text=MAX_TEXT_POST)
        eph = self._store_ephemeral(channel.id, str(user), params, source="chat.postEphemeral")
        return {"ok": True, "message_ts": eph.ts}

    def _chat_delete(self, params: JsonDict) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"))
        msg = self._find_message(channel.id, params.get("ts"))
        if msg.bot_id != self.bot_id:
            raise ApiError("cant_delete_message")
        msg.deleted, msg.modified = True, self.mark()
        return {"ok": True, "channel": channel.id, "ts": msg.ts}

    def _users_info(self, params: JsonDict) -> JsonDict:
        user = self._users.get(str(params.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _usergroups_users_list(self, params: JsonDict) -> JsonDict:
        group = self._usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"ok": True, "users": list(group.users)}

    def _usergroups_list(self, params: JsonDict) -> JsonDict:
        include_users = flag(params.get("include_users"))
        groups = [
            g.to_api(self.team_id, include_users=include_users) for g in self._usergroups.values()
        ]
        return {"ok": True, "usergroups": groups}

    def _conversations_info(self, params: JsonDict) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"))
        if channel.is_private and not channel.bot_member:
            raise ApiError("channel_not_found")  # private channels are invisible to outsiders
        self._require_scope("groups:read" if channel.is_private else "channels:read")
        data = channel.to_api(include_num_members=flag(params.get("include_num_members")))
        return {"ok": True, "channel": data}

    def _conversations_members(self, params: JsonDict) -> JsonDict:
        """A channel's members (the bot too, when it is in), `limit` a page (default 100, at
        most 1000) with a `next_cursor` while more remain. Private channels the bot is not in
        are invisible; the scope is channels:read or groups:read, as for conversations.info."""
        channel = self._resolve_channel(params.get("channel"))
        if channel.is_private and not channel.bot_member:
            raise ApiError("channel_not_found")
        self._require_scope("groups:read" if channel.is_private else "channels:read")
        try:
            limit = int(params.get("limit") or 100)
        except (TypeError, ValueError):
            raise ApiError("invalid_limit") from None
        if not 1 <= limit <= 1000:
            raise ApiError("invalid_limit")
        members = sorted(channel.members) + ([self.bot_user_id] if channel.bot_member else [])
        cursor = str(params.get("cursor") or "")
        start = 0
        if cursor:
            try:
                start = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
            except ValueError:
                raise ApiError("invalid_cursor") from None
        page = members[start : start + limit]
        after = start + limit
        next_cursor = (
            base64.b64encode(f"offset:{after}".encode()).decode() if after < len(members) else ""
        )
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, params: JsonDict) -> JsonDict:
        """Top-level messages, newest first (thread replies only when broadcast, as Slack)."""
        channel = self._readable_channel(params.get("channel"))
        top = [m for m in self._top.get(channel.id, []) if not m.deleted]
        top += [r for m in top for r in m.replies if r.reply_broadcast and not r.deleted]
        newest_first = sorted(top, key=lambda m: ts_key(m.ts), reverse=True)
        return self._history_page(newest_first, params)

    def _conversations_replies(self, params: JsonDict) -> JsonDict:
        """The parent then its replies, oldest first."""
        channel = self._readable_channel(params.get("channel"))
        parent = self._by_ts.get((channel.id, str(params.get("ts") or "")))
        if parent is None or parent.deleted:
            raise ApiError("thread_not_found")
        if parent.is_reply:
            parent = self._by_ts[(channel.id, str(parent.thread_ts))]
        thread = [parent, *(r for r in parent.replies if not r.deleted)]
        return self._history_page(thread, params)

    def _readable_channel(self, ref: Any) -> Channel:
        """The channel, if the bot may read its history (Slack's scope per channel type)."""
        channel = self._resolve_channel(ref)
        if getattr(channel, "user", None):  # an IM (users_api.ImChannel)
            self._require_scope("im:history")
        elif channel.is_private:
            if not channel.bot_member:
                raise ApiError("channel_not_found")
            self._require_scope("groups:history")
        else:
            self._require_scope("channels:history")
            if not channel.bot_member:
                raise ApiError("not_in_channel")
        return channel

    def _history_page(self, messages: list[Message], params: JsonDict) -> JsonDict:
        """One page (`limit`, `cursor` = offset); `metadata` only with include_all_metadata."""
        try:
            limit = min(MAX_HISTORY_PAGE, max(1, int(params.get("limit") or 100)))
            offset = int(params.get("cursor") or 0)
        except ValueError:
            raise ApiError("invalid_cursor") from None
        page = messages[offset : offset + limit]
        with_metadata = flag(params.get("include_all_metadata"))
        found = []
        for msg in page:
            data = msg.to_api(self.team_id)
            if not with_metadata:
                data.pop("metadata", None)
            found.append(data)
        more = offset + limit < len(messages)
        return {
            "ok": True,
            "messages": found,
            "has_more": more,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }

    def _apps_connections_open(self, params: JsonDict) -> JsonDict:
        try:
            url = self._socket.issue_url()
        except ImportError:  # websockets not installed
            raise ApiError("internal_error", detail="websockets is not installed") from None
        return {"ok": True, "url": url}

    # ---- channel and message lookups ------------------------------------------------------

    def _resolve_channel(self, ref: Any, *, by_name: bool = False) -> Channel:
        ref = str(ref or "")
        channel = self._channels.get(ref)
        if channel is None and by_name:
            name = ref.removeprefix("#")
            channel = next((c for c in self._channels.values() if c.name == name), None)
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _require_post_access(self, channel: Channel) -> None:
        if not channel.bot_member:
            if channel.is_private:
                raise ApiError("channel_not_found")
            if "chat:write.public" not in self.scopes:
                raise ApiError("not_in_channel")
        if channel.is_archived:
            raise ApiError("is_archived")

    def _find_message(self, channel: str, ts: Any) -> Message:
        msg = self._by_ts.get((channel, str(ts or "")))
        if msg is None or msg.deleted:
            raise ApiError("message_not_found")  # ephemeral ts included: can't be updated
        return msg
