"""Who may do what. Deny by default for destructive acts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

GroupResolver = Callable[[str], Iterable[str]]
ChannelResolver = Callable[[str], Iterable[str]]  # a channel's members (conversations.members)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOWED = Decision(True)

NOT_CONFIGURED = Decision(
    False,
    "No one is allowed to change Connect from Slack yet. An operator must set "
    "BOT_ADMIN_USERS (Slack user IDs) or BOT_ADMIN_GROUPS (user group IDs).",
)
NOT_ADMIN = Decision(
    False,
    "Only connect-bot administrators can do this (BOT_ADMIN_USERS or a user group "
    "in BOT_ADMIN_GROUPS). Ask one of them, or ask an operator to add you.",
)
GROUPS_UNKNOWN = Decision(
    False,
    "Slack could not be asked who is in the admin user group(s) (BOT_ADMIN_GROUPS), "
    "so nothing was changed. Try again in a minute, or ask an operator.",
)


@dataclass(slots=True)
class _Members:
    """What is known of one user group's or channel's members: the last good answer and the
    last failed lookup."""

    lock: threading.Lock
    members: frozenset[str] | None = None
    fetched_at: float = 0.0
    failed_at: float | None = None


class Authorizer:
    """Checks channel limits (pure), admin rights (users, or members of user groups), and who
    may see Connect data on App Home (admins, and members of BOT_ALLOWED_CHANNELS when set).

    Group membership comes from `resolve_group` (Slack's usergroups.users.list, a Tier 2
    method), channel membership from `resolve_channel` (conversations.members, paged), both
    cached for `group_ttl` seconds. Fails closed: when a lookup fails, the last answer is used
    only while it is younger than `max_stale` seconds; after that (or with no answer at all)
    members are refused until Slack answers again. After a failure the lookup is not retried
    for `retry_after` seconds, so an outage is not hammered.
    """

    def __init__(
        self,
        *,
        admin_users: Iterable[str] = (),
        admin_groups: Iterable[str] = (),
        allowed_channels: Iterable[str] = (),
        resolve_group: GroupResolver | None = None,
        resolve_channel: ChannelResolver | None = None,
        group_ttl: float = 60.0,
        max_stale: float = 300.0,
        retry_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admin_users = frozenset(admin_users)
        self.admin_groups = tuple(admin_groups)
        self.allowed_channels = frozenset(allowed_channels)
        self._resolvers: dict[str, GroupResolver | None] = {
            "user group": resolve_group,
            "channel": resolve_channel,
        }
        self._ttl = group_ttl
        self._max_stale = max_stale
        self._retry_after = retry_after
        self._clock = clock
        self._known: dict[tuple[str, str], _Members] = {}
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

    def admin_in(self, user_id: str, channel_id: str) -> Decision:
        """Whether `user_id` is an administrator acting in an allowed channel: what deleting,
        planning, scheduling, cancelling and the audit view ask for."""
        in_channel = self.channel(channel_id)
        if not in_channel.allowed:
            return in_channel
        return self.admin(user_id)

    def admin(self, user_id: str) -> Decision:
        """Whether `user_id` is a connect-bot administrator, wherever they are (App Home has no
        channel). Fails closed when Slack cannot say who is in the admin groups."""
        if not self.configured:
            return NOT_CONFIGURED
        if user_id in self.admin_users:
            return ALLOWED
        unknown = False
        for group_id in self.admin_groups:
            members = self._members("user group", group_id)
            if members is None:
                unknown = True
            elif user_id in members:
                return ALLOWED
        return GROUPS_UNKNOWN if unknown else NOT_ADMIN

    def home(self, user_id: str) -> Decision:
        """Whether `user_id` may see Connect data on App Home (server URLs, caches, rebuilds,
        schedules) and use its buttons. Anyone when BOT_ALLOWED_CHANNELS is not set; otherwise
        connect-bot administrators and members of those channels: Home has no channel, so the
        channels' doors are its doors. Fails closed when Slack cannot say who is a member."""
        if not self.allowed_channels or self.admin(user_id).allowed:
            return ALLOWED
        unknown = False
        for channel_id in sorted(self.allowed_channels):
            members = self._members("channel", channel_id)
            if members is None:
                unknown = True
            elif user_id in members:
                return ALLOWED
        channels = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
        reason = (
            f"connect-bot shows Posit Connect here to members of {channels} and connect-bot"
            f" administrators: ask in {channels}."
        )
        if unknown:
            reason += " (Slack could not say who is in those channels just now.)"
        return Decision(False, reason)

    def _members(self, kind: str, key: str) -> frozenset[str] | None:
        """The members of user group or channel `key`, or None when Slack could not say and the
        last answer is too old."""
        resolve = self._resolvers[kind]
        if resolve is None:
            return frozenset()
        with self._lock:
            group = self._known.setdefault((kind, key), _Members(threading.Lock()))
        # One lookup per group or channel at a time: callers waiting here then see its answer
        # (or its failure, and back off) instead of asking Slack again.
        with group.lock:
            now = self._clock()
            age = now - group.fetched_at
            if group.members is not None and age < self._ttl:
                return group.members
            backing_off = group.failed_at is not None and now - group.failed_at < self._retry_after
            if not backing_off:
                try:
                    members = frozenset(resolve(key))
                except Exception as exc:  # a Slack outage must neither grant nor crash
                    group.failed_at = now
                    log.warning(
                        "could not look up the members of %s %s: %s; %s",
                        kind,
                        key,
                        _describe(exc),
                        "using the last answer" if self._usable(group, now) else "refusing",
                    )
                else:
                    group.members, group.fetched_at, group.failed_at = members, now, None
                    return members
            return group.members if self._usable(group, now) else None

    def _usable(self, group: _Members, now: float) -> bool:
        return group.members is not None and now - group.fetched_at < self._max_stale


def _describe(exc: Exception) -> str:
    """The kind of failure, never its text: Slack errors carry the request and its headers."""
    response = getattr(exc, "response", None)
    error = None
    if response is not None:
        try:
            error = response.get("error")
        except Exception:
            error = None
    if isinstance(error, str) and error.isascii() and len(error) < 60:
        return f"{type(exc).__name__} ({error})"
    return type(exc).__name__
