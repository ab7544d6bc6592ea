"""Read-only use cases: caches, content search, the servers, the audit log (admins only)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.connect import ConnectError, ContentFilter, ContentItem, RuntimeCache
from bot.services.audit import AuditRecord, AuditStore
from bot.services.authz import Authorizer
from bot.services.outcomes import Actor, ConnectFailed, Denied, UnknownServer
from bot.services.servers import Servers, ServerStatus


@dataclass(frozen=True, slots=True)
class CachesListed:
    server: str
    url: str
    caches: tuple[RuntimeCache, ...]


@dataclass(frozen=True, slots=True)
class ContentFound:
    server: str
    items: list[ContentItem]


class Queries:
    def __init__(self, *, servers: Servers, authz: Authorizer, audit: AuditStore) -> None:
        self.servers = servers
        self.authz = authz
        self.audit = audit

    def caches(
        self, actor: Actor, server_name: str | None
    ) -> CachesListed | UnknownServer | ConnectFailed:
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        try:
            return CachesListed(server.name, server.url, server.caches.list())
        except ConnectError as exc:
            return ConnectFailed("Listing caches", exc.reason)

    def content(
        self, actor: Actor, server_name: str | None, content_filter: ContentFilter
    ) -> ContentFound | UnknownServer | ConnectFailed:
        server = self.servers.resolve(server_name, actor.channel)
        if isinstance(server, UnknownServer):
            return server
        try:
            return ContentFound(server.name, server.client.content.search(content_filter))
        except ConnectError as exc:
            return ConnectFailed("Content search", exc.reason)

    def server_statuses(self) -> list[ServerStatus]:
        return self.servers.statuses()

    def audit_log(self, actor: Actor, limit: int) -> list[AuditRecord] | Denied:
        decision = self.authz.admin_in(actor.user, actor.channel)
        if not decision.allowed:
            self.audit.record(
                actor=actor.user,
                action="audit_view",
                outcome="denied",
                channel=actor.channel,
                detail=decision.reason,
            )
            return Denied(decision.reason)
        return self.audit.recent(limit)

    def channel_refused(self, actor: Actor, command: str, reason: str) -> None:
        """A command in a channel the bot is not enabled in: refused before parsing its intent."""
        self.audit.record(
            actor=actor.user,
            action=f"command_{command}",
            outcome="denied",
            channel=actor.channel,
            detail=reason,
        )
