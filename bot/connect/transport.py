"""httpx's transport with sockets that acknowledge at once (TCP_QUICKACK, Linux).

Why: many HTTP servers (Python's `http.server` among them, and so some Connect proxies and
fakes) write a response's headers and body in two sends with Nagle's algorithm on. The body
then waits for the ACK of the headers, and a client in delayed-ACK mode sends that ACK only
after its timer, about 40 ms later. On a rebuild that stall sits between a build's end (the
long-poll answer) and the next build's request, once per build: 129 one-second builds on 4
slots took 1.057 x the ideal instead of 1.006 (`bench/rebuild.py --scenario dispatch`). Setting
TCP_QUICKACK before each read makes the kernel ACK the headers at once; it is not sticky
(the kernel may leave quick-ack mode again), hence before every read.

Only this one socket option differs from httpx's own transport; requests, pooling, TLS and
error mapping are httpx's and httpcore's (httpcore's `network_backend` is its extension point).
"""

from __future__ import annotations

import socket
import ssl
import urllib.request
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def quick_ack_available() -> bool:
    """True where TCP_QUICKACK exists (Linux) and no proxy is configured in the environment (a
    custom transport would bypass httpx's environment proxies)."""
    return QUICKACK is not None and not _env_proxies()


def _env_proxies() -> bool:
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


class QuickAckStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._socket is not None and QUICKACK is not None:
            try:
                self._socket.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:
                self._socket = None  # not a TCP socket after all: stop trying
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, timeout)
        wrapped = QuickAckStream(tls)
        wrapped._socket = self._socket  # the TCP socket under the TLS one
        return wrapped

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class QuickAckBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return QuickAckStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return self._backend.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class QuickAckTransport(httpx.HTTPTransport):
    """`httpx.HTTPTransport` (its request and error mapping) over a pool of quick-ACK sockets."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        # The one reliance on httpx internals: its transport keeps its httpcore pool in `_pool`
        # (tests/test_connect_client.py fails if that changes).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=QuickAckBackend(),
        )
