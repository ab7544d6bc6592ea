"""A fake Slack for tests, the demo and benchmarks.

Serves, on loopback, the Web API subset connect-bot uses (``/api/<method>``), ``response_url``
webhooks (``/commands/...``, ``/actions/...``) and, on demand, a Socket Mode WebSocket endpoint.
It keeps channel/thread/ephemeral state so tests can assert on what a person would see, records
every call, and can inject rate limits, errors and latency.

Behaviour follows shared/reference/slack-platform.md (sections 1-5; checklist in 10).

Standalone: ``python -m bot.sim.slack_server --port 8090 --defaults``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

log = logging.getLogger(__name__)

TEAM_NAME = "Fake Workspace"
TEAM_DOMAIN = "fake-workspace"
VERIFICATION_TOKEN = "fake-verification-token"  # the deprecated `token` field Slack still sends

MAX_TEXT_POST = 40_000  # chat.postMessage truncates/rejects above this
MAX_TEXT_UPDATE = 4_000  # chat.update: "cannot exceed 4,000 characters"
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100

JsonDict = dict[str, Any]
ApiHandler = Callable[[JsonDict], JsonDict]


def ts_key(ts: str) -> tuple[int, int]:
    """Exact sort key for Slack timestamps ("<epoch>.<6 digits>"); float() loses digits."""
    sec, _, frac = str(ts).partition(".")
    return int(sec or 0), int((frac or "0").ljust(6, "0")[:6])


def flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or form strings ("1", "true")."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class _TsClock:
    """Issues unique, strictly increasing Slack timestamps."""

    def __init__(self) -> None:
        self._last_us = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
            return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"


# --------------------------------------------------------------------------------------------
# Block Kit validation (limits from reference section 2.4 / slack_sdk.models.blocks)
# --------------------------------------------------------------------------------------------

TEXT_TYPES = {"plain_text", "mrkdwn"}
SINGLE_OPTION_ELEMENTS = {"static_select", "overflow", "radio_buttons"}
MULTI_OPTION_ELEMENTS = {"multi_static_select", "checkboxes"}
OPTION_ELEMENTS = SINGLE_OPTION_ELEMENTS | MULTI_OPTION_ELEMENTS
# Elements whose selection is a single raw value in block_actions payloads.
VALUE_ELEMENTS = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "external_select": "selected_option",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}
KNOWN_ELEMENTS = (
    {"button", "image", "workflow_button", "datetimepicker", "plain_text_input"}
    | {"number_input", "email_text_input", "url_text_input", "rich_text_input", "file_input"}
    | {"multi_external_select", "multi_users_select", "multi_conversations_select"}
    | {"multi_channels_select"}
    | OPTION_ELEMENTS
    | set(VALUE_ELEMENTS)
)


def _pointer(message: str, path: str) -> str:
    return f"{message} [json-pointer:{path}]"


def _check_len(value: Any, limit: int, path: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [_pointer(f"must be less than {limit + 1} characters", path)]
    return []


def _check_text(obj: Any, path: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [_pointer("must provide an object", path)]
    if obj.get("type") not in TEXT_TYPES or (plain_only and obj.get("type") != "plain_text"):
        allowed = "plain_text" if plain_only else "one of [plain_text, mrkdwn]"
        return [_pointer(f"must be {allowed}", f"{path}/type")]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [_pointer("must be more than 0 characters", f"{path}/text")]
    return _check_len(text, limit, f"{path}/text")


def _check_confirm(obj: Any, path: str) -> list[str]:
    if not isinstance(obj, dict):
        return [_pointer("must provide an object", path)]
    errors = _check_text(obj.get("title"), f"{path}/title", 100, plain_only=True)
    errors += _check_text(obj.get("text"), f"{path}/text", 300)
    errors += _check_text(obj.get("confirm"), f"{path}/confirm", 30, plain_only=True)
    errors += _check_text(obj.get("deny"), f"{path}/deny", 30, plain_only=True)
    if obj.get("style") not in (None, "primary", "danger"):
        errors.append(_pointer("must be one of [primary, danger]", f"{path}/style"))
    return errors


def _check_option(opt: Any, path: str) -> list[str]:
    if not isinstance(opt, dict):
        return [_pointer("must provide an object", path)]
    errors = _check_text(opt.get("text"), f"{path}/text", 75)
    value = opt.get("value")
    if not isinstance(value, str) or not value:
        errors.append(_pointer("must be more than 0 characters", f"{path}/value"))
    return errors + _check_len(value, 150, f"{path}/value")


def _check_options(el: JsonDict, path: str) -> list[str]:
    errors = []
    if "placeholder" in el:
        errors += _check_text(el["placeholder"], f"{path}/placeholder", 150, plain_only=True)
    options = el.get("options")
    if options is None:
        return errors
    if not isinstance(options, list) or not 1 <= len(options) <= 100:
        return [*errors, _pointer("must provide between 1 and 100 items", f"{path}/options")]
    for i, opt in enumerate(options):
        errors += _check_option(opt, f"{path}/options/{i}")
    return errors


def _check_button(el: JsonDict, path: str) -> list[str]:
    errors = _check_text(el.get("text"), f"{path}/text", 75, plain_only=True)
    errors += _check_len(el.get("value"), 2000, f"{path}/value")
    errors += _check_len(el.get("url"), 3000, f"{path}/url")
    errors += _check_len(el.get("accessibility_label"), 75, f"{path}/accessibility_label")
    if el.get("style") not in (None, "primary", "danger"):
        errors.append(_pointer("must be one of [primary, danger]", f"{path}/style"))
    return errors


def _check_element(el: Any, path: str) -> list[str]:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        return [_pointer("must provide an element object with a type", path)]
    kind = el["type"]
    errors = _check_len(el.get("action_id"), 255, f"{path}/action_id")
    if kind == "button":
        errors += _check_button(el, path)
    elif kind in OPTION_ELEMENTS:
        errors += _check_options(el, path)
    elif kind not in KNOWN_ELEMENTS:
        errors.append(_pointer(f"unsupported element type: {kind}", f"{path}/type"))
    if "confirm" in el:
        errors += _check_confirm(el["confirm"], f"{path}/confirm")
    return errors


def _check_image(obj: JsonDict, path: str) -> list[str]:
    errors = []
    if not obj.get("image_url") and not obj.get("slack_file"):
        errors.append(_pointer("must provide image_url or slack_file", path))
    errors += _check_len(obj.get("image_url"), 3000, f"{path}/image_url")
    alt = obj.get("alt_text")
    if not isinstance(alt, str) or not alt:
        errors.append(_pointer("must be more than 0 characters", f"{path}/alt_text"))
    return errors + _check_len(alt, 2000, f"{path}/alt_text")


def _check_section(block: JsonDict, path: str) -> list[str]:
    text, fields = block.get("text"), block.get("fields")
    errors = []
    if text is None and not fields:
        errors.append(_pointer("must provide text or fields", path))
    if text is not None:
        errors += _check_text(text, f"{path}/text", 3000)
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            errors.append(_pointer("must provide at most 10 items", f"{path}/fields"))
        else:
            for i, item in enumerate(fields):
                errors += _check_text(item, f"{path}/fields/{i}", 2000)
    if "accessory" in block:
        errors += _check_element(block["accessory"], f"{path}/accessory")
    return errors


def _check_header(block: JsonDict, path: str) -> list[str]:
    return _check_text(block.get("text"), f"{path}/text", 150, plain_only=True)


def _check_context(block: JsonDict, path: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
        return [_pointer("must provide between 1 and 10 items", f"{path}/elements")]
    errors: list[str] = []
    for i, el in enumerate(elements):
        sub = f"{path}/elements/{i}"
        is_image = isinstance(el, dict) and el.get("type") == "image"
        errors += _check_image(el, sub) if is_image else _check_text(el, sub, 3000)
    return errors


def _check_actions(block: JsonDict, path: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        return [_pointer("must provide between 1 and 25 items", f"{path}/elements")]
    errors: list[str] = []
    seen: set[str] = set()
    for i, el in enumerate(elements):
        errors += _check_element(el, f"{path}/elements/{i}")
        action_id = el.get("action_id") if isinstance(el, dict) else None
        if action_id and action_id in seen:
            errors.append(_pointer("action_id must be unique", f"{path}/elements/{i}/action_id"))
        seen.add(action_id or "")
    return errors


def _check_markdown(block: JsonDict, path: str) -> list[str]:
    text = block.get("text")
    if not isinstance(text, str) or not text:
        return [_pointer("must be more than 0 characters", f"{path}/text")]
    return _check_len(text, 12_000, f"{path}/text")


def _no_checks(block: JsonDict, path: str) -> list[str]:
    return []


_BLOCK_CHECKS: dict[str, Callable[[JsonDict, str], list[str]]] = {
    "section": _check_section,
    "header": _check_header,
    "divider": _no_checks,
    "context": _check_context,
    "actions": _check_actions,
    "image": _check_image,
    "markdown": _check_markdown,
    # Accepted without deep checks: rarely used by this bot.
    "rich_text": _no_checks,
    "input": _no_checks,
    "file": _no_checks,
    "video": _no_checks,
}


def validate_blocks(blocks: Any) -> list[str]:
    """Slack-style error strings for a message's `blocks` (empty list means valid)."""
    if not isinstance(blocks, list):
        return [_pointer("must provide an array", "/blocks")]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(_pointer(f"no more than {MAX_BLOCKS} items allowed", "/blocks"))
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        path = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(_pointer("must provide an object with a type", path))
            continue
        block_id = block.get("block_id")
        errors += _check_len(block_id, 255, f"{path}/block_id")
        if block_id is not None and block_id in block_ids:
            errors.append(_pointer("block_id must be unique", f"{path}/block_id"))
        block_ids.add(block_id)
        check = _BLOCK_CHECKS.get(block["type"])
        if check is None:
            errors.append(_pointer(f"unsupported type: {block['type']}", f"{path}/type"))
        else:
            errors += check(block, path)
    return errors


def interactive_elements(blocks: Iterable[JsonDict]) -> Iterator[tuple[JsonDict, JsonDict]]:
    """(block, element) pairs a person can click: actions elements and section accessories."""
    for block in blocks:
        if block.get("type") == "actions":
            for el in block.get("elements", []):
                yield block, el
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]


def _normalize_blocks(blocks: list[JsonDict], seed: str) -> list[JsonDict]:
    """Copy blocks and fill in the ids Slack generates (block_id, action_id) when missing."""
    out = copy.deepcopy(blocks)
    for i, block in enumerate(out):
        block.setdefault("block_id", hashlib.sha1(f"{seed}/{i}".encode()).hexdigest()[:5])
    for block, el in interactive_elements(out):
        el.setdefault(
            "action_id", hashlib.sha1(f"{seed}/{block['block_id']}/{el}".encode()).hexdigest()[:6]
        )
    return out


_MENTION = re.compile(r"<([@#!][^>|]*)(?:\|[^>]*)?>")
_BARE_BROADCAST = re.compile(r"(?<![\w<])@(here|channel|everyone)\b")


def _mrkdwn_strings(blocks: Iterable[JsonDict]) -> Iterator[str]:
    """Texts in blocks that Slack parses as mrkdwn (where <!channel> etc. are live)."""

    def mrkdwn(obj: Any) -> Iterator[str]:
        if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
            yield str(obj.get("text", ""))

    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            yield from mrkdwn(block.get("text"))
            for item in block.get("fields") or []:
                yield from mrkdwn(item)
        elif kind == "context":
            for el in block.get("elements") or []:
                yield from mrkdwn(el)
        elif kind == "markdown":
            yield str(block.get("text", ""))


# --------------------------------------------------------------------------------------------
# Recorded state
# --------------------------------------------------------------------------------------------


@dataclass
class ApiCall:
    """One Web API request as the fake saw it."""

    method: str
    params: JsonDict  # parsed JSON or form body (+ query); blocks/attachments decoded to lists
    headers: dict[str, str]  # request headers, lower-case names
    status: int
    response: JsonDict
    time: float
    http_method: str = "POST"
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.response.get("ok") is True

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass(kw_only=True)
class _Posted:
    """Content shared by channel messages and ephemeral messages."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[JsonDict] = field(default_factory=list)
    attachments: list[JsonDict] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    source: str = "chat.postMessage"  # or chat.postEphemeral, response_url, ack, slack, user
    parse: str = "none"  # effective parse mode of the current content (chat.update -> "client")
    mrkdwn: bool = True
    updated: int = 0  # times the content was replaced (chat.update / replace_original)
    deleted: bool = False
    # Earlier (text, blocks) contents, oldest first.
    versions: list[tuple[str, list[JsonDict]]] = field(default_factory=list)
    modified: str = ""  # ts-like mark of the last change

    def __post_init__(self) -> None:
        self.modified = self.modified or self.ts

    def elements(self) -> list[tuple[JsonDict, JsonDict]]:
        return list(interactive_elements(self.blocks))

    def buttons(self) -> list[JsonDict]:
        return [el for _, el in self.elements() if el.get("type") == "button"]

    def button_labels(self) -> list[str]:
        return [el["text"]["text"] for el in self.buttons()]

    def find_element(
        self, action_id: str, *, value: str | None = None, block_id: str | None = None
    ) -> tuple[JsonDict, JsonDict]:
        """The (block, element) with this action_id (and value/block_id if given)."""
        for block, el in self.elements():
            if el.get("action_id") != action_id:
                continue
            if value is not None and el.get("value") != value:
                continue
            if block_id is not None and block.get("block_id") != block_id:
                continue
            return block, el
        found = [(el.get("action_id"), el.get("value")) for _, el in self.elements()]
        raise LookupError(
            f"no element action_id={action_id!r} value={value!r} on message {self.ts} "
            f"in {self.channel}; it has {found}"
        )

    def all_text(self) -> str:
        """Every text in the message (fallback text and every text object), newline-joined."""
        parts = [self.text]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                is_text = node.get("type") in TEXT_TYPES | {"markdown"}
                if is_text and isinstance(node.get("text"), str):
                    parts.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.blocks)
        return "\n".join(p for p in parts if p)

    def mentions(self) -> list[str]:
        """Live mention tokens Slack acts on: ``!here``, ``!channel``, ``@U1``, ``!subteam^S1``."""
        # The fallback text counts too: it is parsed and shown in notifications.
        texts = [self.text, *_mrkdwn_strings(self.blocks)]
        found = [m.group(1) for text in texts for m in _MENTION.finditer(text)]
        if self.parse in ("full", "client"):  # bare @channel is linkified in these modes
            found += [f"!{m.group(1)}" for text in texts for m in _BARE_BROADCAST.finditer(text)]
        return found

    def _replace(self, text: str, blocks: list[JsonDict], mark: str) -> None:
        self.versions.append((self.text, self.blocks))
        self.text, self.blocks = text, blocks
        self.updated += 1
        self.modified = mark


@dataclass(kw_only=True)
class Message(_Posted):
    """A message in a channel (top level or thread reply)."""

    user: str | None = None  # author: the bot's user id for bot posts
    username: str | None = None
    app_id: str | None = None
    replies: list[Message] = field(default_factory=list)
    reply_broadcast: bool = False
    metadata: JsonDict | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, team_id: str) -> JsonDict:
        """The message object as Slack returns it (chat.postMessage, block_actions payloads)."""
        data: JsonDict = {"type": "message", "text": self.text, "user": self.user, "ts": self.ts}
        if self.bot_id:
            data.update(bot_id=self.bot_id, app_id=self.app_id)
        data["team"] = team_id
        if self.blocks:
            data["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            data["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.is_reply and self.reply_broadcast:
            data["subtype"] = "thread_broadcast"
        if self.replies:
            data.update(reply_count=len(self.replies), latest_reply=self.replies[-1].ts)
        if self.updated:
            data["edited"] = {"user": self.user, "ts": self.modified}
        if self.metadata:
            data["metadata"] = copy.deepcopy(self.metadata)
        return data


@dataclass(kw_only=True)
class Ephemeral(_Posted):
    """A message only `user` can see (chat.postEphemeral, response_url, slash-command ack)."""

    user: str  # recipient

    def to_api(self, team_id: str) -> JsonDict:
        data: JsonDict = {"type": "message", "text": self.text, "ts": self.ts, "team": team_id}
        if self.blocks:
            data["blocks"] = copy.deepcopy(self.blocks)
        return data


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    bot_member: bool = True
    members: set[str] = field(default_factory=set)  # explicit human members; empty = not tracked
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self, *, include_num_members: bool = False) -> JsonDict:
        data: JsonDict = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_member": self.bot_member,
            "name_normalized": self.name,
        }
        if include_num_members:
            data["num_members"] = len(self.members) + int(self.bot_member)
        return data


@dataclass
class Usergroup:
    id: str
    handle: str
    users: list[str]
    name: str = ""

    def to_api(self, team_id: str, *, include_users: bool = False) -> JsonDict:
        data: JsonDict = {
            "id": self.id,
            "team_id": team_id,
            "handle": self.handle,
            "name": self.name or self.handle,
            "is_usergroup": True,
            "user_count": len(self.users),
        }
        if include_users:
            data["users"] = list(self.users)
        return data


@dataclass
class ResponseUrlPost:
    """One use of a response_url (or a slash-command ack, which Slack shows the same way)."""

    url: str
    body: JsonDict | None  # parsed JSON, None if unparseable
    status: int
    answer: str  # HTTP body returned: "ok", "used_url", "expired_url", ...
    action: str  # ephemeral | in_channel | replace_original | delete_original | rejected
    channel: str | None
    user: str | None
    ts: str | None  # message or ephemeral created/changed
    via: str = "http"  # http | ack
    time: float = field(default_factory=time.time)


@dataclass
class Interaction:
    """Something a person did in Slack: ran a slash command or clicked an element."""

    kind: str  # command | click
    ts: str
    channel: str
    user: str
    label: str  # "/connect caches list" or the button text
    transport: str  # http | socket
    payload: JsonDict
    response_url: str
    status: int | None = None  # the bot's HTTP status (200 for a socket ack)
    elapsed: float | None = None  # seconds until the bot answered/acked


@dataclass
class SocketEnvelope:
    envelope_id: str
    type: str
    payload: JsonDict
    sent_at: float
    response_url: str | None = None
    ack: JsonDict | None = None
    acked_at: float | None = None


@dataclass
class _ResponseUrl:
    url: str
    kind: str  # commands | actions
    channel: str
    user: str
    message_ts: str | None  # for actions: the message holding the clicked element
    ephemeral: bool
    created: float
    label: str = ""  # the command line, for Slack's error text
    uses: int = 0
    expired: bool = False
    last_ts: str | None = None  # commands: the latest message posted through this URL
    last_ephemeral: bool = True


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body: JsonDict = {"ok": False, "error": error, **extra}


class _HookError(Exception):
    def __init__(self, status: int, answer: str) -> None:
        super().__init__(answer)
        self.status, self.answer = status, answer


@dataclass
class _Window:
    """Sliding-window limiter: at most max_calls per per_seconds (per channel if asked)."""

    max_calls: int
    per_seconds: float
    retry_after: int | None
    per_channel: bool
    hits: dict[str | None, deque[float]] = field(default_factory=dict)

    def hit(self, channel: str | None, now: float) -> int | None:
        key = channel if self.per_channel else None
        window = self.hits.setdefault(key, deque())
        while window and window[0] <= now - self.per_seconds:
            window.popleft()
        if len(window) >= self.max_calls:
            return self.retry_after or max(1, math.ceil(window[0] + self.per_seconds - now))
        window.append(now)
        return None


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


def _check_content(params: JsonDict, *, max_text: int, update: bool = False) -> None:
    """Raise the error Slack gives for missing/oversized text, blocks or attachments."""
    text, blocks, attachments = params.get("text"), params.get("blocks"), params.get("attachments")
    if isinstance(blocks, str):
        raise _ApiError("invalid_blocks_format")
    if attachments is not None and not isinstance(attachments, list):
        raise _ApiError("invalid_attachments")
    if update:
        has_content = bool(text) or "blocks" in params or "attachments" in params
    else:
        has_content = bool(text or blocks or attachments or params.get("markdown_text"))
    if not has_content:
        raise _ApiError("no_text")
    if text is not None and len(str(text)) > max_text:
        raise _ApiError("msg_too_long")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise _ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        raise _ApiError("too_many_attachments")


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


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


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class FakeSlack:
    """A fake Slack workspace reachable over real HTTP (and WebSocket) on loopback.

    with FakeSlack() as slack:                       # or slack = FakeSlack().start()
        slack.add_channel("C0OPS", "connect-ops")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        ...                                          # drive the bot
        slack.wait_for(lambda s: s.messages("C0OPS"))
        assert slack.calls_to("chat.update")[-1].params["parse"] == "none"

    Scopes are enforced as Slack does (e.g. conversations.info needs channels:read or
    groups:read, which the default scope list lacks).
    """

    response_url_ttl: float = 30 * 60
    response_url_max_uses: int = 5
    ack_timeout: float = 3.0  # Slack shows "operation_timeout" for slower acks

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        signing_secret: str = "test-signing-secret",
        scopes: Iterable[str] = ("commands", "chat:write", "users:read", "usergroups:read"),
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T0001",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0001",
        bot_name: str = "connect-bot",
        socket_ping_interval: float | None = 20.0,
    ) -> None:
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.scopes: list[str] = list(scopes)
        self.host, self.port = host, port
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.app_id, self.bot_name = app_id, bot_name

        self.calls: list[ApiCall] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        self.interactions: list[Interaction] = []

        self._lock = threading.RLock()
        self._selections: dict[tuple[str, str, str], JsonDict] = {}
        self._clock = _TsClock()
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, JsonDict] = {}
        self._usergroups: dict[str, Usergroup] = {}
        self._top: dict[str, list[Message]] = {}
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._counter = 0

        self._rate_limits: dict[str, deque[int]] = {}
        self._failures: dict[str, deque[str]] = {}
        self._latency: dict[str | None, float] = {}
        self._windows: dict[str, _Window] = {}

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
            "apps.connections.open": (self._apps_connections_open, None),
        }

        self._http: _FakeSlackHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._socket = _SocketModeServer(self, host, socket_ping_interval)
        self.add_user(bot_user_id, bot_name, is_bot=True)

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("FakeSlack is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def start(self) -> FakeSlack:
        if self._http is not None:
            return self
        self._http = _FakeSlackHTTPServer((self.host, self.port), self)
        self.port = self._http.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
            name=f"fake-slack-http-{self.port}",
        )
        self._http_thread.start()
        log.debug("fake Slack listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._socket.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until stop() or Ctrl-C."""
        self.start()
        try:
            while self._http is not None:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ---- workspace fixtures ---------------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        bot_member: bool = True,
        is_private: bool = False,
        members: Iterable[str] = (),
        is_archived: bool = False,
    ) -> Channel:
        """Add a channel. A non-empty `members` makes postEphemeral check membership."""
        channel = Channel(channel_id, name, is_private, is_archived, bot_member, set(members))
        with self._lock:
            self._channels[channel_id] = channel
        return channel

    def channel(self, channel_id: str) -> Channel:
        return self._channels[channel_id]

    def add_user(self, user_id: str, name: str, **fields: Any) -> JsonDict:
        """Add a users.info fixture; `fields` override defaults (is_admin, deleted, is_bot,
        is_restricted, ...); email/display_name/title/status_* go into `profile`."""
        profile_keys = {"email", "display_name", "title", "phone", "status_text", "status_emoji"}
        real_name = fields.pop("real_name", name.replace(".", " ").title())
        profile = {
            "real_name": real_name,
            "display_name": name,
            "real_name_normalized": real_name,
            "display_name_normalized": name,
            "team": self.team_id,
        }
        profile.update({k: fields.pop(k) for k in list(fields) if k in profile_keys})
        profile.update(fields.pop("profile", {}))
        user: JsonDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": int(time.time()),
            "has_2fa": False,
            **fields,
        }
        with self._lock:
            self._users[user_id] = user
        return user

    def add_usergroup(
        self, group_id: str, handle: str, users: Iterable[str], *, name: str = ""
    ) -> Usergroup:
        group = Usergroup(group_id, handle, list(users), name)
        with self._lock:
            self._usergroups[group_id] = group
        return group

    def add_default_workspace(self) -> None:
        """Demo fixtures: #connect-ops (C0OPS), alice (U0ADMIN, admin), bob (U0USER),
        @connect-admins (S0ADMINS = alice)."""
        self.add_user("U0ADMIN", "alice", is_admin=True, email="alice@example.com")
        self.add_user("U0USER", "bob", email="bob@example.com")
        self.add_channel("C0OPS", "connect-ops")
        self.add_usergroup("S0ADMINS", "connect-admins", ["U0ADMIN"])

    def post_user_message(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """A message typed by a person (the bot cannot chat.update it)."""
        with self._lock:
            parent = self._thread_parent(channel, thread_ts)
            return self._store_message(
                channel, {"text": text}, parent=parent, source="user", author=user
            )

    def user_name(self, user_id: str) -> str:
        user = self._users.get(user_id)
        return user["name"] if user else user_id.lower()

    def channel_name(self, channel_id: str) -> str:
        channel = self._channels.get(channel_id)
        return channel.name if channel else "unknown-channel"

    def display_names(self) -> dict[str, str]:
        """User and channel ids -> names, for rendering."""
        with self._lock:
            names = {uid: u["name"] for uid, u in self._users.items()}
            names.update({cid: c.name for cid, c in self._channels.items()})
            names.update({gid: g.handle for gid, g in self._usergroups.items()})
        return names

    # ---- recording / queries --------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in list(self.calls) if c.method == method]

    def clear_recordings(self) -> None:
        with self._lock:
            self.calls.clear()
            self.response_url_posts.clear()
            self.interactions.clear()

    def wait_for(
        self,
        predicate: Callable[[FakeSlack], bool],
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

        def check(fake: FakeSlack) -> bool:
            for call in list(fake.calls)[start:]:
                if call.method == method and (predicate is None or predicate(call)):
                    found.append(call)
                    return True
            return False

        if self.wait_for(check, timeout):
            return found[0]
        seen = [c.method for c in list(self.calls)[start:]]
        raise TimeoutError(f"no matching {method} call within {timeout}s; calls: {seen}")

    def mark(self) -> str:
        """A fresh ts; everything that happens afterwards sorts after it (for `since=`)."""
        return self._clock.next()

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

    # ---- fault injection ------------------------------------------------------------------

    def rate_limit(self, method: str, *, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` calls to `method` get HTTP 429 + Retry-After, error ratelimited."""
        with self._lock:
            self._rate_limits.setdefault(method, deque()).extend([int(retry_after)] * count)

    def rate_limit_window(
        self,
        method: str,
        *,
        max_calls: int,
        per_seconds: float,
        retry_after: int | None = None,
        per_channel: bool = False,
    ) -> None:
        """Enforce a sliding-window limit (e.g. chat.postMessage 1/s per channel)."""
        with self._lock:
            self._windows[method] = _Window(max_calls, per_seconds, retry_after, per_channel)

    def fail(self, method: str, error: str, *, count: int = 1) -> None:
        """The next `count` calls to `method` answer 200 {"ok": false, "error": error}."""
        with self._lock:
            self._failures.setdefault(method, deque()).extend([error] * count)

    def set_latency(self, method: str | None, seconds: float) -> None:
        """Delay answers to `method` (None: every method; "response_url" for webhooks)."""
        with self._lock:
            if seconds > 0:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def clear_faults(self) -> None:
        with self._lock:
            self._rate_limits.clear()
            self._failures.clear()
            self._latency.clear()
            self._windows.clear()

    def register_method(self, name: str, handler: ApiHandler, *, scope: str | None = None) -> None:
        """Serve an extra Web API method: handler(params) -> response dict."""
        self._methods[name] = (handler, scope)

    # ---- response_url ---------------------------------------------------------------------

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
            self._response_urls[path] = _ResponseUrl(
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

    # ---- payloads Slack sends to the bot --------------------------------------------------

    def command_payload(
        self,
        text: str,
        *,
        user_id: str = "U0ADMIN",
        channel_id: str = "C0OPS",
        command: str = "/connect",
    ) -> dict[str, str]:
        """Slash-command fields (reference 1.1) with a fresh response_url."""
        label = f"{command} {text}".strip()
        response_url = self.new_response_url(channel=channel_id, user=user_id, label=label)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": self.channel_name(channel_id),
            "user_id": user_id,
            "user_name": self.user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self._trigger_id(),
        }

    def action_payload(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        value: str | None = None,
        user_id: str = "U0ADMIN",
        block_id: str | None = None,
        selected_options: Iterable[str | JsonDict] | None = None,
    ) -> JsonDict:
        """A block_actions payload (reference 2.1) for clicking an element that is really on
        the stored message (or ephemeral message) `message_ts`."""
        target, is_ephemeral = self._click_target(channel, message_ts, user_id)
        block, element = target.find_element(action_id, value=value, block_id=block_id)
        action = _action_for(block, element, selected_options, self._clock.next())
        state = self._remember_selection(channel, message_ts, user_id, action)
        response_url = self.new_response_url(
            channel=channel, user=user_id, message_ts=message_ts, ephemeral=is_ephemeral
        )
        name = self.user_name(user_id)
        container: JsonDict = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        }
        payload: JsonDict = {
            "type": "block_actions",
            "user": {"id": user_id, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channel_name(channel)},
            "state": {"values": state},
            "response_url": response_url,
            "actions": [action],
        }
        if isinstance(target, Message):  # ephemeral clicks carry no "message" (reference 2.1)
            payload["message"] = target.to_api(self.team_id)
            if target.thread_ts:
                container["thread_ts"] = target.thread_ts
        return payload

    def _remember_selection(
        self, channel: str, message_ts: str, user_id: str, action: JsonDict
    ) -> JsonDict:
        """Slack sends the current choices of a message's menus (`state.values`) with every
        click on that message, per user; a menu change itself is also an interaction."""
        with self._lock:
            values = self._selections.setdefault((channel, message_ts, user_id), {})
            if "selected_options" in action or "selected_option" in action:
                entry = {k: v for k, v in action.items() if k not in ("action_id", "block_id")}
                entry.pop("action_ts", None)
                values.setdefault(action["block_id"], {})[action["action_id"]] = entry
            return copy.deepcopy(values)

    def record_interaction(
        self, kind: str, payload: JsonDict, *, transport: str, label: str | None = None
    ) -> Interaction:
        """Log a command/click (shown by the renderer); senders fill status/elapsed later."""
        if kind == "command":
            channel, user = payload["channel_id"], payload["user_id"]
            label = label or f"{payload['command']} {payload['text']}".strip()
        else:
            channel, user = payload["channel"]["id"], payload["user"]["id"]
            label = label or _action_label(payload["actions"][0])
        item = Interaction(
            kind,
            self._clock.next(),
            channel,
            user,
            label,
            transport,
            payload,
            payload["response_url"],
        )
        with self._lock:
            self.interactions.append(item)
        return item

    # ---- Socket Mode ----------------------------------------------------------------------

    def socket_send_command(
        self,
        text: str,
        user_id: str = "U0ADMIN",
        channel_id: str = "C0OPS",
        *,
        command: str = "/connect",
    ) -> str:
        """Push a slash_commands envelope to the connected Socket Mode client."""
        payload = self.command_payload(
            text, user_id=user_id, channel_id=channel_id, command=command
        )
        interaction = self.record_interaction("command", payload, transport="socket")
        return self._socket.send_envelope(
            "slash_commands", payload, accepts_response_payload=True, interaction=interaction
        )

    def socket_send_action(self, payload: JsonDict) -> str:
        """Push an interactive (block_actions) envelope; see action_payload()."""
        interaction = self.record_interaction("click", payload, transport="socket")
        return self._socket.send_envelope(
            "interactive", payload, accepts_response_payload=False, interaction=interaction
        )

    def socket_click(self, channel: str, message_ts: str, action_id: str, **kwargs: Any) -> str:
        """action_payload(...) + socket_send_action(...)."""
        return self.socket_send_action(
            self.action_payload(channel, message_ts, action_id, **kwargs)
        )

    def socket_wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JsonDict:
        """The ack the client sent for `envelope_id`: {"envelope_id": ..., "payload": ...}."""
        return self._socket.wait_ack(envelope_id, timeout)

    def socket_connected(self, timeout: float = 5.0) -> bool:
        return self._socket.wait_connected(timeout)

    def socket_ping(self, timeout: float = 2.0) -> bool:
        """Ping every client; True when all answered with a pong."""
        return self._socket.ping(timeout)

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's "disconnect" message; clients reconnect via apps.connections.open."""
        self._socket.send_disconnect(reason)

    def socket_close_connections(self, code: int = 1001, reason: str = "") -> None:
        """Close every client connection from the server side (a WebSocket close frame).

        Tip: slack_sdk's builtin client needs up to 3 s for close() while its reader is
        blocked in recv(); disable its auto-reconnect and call this first to close fast."""
        self._socket.close_connections(code, reason)

    @property
    def socket_envelopes(self) -> list[SocketEnvelope]:
        return self._socket.envelopes()

    def _on_socket_ack(self, envelope: SocketEnvelope, interaction: Interaction | None) -> None:
        elapsed = (envelope.acked_at or time.time()) - envelope.sent_at
        if interaction is not None:
            interaction.status, interaction.elapsed = 200, elapsed
        if envelope.type == "slash_commands" and envelope.response_url:
            body = (envelope.ack or {}).get("payload")
            self.deliver_ack(envelope.response_url, body=body, elapsed=elapsed)

    # ---- HTTP entry points (called by the request handler) --------------------------------

    def _handle_api(
        self, method: str, verb: str, headers: dict[str, str], body: bytes, query: str
    ) -> tuple[int, dict[str, str], JsonDict]:
        received = time.time()
        params, parse_error = _parse_params(headers.get("content-type", ""), body, query)
        self._sleep_latency(method)
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
        failures = self._failures.get(method)
        if failures:
            return 200, extra, {"ok": False, "error": failures.popleft()}
        try:
            self._require_scope(scope)
            return 200, extra, handler(params)
        except _ApiError as e:
            return 200, extra, e.body

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

    # ---- auth, limits ---------------------------------------------------------------------

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
            raise _ApiError("missing_scope", needed=scope, provided=",".join(self.scopes))

    def _take_rate_limit(self, method: str, params: JsonDict) -> int | None:
        queued = self._rate_limits.get(method)
        if queued:
            return queued.popleft()
        window = self._windows.get(method)
        if window is None:
            return None
        return window.hit(str(params.get("channel") or ""), time.monotonic())

    def _sleep_latency(self, method: str) -> None:
        delay = self._latency.get(method, self._latency.get(None, 0.0))
        if delay > 0:
            time.sleep(delay)

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
        _check_content(params, max_text=MAX_TEXT_POST)
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
            raise _ApiError("cant_update_message")
        _check_content(params, max_text=MAX_TEXT_UPDATE, update=True)
        text = str(params["text"]) if "text" in params else msg.text
        blocks = (
            _normalize_blocks(params["blocks"] or [], self.mark())
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
            raise _ApiError("user_not_found")
        if channel.members and user not in channel.members:
            raise _ApiError("user_not_in_channel")
        _check_content(params, max_text=MAX_TEXT_POST)
        eph = self._store_ephemeral(channel.id, str(user), params, source="chat.postEphemeral")
        return {"ok": True, "message_ts": eph.ts}

    def _chat_delete(self, params: JsonDict) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"))
        msg = self._find_message(channel.id, params.get("ts"))
        if msg.bot_id != self.bot_id:
            raise _ApiError("cant_delete_message")
        msg.deleted, msg.modified = True, self.mark()
        return {"ok": True, "channel": channel.id, "ts": msg.ts}

    def _users_info(self, params: JsonDict) -> JsonDict:
        user = self._users.get(str(params.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _usergroups_users_list(self, params: JsonDict) -> JsonDict:
        group = self._usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise _ApiError("no_such_subteam")
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
            raise _ApiError("channel_not_found")  # private channels are invisible to outsiders
        self._require_scope("groups:read" if channel.is_private else "channels:read")
        data = channel.to_api(include_num_members=flag(params.get("include_num_members")))
        return {"ok": True, "channel": data}

    def _apps_connections_open(self, params: JsonDict) -> JsonDict:
        try:
            url = self._socket.issue_url()
        except ImportError:  # websockets not installed
            raise _ApiError("internal_error", detail="websockets is not installed") from None
        return {"ok": True, "url": url}

    # ---- message store helpers ------------------------------------------------------------

    def _resolve_channel(self, ref: Any, *, by_name: bool = False) -> Channel:
        ref = str(ref or "")
        channel = self._channels.get(ref)
        if channel is None and by_name:
            name = ref.removeprefix("#")
            channel = next((c for c in self._channels.values() if c.name == name), None)
        if channel is None:
            raise _ApiError("channel_not_found")
        return channel

    def _require_post_access(self, channel: Channel) -> None:
        if not channel.bot_member:
            if channel.is_private:
                raise _ApiError("channel_not_found")
            if "chat:write.public" not in self.scopes:
                raise _ApiError("not_in_channel")
        if channel.is_archived:
            raise _ApiError("is_archived")

    def _thread_parent(self, channel: str, thread_ts: Any) -> Message | None:
        if not thread_ts:
            return None
        msg = self._by_ts.get((channel, str(thread_ts)))
        if msg is None or msg.deleted:
            raise _ApiError("thread_not_found")
        if msg.is_reply:  # replying to a reply lands in the same thread
            msg = self._by_ts[(channel, str(msg.thread_ts))]
        return msg

    def _find_message(self, channel: str, ts: Any) -> Message:
        msg = self._by_ts.get((channel, str(ts or "")))
        if msg is None or msg.deleted:
            raise _ApiError("message_not_found")  # ephemeral ts included: can't be updated
        return msg

    def _store_message(
        self,
        channel: str,
        content: JsonDict,
        *,
        parent: Message | None,
        source: str,
        author: str | None = None,
    ) -> Message:
        ts = self._clock.next()
        by_bot = author is None
        msg = Message(
            channel=channel,
            ts=ts,
            text=str(content.get("text") or ""),
            blocks=_normalize_blocks(content.get("blocks") or [], ts),
            attachments=list(content.get("attachments") or []),
            thread_ts=parent.ts if parent else None,
            bot_id=self.bot_id if by_bot else None,
            source=source,
            parse=str(content.get("parse") or "none"),
            mrkdwn=flag(content.get("mrkdwn", True)),
            user=self.bot_user_id if by_bot else author,
            username=content.get("username"),
            app_id=self.app_id if by_bot else None,
            reply_broadcast=parent is not None and flag(content.get("reply_broadcast")),
            metadata=content.get("metadata") if isinstance(content.get("metadata"), dict) else None,
        )
        self._by_ts[(channel, ts)] = msg
        if parent is not None:
            parent.replies.append(msg)
        else:
            self._top.setdefault(channel, []).append(msg)
        return msg

    def _store_ephemeral(
        self, channel: str, user: str, content: JsonDict, *, source: str, bot: bool = True
    ) -> Ephemeral:
        ts = self._clock.next()
        eph = Ephemeral(
            channel=channel,
            ts=ts,
            user=user,
            text=str(content.get("text") or ""),
            blocks=_normalize_blocks(content.get("blocks") or [], ts),
            attachments=list(content.get("attachments") or []),
            thread_ts=str(content["thread_ts"]) if content.get("thread_ts") else None,
            bot_id=self.bot_id if bot else None,
            source=source,
            parse=str(content.get("parse") or "none"),
            mrkdwn=flag(content.get("mrkdwn", True)),
        )
        self._ephemerals.append(eph)
        return eph

    def _find_ephemeral(self, channel: str, ts: str | None) -> Ephemeral | None:
        return next(
            (e for e in self._ephemerals if e.channel == channel and e.ts == ts and not e.deleted),
            None,
        )

    def _click_target(self, channel: str, ts: str, user: str) -> tuple[Message | Ephemeral, bool]:
        with self._lock:
            msg = self._by_ts.get((channel, ts))
            if msg is not None and not msg.deleted:
                return msg, False
            eph = self._find_ephemeral(channel, ts)
        if eph is None:
            raise LookupError(f"no message or ephemeral message {ts} in {channel}")
        if eph.user != user:
            raise LookupError(f"ephemeral message {ts} is only visible to {eph.user}, not {user}")
        return eph, True

    def _trigger_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"{self._counter}.{int(time.time())}.{uuid.uuid4().hex[:32]}"

    # ---- response_url helpers -------------------------------------------------------------

    def _hook_state(self, url: str) -> _ResponseUrl:
        state = self._response_urls.get(urlsplit(url).path)
        if state is None:
            raise KeyError(f"unknown response_url {url}")
        return state

    def _post_to_hook(
        self, state: _ResponseUrl, payload: Any, *, via: str, count_use: bool
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

    def _check_hook_usable(self, state: _ResponseUrl) -> None:
        if state.expired or time.time() - state.created > self.response_url_ttl:
            raise _HookError(404, "expired_url")
        if state.uses >= self.response_url_max_uses:
            raise _HookError(404, "used_url")

    def _hook_original(self, state: _ResponseUrl) -> Message | Ephemeral | None:
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

    def _apply_hook(self, state: _ResponseUrl, body: JsonDict) -> tuple[str, str | None]:
        if flag(body.get("delete_original")):
            target = self._hook_original(state)
            if target is None:
                raise _HookError(404, "message_not_found")
            target.deleted, target.modified = True, self.mark()
            return "delete_original", target.ts
        try:
            _check_content(body, max_text=MAX_TEXT_POST)
        except _ApiError as e:
            raise _HookError(400, e.body["error"]) from None
        if flag(body.get("replace_original")):
            target = self._hook_original(state)
            if target is not None:
                blocks = _normalize_blocks(body.get("blocks") or [], self.mark())
                target._replace(str(body.get("text") or ""), blocks, self.mark())
                target.parse = "none"
                return "replace_original", target.ts
            if state.kind == "actions":
                raise _HookError(404, "message_not_found")
        if body.get("response_type") == "in_channel":
            try:
                parent = self._thread_parent(state.channel, body.get("thread_ts"))
            except _ApiError as e:
                raise _HookError(400, e.body["error"]) from None
            msg = self._store_message(state.channel, body, parent=parent, source="response_url")
            state.last_ts, state.last_ephemeral = msg.ts, False
            return "in_channel", msg.ts
        eph = self._store_ephemeral(state.channel, state.user, body, source="response_url")
        state.last_ts, state.last_ephemeral = eph.ts, True
        return "ephemeral", eph.ts

    def _slack_error(self, state: _ResponseUrl, error: str) -> None:
        text = f'{state.label or "Your command"} failed with the error "{error}"'
        self._store_ephemeral(state.channel, state.user, {"text": text}, source="slack", bot=False)


def _pick_options(element: JsonDict, wanted: Iterable[str | JsonDict] | None) -> list[JsonDict]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options", [])
    picked = []
    for item in wanted or []:
        value = item.get("value") if isinstance(item, dict) else item
        match = next((o for o in options if o.get("value") == value), None)
        if match is None:
            raise LookupError(f"option {value!r} not in {[o.get('value') for o in options]}")
        picked.append(copy.deepcopy(match))
    return picked


def _action_for(
    block: JsonDict, el: JsonDict, selected: Iterable[str | JsonDict] | None, action_ts: str
) -> JsonDict:
    """The `actions[0]` entry Slack sends for interacting with `el`."""
    kind = el["type"]
    action: JsonDict = {
        "action_id": el["action_id"],
        "block_id": block["block_id"],
        "type": kind,
        "action_ts": action_ts,
    }
    if kind == "button":
        action["text"] = copy.deepcopy(el["text"])
        for key in ("value", "style", "url"):
            if key in el:
                action[key] = el[key]
    elif kind in SINGLE_OPTION_ELEMENTS:
        picked = _pick_options(el, selected)
        if len(picked) != 1:
            raise LookupError(f"{kind} needs exactly one selected option")
        action["selected_option"] = picked[0]
    elif kind in MULTI_OPTION_ELEMENTS:
        action["selected_options"] = _pick_options(el, selected)
    elif kind in VALUE_ELEMENTS:
        values = list(selected or [])
        if len(values) != 1:
            raise LookupError(f"{kind} needs exactly one selected value")
        action[VALUE_ELEMENTS[kind]] = values[0]
    else:
        raise LookupError(f"clicking a {kind} element is not supported")
    if "placeholder" in el:
        action["placeholder"] = copy.deepcopy(el["placeholder"])
    return action


def _action_label(action: JsonDict) -> str:
    if action.get("type") == "button":
        return f"[ {action['text']['text']} ]"
    option = action.get("selected_option")
    if option:
        return f"[ {option['text']['text']} ]"
    return f"[ {action.get('action_id')} ]"


# --------------------------------------------------------------------------------------------
# Socket Mode
# --------------------------------------------------------------------------------------------


class _SocketModeServer:
    """WebSocket endpoint speaking Slack's Socket Mode envelope protocol.

    Compatible with slack_sdk's builtin client: it sends a plain HTTP/1.1 upgrade (Host without
    port, no extensions offered), masked text frames, and pings with "<session>:<time>" text
    payloads it expects echoed back. websockets answers pings automatically and sends
    unmasked frames, which that client parses.
    """

    def __init__(self, fake: FakeSlack, host: str, ping_interval: float | None) -> None:
        self._fake, self._host, self._ping_interval = fake, host, ping_interval
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._tickets: set[str] = set()
        self._connections: list[Any] = []
        self._draining: list[Any] = []  # sent "disconnect"; closed when the client reconnects
        self._envelopes: dict[str, SocketEnvelope] = {}
        self._interactions: dict[str, Interaction] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self.received: list[JsonDict] = []

    def start(self) -> None:
        with self._cond:
            if self._server is not None:
                return
            # Lazy import: the HTTP fake works without the websockets package.
            from websockets.sync.server import serve

            self._stopping.clear()
            self._server = serve(
                self._handle,
                self._host,
                0,
                compression=None,
                ping_interval=self._ping_interval,
                close_timeout=0.5,  # slack_sdk's builtin client never answers close frames
            )
            self._port = self._server.socket.getsockname()[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, daemon=True, name=f"fake-slack-ws-{self._port}"
            )
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def issue_url(self) -> str:
        self.start()
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://{self._host}:{self._port}/link/?ticket={ticket}&app_id={self._fake.app_id}"

    def _handle(self, conn: Any) -> None:
        query = parse_qs(urlsplit(conn.request.path).query)
        if query.get("ticket", [""])[0] not in self._tickets:
            conn.close(code=1008, reason="invalid ticket")
            return
        with self._cond:
            num = len(self._connections) + 1
        conn.send(json.dumps(self._hello(num)))
        with self._cond:
            self._connections.append(conn)
            # Slack ends a connection it sent "disconnect" on once the refresh is done.
            draining, self._draining = self._draining, []
            self._cond.notify_all()
        for old in draining:
            _close_soon(old, 1000, "refreshed")
        try:
            self._read_loop(conn)
        finally:
            with self._cond:
                self._connections.remove(conn)
                self._cond.notify_all()

    def _hello(self, num_connections: int) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self._fake.app_id},
        }

    def _read_loop(self, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        # Polling recv() lets the thread end when the fake stops or the interpreter exits
        # (websockets' handler threads are not daemons).
        while not self._stopping.is_set() and threading.main_thread().is_alive():
            try:
                raw = conn.recv(timeout=0.25)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            self._on_client_message(raw)

    def _on_client_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("socket mode: non-JSON message from client: %r", raw)
            return
        with self._cond:
            self.received.append(message)
            envelope = self._envelopes.get(str(message.get("envelope_id")))
            if envelope is None or envelope.ack is not None:
                return
            envelope.ack, envelope.acked_at = message, time.time()
            interaction = self._interactions.get(envelope.envelope_id)
            self._cond.notify_all()
        self._fake._on_socket_ack(envelope, interaction)

    def send_envelope(
        self,
        kind: str,
        payload: JsonDict,
        *,
        accepts_response_payload: bool,
        interaction: Interaction | None = None,
    ) -> str:
        envelope_id = str(uuid.uuid4())
        message = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        with self._cond:
            if not self._connections:
                raise RuntimeError("no Socket Mode client is connected")
            conn = self._connections[-1]
            self._envelopes[envelope_id] = SocketEnvelope(
                envelope_id, kind, payload, time.time(), payload.get("response_url")
            )
            if interaction is not None:
                self._interactions[envelope_id] = interaction
        conn.send(json.dumps(message))
        return envelope_id

    def send_disconnect(self, reason: str) -> None:
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        with self._cond:
            connections = list(self._connections)
            self._draining += connections
        for conn in connections:
            conn.send(json.dumps(message))

    def close_connections(self, code: int, reason: str) -> None:
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            _close_soon(conn, code, reason)

    def wait_ack(self, envelope_id: str, timeout: float) -> JsonDict:
        with self._cond:
            envelope = self._envelopes.get(envelope_id)
            if envelope is None:
                raise KeyError(f"unknown envelope {envelope_id}")
            if not self._cond.wait_for(lambda: envelope.ack is not None, timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s")
            return dict(envelope.ack or {})

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._connections), timeout)

    def ping(self, timeout: float) -> bool:
        with self._cond:
            connections = list(self._connections)
        if not connections:
            return False
        pongs = [conn.ping() for conn in connections]
        return all(pong.wait(timeout) for pong in pongs)

    def envelopes(self) -> list[SocketEnvelope]:
        with self._cond:
            return list(self._envelopes.values())


def _close_soon(conn: Any, code: int, reason: str) -> None:
    """Send a close frame without blocking: close() waits for the peer's close frame, which
    slack_sdk's builtin client never sends."""
    threading.Thread(target=conn.close, args=(code, reason), daemon=True).start()


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _FakeSlackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _FakeSlackHTTPServer
    server_version = "FakeSlack/1.0"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def _dispatch(self, verb: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if parts.path.startswith("/api/"):
                status, extra, data = fake._handle_api(
                    parts.path[5:], verb, headers, body, parts.query
                )
                self._reply(
                    status, json.dumps(data).encode(), "application/json; charset=utf-8", extra
                )
            elif verb == "POST" and parts.path.startswith(("/commands/", "/actions/")):
                status, answer = fake._handle_response_url(parts.path, body)
                self._reply(status, answer.encode(), "text/plain; charset=utf-8")
            elif verb == "GET" and parts.path == "/_fake/state":
                self._reply(
                    200, json.dumps(fake.snapshot()).encode(), "application/json; charset=utf-8"
                )
            else:
                self._reply(404, b"not_found", "text/plain; charset=utf-8")
        except Exception:
            log.exception("fake Slack failed on %s %s", verb, self.path)
            error = json.dumps({"ok": False, "error": "internal_error"}).encode()
            self._reply(500, error, "application/json; charset=utf-8")

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _pair(value: str) -> tuple[str, str]:
    ident, sep, name = value.partition(":")
    if not sep or not ident or not name:
        raise argparse.ArgumentTypeError(f"expected ID:NAME, got {value!r}")
    return ident, name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a fake Slack Web API for connect-bot.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bot-token", default="xoxb-test-token")
    parser.add_argument("--app-token", default="xapp-test-token")
    parser.add_argument("--signing-secret", default="test-signing-secret")
    parser.add_argument("--defaults", action="store_true", help="add #connect-ops, alice, bob")
    parser.add_argument("--channel", type=_pair, action="append", default=[], metavar="ID:NAME")
    parser.add_argument("--user", type=_pair, action="append", default=[], metavar="ID:NAME")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every call")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    fake = FakeSlack(
        bot_token=args.bot_token,
        app_token=args.app_token,
        signing_secret=args.signing_secret,
        host=args.host,
        port=args.port,
    )
    if args.defaults:
        fake.add_default_workspace()
    for channel_id, name in args.channel:
        fake.add_channel(channel_id, name)
    for user_id, name in args.user:
        fake.add_user(user_id, name)
    fake.start()
    print(f"SLACK_API_URL={fake.api_url}")
    print(f"SLACK_BOT_TOKEN={fake.bot_token}")
    print(f"SLACK_APP_TOKEN={fake.app_token}")
    print(f"SLACK_SIGNING_SECRET={fake.signing_secret}")
    print(f"# state: {fake.url}/_fake/state  (Ctrl-C to stop)", flush=True)
    fake.serve_forever()


if __name__ == "__main__":
    main()
