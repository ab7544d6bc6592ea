"""The HTTP server: routes ``/api/<method>``, response_url POSTs and ``GET /_fake/state`` to
FakeSlack."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sim.slack.server import FakeSlack

log = logging.getLogger(__name__)


class FakeSlackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: FakeSlackHTTPServer
    server_version = "FakeSlack/1.0"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def _dispatch(self, verb: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if parts.path.startswith("/api/"):
                status, extra, data = fake._handle_api(
                    parts.path[5:], verb, headers, body, parts.query
                )
                self._reply(
                    status, json.dumps(data).encode(), "application/json; charset=utf-8", extra
                )
            elif verb == "POST" and parts.path.startswith(("/commands/", "/actions/")):
                status, answer = fake._handle_response_url(parts.path, body)
                self._reply(status, answer.encode(), "text/plain; charset=utf-8")
            elif verb == "GET" and parts.path == "/_fake/state":
                self._reply(
                    200, json.dumps(fake.snapshot()).encode(), "application/json; charset=utf-8"
                )
            else:
                self._reply(404, b"not_found", "text/plain; charset=utf-8")
        except Exception:
            log.exception("fake Slack failed on %s %s", verb, self.path)
            error = json.dumps({"ok": False, "error": "internal_error"}).encode()
            self._reply(500, error, "application/json; charset=utf-8")

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
