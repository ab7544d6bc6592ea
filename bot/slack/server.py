"""HTTP front: `/slack/events` for Bolt, `/healthz` and `/readyz`, served by waitress (threaded).

What a request may cost before it is refused is bounded in `bot.slack.bounded`; `BotWsgi.screen`
decides, from the headers alone, which requests are refused before their body is read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.context.context import BoltContext
from slack_bolt.request.internals import build_context
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.task import ThreadedTaskDispatcher

from bot.slack import requestlog
from bot.slack.bounded import MAX_BODY, PUBLIC_LIMITS, Head, Limits, Refusal, bounded_server
from bot.slack.deps import AckGate
from bot.slack.signature import RequestVerifier, SharedMemory

log = logging.getLogger("bot.http")

EVENTS_PATH = "/slack/events"
HEALTH_PATHS = ("/healthz", "/readyz")
Readiness = Callable[[], dict[str, Any]]
StartResponse = Callable[..., Any]


def fix_payload_word(request: BoltRequest) -> BoltRequest:
    """Bolt parses any form body containing "payload" as an interaction and finds nothing.

    A slash command whose text (or channel name) contains that word then 404s. Re-parse the
    raw form as the command it is; the signature still covers the untouched raw body.
    """
    if request.body or "payload" not in request.raw_body:
        return request
    params = dict(parse_qsl(request.raw_body, keep_blank_values=True))
    if "command" in params and "payload" not in params:
        request.body = params
        request.context = build_context(BoltContext({}), request.body)
    return request


class BotWsgi:
    """`signing_secret`: the app's, so signatures are checked here before Bolt sees a request
    (a malformed header would otherwise be a 500) and replays are refused. Without it only the
    headers' shape and the 5-minute window are checked here; Bolt still checks the HMAC.
    `verifier` replaces the one built from the secret (tests: a frozen clock); `shared` is where
    replicas record the signatures they accepted (PostgreSQL)."""

    def __init__(
        self,
        app: App | None,
        readiness: Readiness,
        gate: AckGate | None = None,
        *,
        signing_secret: str | None = None,
        verifier: RequestVerifier | None = None,
        shared: SharedMemory | None = None,
    ) -> None:
        self.app = app  # None in Socket Mode: only the health endpoints are served
        self.readiness = readiness
        self.gate = gate or AckGate()
        self.verifier = verifier or RequestVerifier(signing_secret, shared=shared)
        if app is not None and not self.verifier.checks_hmac:
            log.warning(
                "no signing secret given to the HTTP front: replayed requests are not refused",
                extra={"event": "signature_check_degraded"},
            )

    def screen(self, head: Head) -> Refusal | None:
        """Called by the server once a request's headers are in, before its body is read."""
        if head.too_large:  # known from Content-Length alone: the size decides first
            refusal: Refusal | None = Refusal(413, "body too large")
        elif head.method == "POST" and head.path == EVENTS_PATH and self.app is not None:
            why = self.verifier.check_headers(
                head.headers.get("X_SLACK_REQUEST_TIMESTAMP"), head.headers.get("X_SLACK_SIGNATURE")
            )
            refusal = Refusal(401, why) if why is not None else None
        elif head.has_body:  # only Slack's requests carry one: nothing else reads it
            refusal = Refusal(413 if head.path in HEALTH_PATHS else 404, "unexpected body")
        else:
            return None
        if refusal is not None and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "event": "request",
                    "method": head.method,
                    "path": head.path,
                    "status": refusal.status,
                    "duration_ms": 0.0,
                    "rejected": refusal.reason,
                },
            )
        return refusal

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        fields: dict[str, Any] = {}
        if method == "POST" and path == EVENTS_PATH and self.app is not None:
            requestlog.begin()
            try:
                status, headers, body = self._dispatch(environ)
            finally:
                fields = requestlog.end()
        elif method in ("GET", "HEAD") and path == "/healthz":
            status, headers, body = _json(200, {"status": "ok"})
        elif method in ("GET", "HEAD") and path == "/readyz":
            report = self.readiness()
            status, headers, body = _json(200 if report.get("ready") else 503, report)
        else:
            status, headers, body = _json(404, {"error": "not found"})
        start_response(f"{status} {_REASONS.get(status, '')}".strip(), headers)
        if path != "/healthz" and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "event": "request",
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    **fields,
                },
            )
        return [body]

    def _dispatch(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self.app is not None
        raw = _read_body(environ)
        if raw is None:
            requestlog.annotate(rejected="body too large")
            return _json(413, {"error": "request entity too large"})
        rejected = self.verifier.check(
            raw,
            environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
            environ.get("HTTP_X_SLACK_SIGNATURE"),
        )
        if rejected is not None:
            requestlog.annotate(rejected=rejected)
            return _json(401, {"error": "invalid request"})
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # signed, so from Slack, but not a form Bolt can read
            requestlog.annotate(rejected="body not UTF-8")
            return _json(400, {"error": "bad request"})
        request = WsgiHttpRequest(environ)
        bolt_request = BoltRequest(
            body=text, query=request.query_string, headers=request.get_headers()
        )
        self.gate.enter()
        try:
            response = self.app.dispatch(fix_payload_word(bolt_request))
        finally:
            self.gate.leave()
        headers = [(name, value) for name, values in response.headers.items() for value in values]
        return response.status, headers, (response.body or "").encode("utf-8")


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The body, or None if it is over the cap (the server refuses those first; this holds
    under any other WSGI server too). Never reads more than the cap."""
    stream = environ.get("wsgi.input")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return None
    if stream is None or length <= 0:
        return b""
    data: bytes = stream.read(length)
    return data


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(status: int, data: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(data).encode()


class HttpServer:
    """waitress in a background thread, bounded by `limits`; `port=0` picks a free port (tests).

    The event loop is run here, one turn at a time, so that `stop()` can end it between turns
    and close every connection from the loop's own thread: keep-alive connections would
    otherwise keep waitress's loop alive for their idle timeout.
    """

    def __init__(
        self,
        wsgi: BotWsgi,
        *,
        host: str,
        port: int,
        limits: Limits = PUBLIC_LIMITS,
        name: str = "http",
    ) -> None:
        self._map: dict[int, Any] = {}
        self._dispatcher = ThreadedTaskDispatcher()
        self._server = bounded_server(
            wsgi,
            host=host,
            port=port,
            limits=limits,
            screen=wsgi.screen,
            socket_map=self._map,
            dispatcher=self._dispatcher,
        )
        host, port_text = self._server.getsockname()
        self.host = str(host)
        self.port = int(port_text)
        self._dispatcher.set_thread_count(limits.threads)  # once bound: no threads left behind
        self.name = name
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stopped = False

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{_bracketed(host)}:{self.port}"

    @property
    def bound(self) -> str:
        """The address actually bound (`0.0.0.0` is every interface), for the log."""
        return f"http://{_bracketed(self.host)}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)
        finally:
            self._close_connections()

    def _close_connections(self) -> None:
        for dispatcher in list(self._map.values()):
            if isinstance(dispatcher, HTTPChannel):
                dispatcher.handle_close()  # also wakes a task waiting to write to it
        self._server.close()
        wasyncore.close_all(self._map)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None:
            with contextlib.suppress(OSError):  # the loop may have closed its trigger already
                self._server.pull_trigger()  # wake the loop now, not at its next timeout
            self._thread.join(timeout=5)
        else:
            self._close_connections()
        self._dispatcher.shutdown(timeout=5)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
