"""Hostile HTTP clients over raw sockets, for the tests and `bench/attack.py`: huge bodies
streamed from a generator (never held in memory), and slow clients trickling a header.

A server that refuses a request after its headers answers while the client is still sending,
then closes; so the streaming client watches for the answer between writes, as a browser or
curl would, and stops sending once it has it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx

MIB = 1024 * 1024
_CHUNK = b"x" * (64 * 1024)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the connection ended (or the deadline passed) with no answer
    seconds: float  # from the first byte sent to the answer's status line
    sent: int  # body bytes the server let this client send


def body_chunks(size: int) -> Iterator[bytes]:
    """`size` bytes in 64 KiB pieces, made as they are sent."""
    left = size
    while left > 0:
        piece = _CHUNK if left >= len(_CHUNK) else _CHUNK[:left]
        left -= len(piece)
        yield piece


def post_streamed(
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str],
    chunks: Iterator[bytes],
    *,
    content_length: int | None,
    timeout: float = 10,
) -> Answer:
    """POST `chunks` with Content-Length (or chunked if `content_length` is None)."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    framing = "Transfer-Encoding: chunked" if content_length is None else None
    head.append(framing or f"Content-Length: {content_length}")
    started = time.monotonic()
    deadline = started + timeout
    sent = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        pending = b""
        for chunk in _framed(chunks, chunked=content_length is None):
            pending += chunk
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return Answer(None, time.monotonic() - started, sent)
                readable, writable, _ = select.select([sock], [sock], [], left)
                if readable:
                    return _answer(sock, started, deadline, sent)
                if writable:
                    try:
                        n = sock.send(pending)
                    except OSError:  # closed by the server: its answer may be waiting
                        return _answer(sock, started, deadline, sent)
                    pending = pending[n:]
                    sent += n
        return _answer(sock, started, deadline, sent)


def _framed(chunks: Iterator[bytes], *, chunked: bool) -> Iterator[bytes]:
    for chunk in chunks:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
    if chunked:
        yield b"0\r\n\r\n"


def _answer(sock: socket.socket, started: float, deadline: float, sent: int) -> Answer:
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            more = sock.recv(4096)
            if not more:
                break
            data += more
    seconds = time.monotonic() - started
    parts = data.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return Answer(None, seconds, sent)
    return Answer(int(parts[1]), seconds, sent)


class SlowClients:
    """`count` connections that each send a request header one byte every `interval` seconds
    (the attack of issue 17), until `close()`. `closed()` counts those the server closed."""

    def __init__(self, host: str, port: int, count: int, *, interval: float = 1.0) -> None:
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
            self.sockets.append(sock)
        self._stop = threading.Event()
        self._gone: set[int] = set()
        self._thread = threading.Thread(target=self._trickle, args=(interval,), daemon=True)
        self._thread.start()

    def _trickle(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for n, sock in enumerate(self.sockets):
                if n in self._gone:
                    continue
                try:
                    sock.sendall(b"X")
                except OSError:
                    self._gone.add(n)

    def closed(self) -> int:
        """How many the server has closed (seen as EOF or a reset)."""
        for n, sock in enumerate(self.sockets):
            if n in self._gone:
                continue
            try:
                ready = select.select([sock], [], [], 0)[0]
                if ready and not sock.recv(1, socket.MSG_PEEK):
                    self._gone.add(n)
            except OSError:
                self._gone.add(n)
        return len(self._gone)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


def timed_get(url: str, timeout: float = 5) -> tuple[int | None, float]:
    """GET `url` on a fresh connection: its status (None if none came) and seconds taken."""
    started = time.monotonic()
    try:
        status: int | None = httpx.get(url, timeout=timeout, trust_env=False).status_code
    except httpx.HTTPError:
        status = None
    return status, time.monotonic() - started
