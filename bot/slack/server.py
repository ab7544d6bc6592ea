"""HTTP front: `/slack/events` for Bolt, `/healthz` and `/readyz`, served by waitress (threaded)."""

from __future__ import annotations

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
from waitress.server import create_server

from bot.slack import requestlog
from bot.slack.deps import AckGate
from bot.slack.signature import RequestVerifier

log = logging.getLogger("bot.http")

EVENTS_PATH = "/slack/events"
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
    `verifier` replaces the one built from the secret (tests: a frozen clock)."""

    def __init__(
        self,
        app: App | None,
        readiness: Readiness,
        gate: AckGate | None = None,
        *,
        signing_secret: str | None = None,
        verifier: RequestVerifier | None = None,
    ) -> None:
        self.app = app  # None in Socket Mode: only the health endpoints are served
        self.readiness = readiness
        self.gate = gate or AckGate()
        self.verifier = verifier or RequestVerifier(signing_secret)
        if app is not None and not self.verifier.checks_hmac:
            log.warning(
                "no signing secret given to the HTTP front: replayed requests are not refused",
                extra={"event": "signature_check_degraded"},
            )

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


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if stream is None or length <= 0:
        return b""
    data: bytes = stream.read(length)
    return data


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(status: int, data: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(data).encode()


class HttpServer:
    """waitress in a background thread; `port=0` picks a free port (tests)."""

    def __init__(
        self,
        wsgi: BotWsgi,
        *,
        host: str,
        port: int,
        threads: int = 8,
    ) -> None:
        self._server = create_server(
            wsgi,
            host=host,
            port=port,
            threads=threads,
            ident="connect-bot",
            expose_tracebacks=False,
        )
        self.host = host
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.run()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        server: Any = self._server

        def close_all() -> None:
            for channel in list(server._map.values()):
                channel.close()

        # Close every channel from inside the loop thread: keep-alive connections would
        # otherwise keep waitress's loop (and this thread) alive for its channel timeout.
        try:
            server.trigger.pull_trigger(close_all)
        except OSError:  # the loop has already closed its trigger: close from here
            close_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=5)
