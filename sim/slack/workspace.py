"""The workspace itself: identity, channels, users, usergroups, the message store and the
recordings, shared (under one lock) by every other part of the fake."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from sim.slack.blocks import normalize_blocks
from sim.slack.common import ApiError, JsonDict, TsClock, flag
from sim.slack.model import (
    ApiCall,
    Channel,
    Ephemeral,
    Interaction,
    Message,
    ResponseUrlPost,
    Usergroup,
)


class Workspace:
    """State of one fake workspace; the base every FakeSlack part builds on."""

    def _init_workspace(
        self, *, team_id: str, bot_user_id: str, bot_id: str, app_id: str, bot_name: str
    ) -> None:
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.app_id, self.bot_name = app_id, bot_name

        self.calls: list[ApiCall] = []
        # Methods of calls as they arrive, before any injected latency: a test can tell a call
        # held in flight (arrived, not yet in `calls`) from one never made.
        self.arrivals: list[str] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        self.interactions: list[Interaction] = []

        self._lock = threading.RLock()
        self._clock = TsClock()
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, JsonDict] = {}
        self._usergroups: dict[str, Usergroup] = {}
        self._top: dict[str, list[Message]] = {}
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._counter = 0  # ids in response_urls and trigger_ids

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

    def add_user(
        self, user_id: str, name: str, *, email: str | None = None, **fields: Any
    ) -> JsonDict:
        """Add a users.info fixture; `fields` override defaults (is_admin, deleted, is_bot,
        is_restricted, ...); email/display_name/title/status_* go into `profile` (`email` is
        what users.lookupByEmail finds)."""
        if email is not None:
            fields["email"] = email
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

    def mark(self) -> str:
        """A fresh ts; everything that happens afterwards sorts after it (for `since=`)."""
        return self._clock.next()

    # ---- message store --------------------------------------------------------------------

    def _thread_parent(self, channel: str, thread_ts: Any) -> Message | None:
        if not thread_ts:
            return None
        msg = self._by_ts.get((channel, str(thread_ts)))
        if msg is None or msg.deleted:
            raise ApiError("thread_not_found")
        if msg.is_reply:  # replying to a reply lands in the same thread
            msg = self._by_ts[(channel, str(msg.thread_ts))]
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
            blocks=normalize_blocks(content.get("blocks") or [], ts),
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
            blocks=normalize_blocks(content.get("blocks") or [], ts),
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
