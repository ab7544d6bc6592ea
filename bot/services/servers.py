"""The Connect servers one bot serves (staging, production, ...), and which one a request means."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.connect import ConnectClient
from bot.services.outcomes import UnknownServer

if TYPE_CHECKING:  # built by the wiring; the caches package imports this module
    from bot.services.caches.service import CacheService


@dataclass(frozen=True, slots=True)
class ConnectServer:
    name: str
    client: ConnectClient
    caches: CacheService

    @property
    def url(self) -> str:
        return self.client.server


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    url: str
    default: bool
    reachable: bool
    version: str | None
    error: str | None


class Servers:
    """Resolves `-n NAME`, the channel's default (BOT_CHANNEL_SERVERS), then the default server.

    Resolving is pure (no request), so an unknown name is refused before any Connect is asked.
    """

    def __init__(
        self,
        servers: Sequence[ConnectServer],
        *,
        default: str | None = None,
        channel_defaults: Mapping[str, str] | None = None,
    ) -> None:
        if not servers:
            raise ValueError("at least one Connect server is needed")
        self._by_name = {server.name: server for server in servers}
        self.default = default or servers[0].name
        self.channel_defaults = dict(channel_defaults or {})
        for name in (self.default, *self.channel_defaults.values()):
            if name not in self._by_name:
                raise ValueError(
                    f"{name!r} is not one of the configured Connect servers ({self.listing})"
                )

    def __iter__(self) -> Iterator[ConnectServer]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def listing(self) -> str:
        return ", ".join(self._by_name)

    @property
    def several(self) -> bool:
        """With several servers, every card, message and audit record names its server."""
        return len(self._by_name) > 1

    def resolve(self, name: str | None, channel: str) -> ConnectServer | UnknownServer:
        if name is None:
            name = self.channel_defaults.get(channel, self.default)
        server = self._by_name.get(name) or self._by_name.get(name.lower())
        if server is None:
            return UnknownServer(name, self.names)
        return server

    def get(self, name: str | None) -> ConnectServer | UnknownServer:
        """The server a stored request was made for (None: made before there were names)."""
        if name is None:
            return self._by_name[self.default]
        return self._by_name.get(name) or UnknownServer(name, self.names)

    def client(self, name: str | None) -> ConnectClient:
        """The client of a stored rebuild's server; LookupError once it is no longer configured."""
        server = self.get(name)
        if isinstance(server, UnknownServer):
            raise LookupError(f"the Connect server {name!r} is no longer configured")
        return server.client

    def statuses(self, timeout: float = 5.0) -> list[ServerStatus]:
        """Every server probed at once (one short request each), in configuration order."""
        servers = list(self)
        with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
            probes = list(pool.map(lambda s: s.client.probe(timeout=timeout), servers))
        return [
            ServerStatus(
                name=server.name,
                url=server.url,
                default=server.name == self.default,
                reachable=probe.reachable,
                version=probe.version,
                error=probe.error,
            )
            for server, probe in zip(servers, probes, strict=True)
        ]

    def close(self) -> None:
        for server in self:
            server.client.close()
