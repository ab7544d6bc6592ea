"""People and direct messages: ``users.lookupByEmail`` and ``conversations.open`` (1:1 DMs),
with the DM channels kept so tests can read what each person was sent.

Shapes follow shared/reference/slack-platform-2.md §5-6: lookupByEmail answers the users.info
``user`` object or ``users_not_found`` (scope users:read.email); conversations.open answers
``{"ok": true, "channel": {"id": "D…"}}``, and for a DM already open ``no_op`` /
``already_open`` with the full IM object (scope im:write). A deactivated account is still
found by email (``deleted: true``) but cannot be messaged (``user_disabled``); bots answer
``cannot_dm_bot``. The bot may post to the DM channel (chat.postMessage with the D… id).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.slack.common import ApiError, ApiHandler, JsonDict, flag
from sim.slack.model import Channel, Message
from sim.slack.workspace import Workspace

MAX_GROUP_USERS = 8


@dataclass
class ImChannel(Channel):
    """The bot's direct-message channel with one person."""

    user: str = ""

    def to_api(self, *, include_num_members: bool = False) -> JsonDict:
        return {
            "id": self.id,
            "created": self.created,
            "is_im": True,
            "is_org_shared": False,
            "user": self.user,
            "is_user_deleted": False,
            "priority": 0,
        }


class UsersApiMixin(Workspace):
    """users.lookupByEmail, conversations.open, and the DM queries of FakeSlack."""

    scopes: list[str]

    if TYPE_CHECKING:  # provided by WebApiMixin

        def register_method(
            self, name: str, handler: ApiHandler, *, scope: str | None = None
        ) -> None: ...

        def _require_scope(self, scope: str | None) -> None: ...

    def _init_users_api(self) -> None:
        self._ims: dict[str, str] = {}  # user id -> DM channel id
        self.register_method(
            "users.lookupByEmail", self._users_lookup_by_email, scope="users:read.email"
        )
        self.register_method("conversations.open", self._conversations_open, scope="im:write")

    # ---- Web API methods ------------------------------------------------------------------

    def _users_lookup_by_email(self, params: JsonDict) -> JsonDict:
        email = str(params.get("email") or "").strip().lower()
        if not email:
            raise ApiError("invalid_arguments")
        user = next(
            (
                u
                for u in self._users.values()
                if str(u.get("profile", {}).get("email") or "").strip().lower() == email
            ),
            None,
        )
        if user is None:
            raise ApiError("users_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _conversations_open(self, params: JsonDict) -> JsonDict:
        if params.get("channel"):
            channel = self._channels.get(str(params["channel"]))
            if not isinstance(channel, ImChannel):
                raise ApiError("channel_not_found")
            return {"ok": True, "no_op": True, "already_open": True, "channel": channel.to_api()}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > MAX_GROUP_USERS:
            raise ApiError("too_many_users")
        if len(users) > 1:
            self._require_scope("mpim:write")
            raise ApiError("not_supported", detail="the fake opens 1:1 DMs only")
        user_id = users[0]
        user = self._users.get(user_id)
        if user is None:
            raise ApiError("user_not_found")
        if user.get("deleted"):
            raise ApiError("user_disabled")
        if user.get("is_bot"):
            raise ApiError("cannot_dm_bot")
        existing = self._ims.get(user_id)
        if existing is not None:
            channel = self._channels[existing]
            return {"ok": True, "no_op": True, "already_open": True, "channel": channel.to_api()}
        self._counter += 1
        channel = ImChannel(
            f"D{self._counter:04d}{user_id[-6:]}", "", created=int(time.time()), user=user_id
        )
        self._channels[channel.id] = channel
        self._ims[user_id] = channel.id
        if flag(params.get("return_im")):
            return {"ok": True, "channel": channel.to_api()}
        return {"ok": True, "channel": {"id": channel.id}}

    # ---- queries for tests ----------------------------------------------------------------

    def dm_channel(self, user_id: str) -> str | None:
        """The id of the bot's DM channel with `user_id`, once conversations.open made it."""
        with self._lock:
            return self._ims.get(user_id)

    def direct_messages(self, user_id: str) -> list[Message]:
        """What the bot sent `user_id` in their DM, oldest first."""
        with self._lock:
            channel = self._ims.get(user_id)
            return list(self._top.get(channel, [])) if channel else []

    def dm_recipients(self) -> dict[str, int]:
        """Every person the bot has written to by DM, with how many messages each got."""
        with self._lock:
            return {user: len(self._top.get(channel, [])) for user, channel in self._ims.items()}
