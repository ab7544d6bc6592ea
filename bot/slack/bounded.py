"""waitress, bounded: what a request may cost before the app sees it.

waitress buffers a whole request body before it calls the WSGI app, so limits that must hold
while a body arrives live here, in waitress's own extension points:
- its options cap the body (413 after the headers, or while a chunked body arrives), the
  headers, idle connections, and the number of connections;
- a parser subclass asks `screen` about each request once its headers are in, so a request
  the app would refuse anyway (no or a stale Slack signature) is answered before its body is
  read;
- a server subclass closes a connection whose request takes longer than `request_seconds`
  from its first byte (waitress's own timeout counts only idleness, which a client sending a
  byte every few seconds never reaches).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.utilities import Error

MAX_BODY = 1024 * 1024  # Slack's payloads are a few KiB; 1 MiB leaves room for large views


@dataclass(frozen=True)
class Limits:
    """Per-server limits; the defaults suit the public `/slack/events` port."""

    max_body: int = MAX_BODY
    max_header: int = 32 * 1024
    # A request must arrive whole within this many seconds of its first byte, and an idle
    # connection is closed after `idle_seconds`: a slow client holds a slot ~10 s at most.
    request_seconds: float = 10
    idle_seconds: int = 10
    # Slow clients cost a socket each, not a thread (waitress reads on one event loop), so
    # many connections are cheap; kept under the usual 1024 open-file limit.
    connections: int = 500
    threads: int = 8

    def adjustments(self) -> dict[str, Any]:
        """waitress's own options for these limits."""
        return {
            "threads": self.threads,
            "connection_limit": self.connections,
            "channel_timeout": self.idle_seconds,
            "cleanup_interval": 1,  # how often the timeouts are checked
            # waitress refuses a Content-Length >= its limit: exactly `max_body` is allowed.
            "max_request_body_size": self.max_body + 1,
            "max_request_header_size": self.max_header,
            "asyncore_use_poll": True,  # select() fails beyond 1024 descriptors
            "ident": "connect-bot",
            "expose_tracebacks": False,
        }


PUBLIC_LIMITS = Limits()
HEALTH_LIMITS = Limits(max_body=0, max_header=8 * 1024, connections=64, threads=2)


@dataclass(frozen=True)
class Head:
    """A request as its headers say; `headers` keyed as waitress does (`X_SLACK_SIGNATURE`)."""

    method: str
    path: str
    headers: Mapping[str, str]
    has_body: bool
    too_large: bool  # its Content-Length is over the server's cap


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # for the log, never sent


# None lets the request through; a Refusal answers it before its body is read.
Screen = Callable[[Head], Refusal | None]

_REASONS = {401: "Unauthorized", 404: "Not Found", 413: "Request Entity Too Large"}


class _Refused(Error):
    """waitress's error response, as JSON like the app's own answers."""

    def __init__(self, status: int) -> None:
        super().__init__("")
        self.code = status
        self.reason = _REASONS.get(status, "Error")

    def to_response(self, ident: str | None = None) -> Any:
        message = "invalid request" if self.code == 401 else self.reason.lower()
        body = json.dumps({"error": message}).encode()
        return f"{self.code} {self.reason}", [("Content-Type", "application/json")], body


class _ScreenedParser(HTTPRequestParser):
    screen: Screen | None = None  # set on a subclass per server

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.time()  # the request's first byte: the deadline counts from here

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.screen is None:
            return
        refusal = self.screen(
            Head(
                method=cast(str, self.command),
                path=cast(Any, self).path,
                headers=self.headers,
                has_body=self.chunked or self.content_length > 0,
                # waitress refuses a Content-Length >= its limit (413) after this method
                too_large=self.content_length >= self.adj.max_request_body_size,
            )
        )
        if refusal is not None:
            self.error = _Refused(refusal.status)
            # Complete now: waitress then answers and closes, and reads no body. No
            # "100 Continue" either (waitress would send one and resume reading).
            self.completed = True
            self.expect_continue = False


class BoundedServer(TcpWSGIServer):
    """One listening socket; `request_seconds` bounds each request from its first byte."""

    request_seconds: float = Limits.request_seconds

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # type: ignore[arg-type]  # idle connections (channel_timeout)
        cutoff = now - self.request_seconds
        channels = cast(dict[int, HTTPChannel], self.active_channels)
        for channel in list(channels.values()):
            pending = channel.request
            started = getattr(pending, "started", now)
            if not channel.requests and pending is not None and started < cutoff:
                channel.will_close = True


def bounded_server(
    app: Any,
    *,
    host: str,
    port: int,
    limits: Limits,
    screen: Screen | None,
    socket_map: dict[int, Any],
    dispatcher: Any,
) -> BoundedServer:
    parser = type(
        "Parser", (_ScreenedParser,), {"screen": staticmethod(screen) if screen else None}
    )
    channel = type("Channel", (HTTPChannel,), {"parser_class": parser})
    server = BoundedServer(
        app,
        map=socket_map,
        dispatcher=dispatcher,
        host=host,
        port=port,
        **limits.adjustments(),
    )
    server.channel_class = channel
    server.request_seconds = limits.request_seconds
    return server
