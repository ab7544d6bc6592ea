"""The records the fake keeps: API calls, channel and ephemeral messages, channels,
usergroups, response_url uses, interactions and Socket Mode envelopes."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from sim.slack.blocks import (
    BARE_BROADCAST,
    MENTION,
    TEXT_TYPES,
    interactive_elements,
    mrkdwn_strings,
)
from sim.slack.common import JsonDict


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
        texts = [self.text, *mrkdwn_strings(self.blocks)]
        found = [m.group(1) for text in texts for m in MENTION.finditer(text)]
        if self.parse in ("full", "client"):  # bare @channel is linkified in these modes
            found += [f"!{m.group(1)}" for text in texts for m in BARE_BROADCAST.finditer(text)]
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
class ResponseUrlState:
    """A response_url the fake issued, and what has been done through it."""

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
