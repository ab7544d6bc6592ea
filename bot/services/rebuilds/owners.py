"""Who should hear about a rebuild's failed items: each item's Connect owner, found in chat.

The chain, once per owner: the item's `owner_guid` (kept at planning) -> Connect
`GET v1/users/{guid}` (username and email) -> the chat directory's lookup by that email (Slack's
`users.lookupByEmail`, behind `Directory`: services know nothing of Slack). The answers of one
rebuild are kept in an `OwnerLookups`, which the caller holds for the rebuild (the reporter
stores it in the rebuild's progress flags, so a restart asks nobody again and tells the same
story). An owner who cannot be found, whatever the reason, is `OwnerMissing` with that reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from bot.connect import ConnectClient, ConnectError
from bot.services.rebuilds.store import ItemView

log = logging.getLogger(__name__)

# Why an owner gets no direct message.
Reason = Literal[
    "no_account",  # no (active, human) chat account has their Connect email
    "no_email",  # Connect shows no email for them (HideEmailAddresses, or none set)
    "unknown_user",  # Connect has no such user any more
    "connect_error",  # Connect could not be asked
    "lookup_error",  # the chat directory could not be asked
]
REASONS: tuple[str, ...] = get_args(Reason)


class DirectoryError(Exception):
    """The directory could not answer (an error, not "nobody has this email")."""


class Directory(Protocol):
    """The chat workspace's people, by email (implemented by the Slack layer)."""

    def user_by_email(self, email: str) -> str | None:
        """The chat user id of the person with this email; None when there is no such person
        (or their account cannot receive messages). Raises DirectoryError on a failed lookup."""
        ...


@dataclass(frozen=True, slots=True)
class Lookup:
    """What is known of one owner: a chat user id, or why there is none."""

    guid: str
    username: str = ""
    user_id: str | None = None
    reason: Reason | None = None
    detail: str = ""  # a short technical reason (an error code), for lookup failures

    def to_json(self) -> dict[str, str]:
        data = {"username": self.username}
        if self.user_id:
            data["user_id"] = self.user_id
        if self.reason:
            data["reason"] = self.reason
        if self.detail:
            data["detail"] = self.detail
        return data

    @classmethod
    def from_json(cls, guid: str, data: Mapping[str, Any]) -> Lookup:
        reason = data.get("reason")
        user_id = data.get("user_id")
        return cls(
            guid=guid,
            username=str(data.get("username") or ""),
            user_id=str(user_id) if user_id else None,
            reason=reason if reason in REASONS else (None if user_id else "lookup_error"),
            detail=str(data.get("detail") or ""),
        )


class OwnerLookups:
    """One rebuild's answers, by owner GUID: each owner is looked up at most once. Plain JSON
    in and out (`from_json`, `to_json`), so it can live in the rebuild's progress flags."""

    def __init__(self, known: Iterable[Lookup] = ()) -> None:
        self._by_guid: dict[str, Lookup] = {lookup.guid: lookup for lookup in known}
        self._by_email: dict[str, str | None] = {}  # directory answers, this process only
        self.changed = False  # something was looked up since `from_json`

    @classmethod
    def from_json(cls, data: object) -> OwnerLookups:
        if not isinstance(data, dict):
            return cls()
        return cls(
            Lookup.from_json(str(guid), value)
            for guid, value in data.items()
            if isinstance(value, dict)
        )

    def to_json(self) -> dict[str, dict[str, str]]:
        return {guid: lookup.to_json() for guid, lookup in self._by_guid.items()}

    def get(self, guid: str) -> Lookup | None:
        return self._by_guid.get(guid)

    def put(self, lookup: Lookup) -> None:
        self._by_guid[lookup.guid] = lookup
        self.changed = True

    def by_email(self, email: str, ask: Callable[[str], str | None]) -> str | None:
        """The directory's answer for `email`, asked once (owners may share an address)."""
        key = email.strip().lower()
        if key not in self._by_email:
            self._by_email[key] = ask(email)
        return self._by_email[key]

    def __len__(self) -> int:
        return len(self._by_guid)


@dataclass(frozen=True, slots=True)
class OwnerFound:
    """An owner to tell directly, with their failed items (and nobody else's)."""

    guid: str
    username: str
    user_id: str
    items: tuple[ItemView, ...]


@dataclass(frozen=True, slots=True)
class OwnerMissing:
    """An owner who cannot be told directly: named in the thread instead, with the reason."""

    guid: str
    username: str  # "" when Connect could not tell it
    reason: Reason
    detail: str
    items: tuple[ItemView, ...]


@dataclass(frozen=True, slots=True)
class OwnersOutcome:
    found: tuple[OwnerFound, ...] = ()
    missing: tuple[OwnerMissing, ...] = ()
    unowned: tuple[ItemView, ...] = field(default=())  # items with no owner on record

    @property
    def empty(self) -> bool:
        return not (self.found or self.missing)


class Owners:
    """The owner lookup chain: `resolve` groups failed items by owner and finds each owner."""

    def __init__(
        self, client_for: Callable[[str | None], ConnectClient], directory: Directory
    ) -> None:
        self.client_for = client_for  # a server's name -> its Connect client (`Servers.client`)
        self.directory = directory

    def resolve(
        self,
        server: str | None,
        items: Iterable[ItemView],
        lookups: OwnerLookups | None = None,
    ) -> OwnersOutcome:
        """The owners of `items` (failed items of one rebuild on `server`), found or not.
        Owners already in `lookups` are not asked again; new answers are added to it."""
        lookups = lookups if lookups is not None else OwnerLookups()
        by_owner: dict[str, list[ItemView]] = {}
        unowned: list[ItemView] = []
        for item in items:
            if item.owner_guid:
                by_owner.setdefault(item.owner_guid, []).append(item)
            else:
                unowned.append(item)
        found: list[OwnerFound] = []
        missing: list[OwnerMissing] = []
        for guid, owned in by_owner.items():
            lookup = lookups.get(guid)
            if lookup is None:
                lookup = self._look_up(server, guid, lookups)
                lookups.put(lookup)
            if lookup.user_id:
                found.append(OwnerFound(guid, lookup.username, lookup.user_id, tuple(owned)))
            else:
                reason: Reason = lookup.reason or "lookup_error"
                missing.append(
                    OwnerMissing(guid, lookup.username, reason, lookup.detail, tuple(owned))
                )
        return OwnersOutcome(tuple(found), tuple(missing), tuple(unowned))

    def _look_up(self, server: str | None, guid: str, lookups: OwnerLookups) -> Lookup:
        try:
            user = self.client_for(server).users.get(guid)
        except LookupError:  # the server is no longer configured
            return Lookup(guid, reason="connect_error", detail="server no longer configured")
        except ConnectError as exc:
            if exc.not_found:
                return Lookup(guid, reason="unknown_user")
            log.warning("owner %s: Connect user lookup failed: %s", guid, exc.reason)
            detail = f"HTTP {exc.status}" if exc.status else "no answer"
            return Lookup(guid, reason="connect_error", detail=detail)
        if not user.email:
            return Lookup(guid, user.username, reason="no_email")
        try:
            user_id = lookups.by_email(user.email, self.directory.user_by_email)
        except DirectoryError as exc:
            log.warning("owner %s: directory lookup failed: %s", guid, exc)
            return Lookup(guid, user.username, reason="lookup_error", detail=str(exc)[:100])
        if user_id is None:
            return Lookup(guid, user.username, reason="no_account")
        return Lookup(guid, user.username, user_id=user_id)
