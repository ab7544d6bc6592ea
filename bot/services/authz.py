"""Who may do what. Deny by default for destructive acts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

GroupResolver = Callable[[str], Iterable[str]]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOWED = Decision(True)


class Authorizer:
    """Checks channel limits (pure) and admin rights (users, or members of user groups).

    Group membership comes from `resolve_group` (Slack's usergroups.users.list, a Tier 2
    method), cached for `group_ttl` seconds; a failed lookup keeps the last good answer.
    """

    def __init__(
        self,
        *,
        admin_users: Iterable[str] = (),
        admin_groups: Iterable[str] = (),
        allowed_channels: Iterable[str] = (),
        resolve_group: GroupResolver | None = None,
        group_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admin_users = frozenset(admin_users)
        self.admin_groups = tuple(admin_groups)
        self.allowed_channels = frozenset(allowed_channels)
        self._resolve_group = resolve_group
        self._ttl = group_ttl
        self._clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.admin_users or self.admin_groups)

    def channel(self, channel_id: str) -> Decision:
        if not self.allowed_channels or channel_id in self.allowed_channels:
            return ALLOWED
        return Decision(
            False,
            "connect-bot is not enabled in this channel. Use it in "
            + ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
            + " (set by BOT_ALLOWED_CHANNELS).",
        )

    def read(self, user_id: str, channel_id: str) -> Decision:
        return self.channel(channel_id)

    def destroy(self, user_id: str, channel_id: str) -> Decision:
        in_channel = self.channel(channel_id)
        if not in_channel.allowed:
            return in_channel
        if not self.configured:
            return Decision(
                False,
                "No one is allowed to change Connect from Slack yet. An operator must set "
                "BOT_ADMIN_USERS (Slack user IDs) or BOT_ADMIN_GROUPS (user group IDs).",
            )
        if user_id in self.admin_users or self._in_admin_group(user_id):
            return ALLOWED
        return Decision(
            False,
            "Only connect-bot administrators can do this (BOT_ADMIN_USERS or a user group "
            "in BOT_ADMIN_GROUPS). Ask one of them, or ask an operator to add you.",
        )

    def _in_admin_group(self, user_id: str) -> bool:
        return any(user_id in self._members(group) for group in self.admin_groups)

    def _members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._groups.get(group_id)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        if self._resolve_group is None:
            return frozenset()
        try:
            members = frozenset(self._resolve_group(group_id))
        except Exception as exc:  # a Slack outage must not grant or crash; keep the last answer
            log.warning("could not resolve user group %s: %s", group_id, exc)
            return cached[1] if cached else frozenset()
        with self._lock:
            self._groups[group_id] = (now, members)
        return members
