"""Who acts, and the outcomes that several use cases share. Plain data: no Slack, no I/O.

A use case returns one of these (or one of its own outcome types); the Slack layer renders it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked, and where (a Slack user and channel ID; any surface has both)."""

    user: str
    channel: str


@dataclass(frozen=True, slots=True)
class Denied:
    """Not allowed; `reason` says why and what to do about it."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """The request, plan or rebuild does not exist (any more)."""

    what: str


@dataclass(frozen=True, slots=True)
class Expired:
    """A confirmation came after its request expired: nothing was done."""


@dataclass(frozen=True, slots=True)
class AlreadyHandled:
    """Someone else's click won: the request is `state` now, and nothing more was done."""

    state: str


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """Connect could not be asked or refused; `what` is the step, `reason` Connect's words."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnknownServer:
    """`-n NAME` names no configured Connect server; no request went anywhere."""

    name: str
    names: tuple[str, ...]


# What a lost confirmation click can come to (shared by deletions and rebuild plans).
Refusal = Denied | NotFound | Expired | AlreadyHandled
