"""Socket Mode: the WebSocket endpoint (apps.connections.open hands out its URL) and
FakeSlack's methods that push envelopes to the bot and wait for its acks."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sim.slack.common import JsonDict
from sim.slack.interactions import InteractionsMixin
from sim.slack.model import Interaction, SocketEnvelope

if TYPE_CHECKING:
    from sim.slack.views_api import ViewsApi

log = logging.getLogger(__name__)


class SocketModeServer:
    """WebSocket endpoint speaking Slack's Socket Mode envelope protocol.

    Compatible with slack_sdk's builtin client: it sends a plain HTTP/1.1 upgrade (Host without
    port, no extensions offered), masked text frames, and pings with "<session>:<time>" text
    payloads it expects echoed back. websockets answers pings automatically and sends
    unmasked frames, which that client parses.
    """

    def __init__(self, fake: SocketModeMixin, host: str, ping_interval: float | None) -> None:
        self._fake, self._host, self._ping_interval = fake, host, ping_interval
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._tickets: set[str] = set()
        self._connections: list[Any] = []
        self._draining: list[Any] = []  # sent "disconnect"; closed when the client reconnects
        self._envelopes: dict[str, SocketEnvelope] = {}
        self._interactions: dict[str, Interaction] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self.received: list[JsonDict] = []

    def start(self) -> None:
        with self._cond:
            if self._server is not None:
                return
            # Lazy import: the HTTP fake works without the websockets package.
            from websockets.sync.server import serve

            self._stopping.clear()
            self._server = serve(
                self._handle,
                self._host,
                0,
                compression=None,
                ping_interval=self._ping_interval,
                close_timeout=0.5,  # slack_sdk's builtin client never answers close frames
            )
            self._port = self._server.socket.getsockname()[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, daemon=True, name=f"fake-slack-ws-{self._port}"
            )
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def issue_url(self) -> str:
        self.start()
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://{self._host}:{self._port}/link/?ticket={ticket}&app_id={self._fake.app_id}"

    def _handle(self, conn: Any) -> None:
        query = parse_qs(urlsplit(conn.request.path).query)
        if query.get("ticket", [""])[0] not in self._tickets:
            conn.close(code=1008, reason="invalid ticket")
            return
        with self._cond:
            num = len(self._connections) + 1
        conn.send(json.dumps(self._hello(num)))
        with self._cond:
            self._connections.append(conn)
            # Slack ends a connection it sent "disconnect" on once the refresh is done.
            draining, self._draining = self._draining, []
            self._cond.notify_all()
        for old in draining:
            _close_soon(old, 1000, "refreshed")
        try:
            self._read_loop(conn)
        finally:
            with self._cond:
                self._connections.remove(conn)
                self._cond.notify_all()

    def _hello(self, num_connections: int) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self._fake.app_id},
        }

    def _read_loop(self, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        # Polling recv() lets the thread end when the fake stops or the interpreter exits
        # (websockets' handler threads are not daemons).
        while not self._stopping.is_set() and threading.main_thread().is_alive():
            try:
                raw = conn.recv(timeout=0.25)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            self._on_client_message(raw)

    def _on_client_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("socket mode: non-JSON message from client: %r", raw)
            return
        with self._cond:
            self.received.append(message)
            envelope = self._envelopes.get(str(message.get("envelope_id")))
            if envelope is None or envelope.ack is not None:
                return
            envelope.ack, envelope.acked_at = message, time.time()
            interaction = self._interactions.get(envelope.envelope_id)
            self._cond.notify_all()
        self._fake._on_socket_ack(envelope, interaction)

    def send_envelope(
        self,
        kind: str,
        payload: JsonDict,
        *,
        accepts_response_payload: bool,
        interaction: Interaction | None = None,
    ) -> str:
        envelope_id = str(uuid.uuid4())
        message = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        with self._cond:
            if not self._connections:
                raise RuntimeError("no Socket Mode client is connected")
            conn = self._connections[-1]
            self._envelopes[envelope_id] = SocketEnvelope(
                envelope_id, kind, payload, time.time(), payload.get("response_url")
            )
            if interaction is not None:
                self._interactions[envelope_id] = interaction
        conn.send(json.dumps(message))
        return envelope_id

    def send_disconnect(self, reason: str) -> None:
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        with self._cond:
            connections = list(self._connections)
            self._draining += connections
        for conn in connections:
            conn.send(json.dumps(message))

    def close_connections(self, code: int, reason: str) -> None:
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            _close_soon(conn, code, reason)

    def wait_ack(self, envelope_id: str, timeout: float) -> JsonDict:
        with self._cond:
            envelope = self._envelopes.get(envelope_id)
            if envelope is None:
                raise KeyError(f"unknown envelope {envelope_id}")
            if not self._cond.wait_for(lambda: envelope.ack is not None, timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s")
            return dict(envelope.ack or {})

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._connections), timeout)

    def ping(self, timeout: float) -> bool:
        with self._cond:
            connections = list(self._connections)
        if not connections:
            return False
        pongs = [conn.ping() for conn in connections]
        return all(pong.wait(timeout) for pong in pongs)

    def envelopes(self) -> list[SocketEnvelope]:
        with self._cond:
            return list(self._envelopes.values())


def _close_soon(conn: Any, code: int, reason: str) -> None:
    """Send a close frame without blocking: close() waits for the peer's close frame, which
    slack_sdk's builtin client never sends."""
    threading.Thread(target=conn.close, args=(code, reason), daemon=True).start()


class SocketModeMixin(InteractionsMixin):
    """Socket Mode methods of FakeSlack."""

    _socket: SocketModeServer
    views: ViewsApi

    def socket_send_command(
        self,
        text: str,
        user_id: str = "U0ADMIN",
        channel_id: str = "C0OPS",
        *,
        command: str = "/connect",
    ) -> str:
        """Push a slash_commands envelope to the connected Socket Mode client."""
        payload = self.command_payload(
            text, user_id=user_id, channel_id=channel_id, command=command
        )
        interaction = self.record_interaction("command", payload, transport="socket")
        return self._socket.send_envelope(
            "slash_commands", payload, accepts_response_payload=True, interaction=interaction
        )

    def socket_send_action(self, payload: JsonDict) -> str:
        """Push an interactive (block_actions) envelope; see action_payload()."""
        interaction = self.record_interaction("click", payload, transport="socket")
        return self._socket.send_envelope(
            "interactive", payload, accepts_response_payload=False, interaction=interaction
        )

    def socket_click(self, channel: str, message_ts: str, action_id: str, **kwargs: Any) -> str:
        """action_payload(...) + socket_send_action(...)."""
        return self.socket_send_action(
            self.action_payload(channel, message_ts, action_id, **kwargs)
        )

    def socket_send_event(self, payload: JsonDict) -> str:
        """Push an events_api envelope carrying an Events API `event_callback` body."""
        return self._socket.send_envelope("events_api", payload, accepts_response_payload=False)

    def socket_app_home_opened(self, user_id: str = "U0ADMIN", *, tab: str = "home") -> str:
        """`user_id` opens the App Home: an app_home_opened event over the socket."""
        return self.socket_send_event(self.views.home_opened_event(user_id, tab=tab))

    def socket_home_click(self, user_id: str, action_id: str, *, value: str | None = None) -> str:
        """Click a button on `user_id`'s Home (block_actions from a view) over the socket."""
        payload = self.views.home_click_payload(user_id, action_id, value=value)
        interaction = self.views.record_click(payload, transport="socket")
        return self._socket.send_envelope(
            "interactive", payload, accepts_response_payload=False, interaction=interaction
        )

    def socket_wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JsonDict:
        """The ack the client sent for `envelope_id`: {"envelope_id": ..., "payload": ...}."""
        return self._socket.wait_ack(envelope_id, timeout)

    def socket_connected(self, timeout: float = 5.0) -> bool:
        return self._socket.wait_connected(timeout)

    def socket_ping(self, timeout: float = 2.0) -> bool:
        """Ping every client; True when all answered with a pong."""
        return self._socket.ping(timeout)

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's "disconnect" message; clients reconnect via apps.connections.open."""
        self._socket.send_disconnect(reason)

    def socket_close_connections(self, code: int = 1001, reason: str = "") -> None:
        """Close every client connection from the server side (a WebSocket close frame).

        Tip: slack_sdk's builtin client needs up to 3 s for close() while its reader is
        blocked in recv(); disable its auto-reconnect and call this first to close fast."""
        self._socket.close_connections(code, reason)

    @property
    def socket_envelopes(self) -> list[SocketEnvelope]:
        return self._socket.envelopes()

    def _on_socket_ack(self, envelope: SocketEnvelope, interaction: Interaction | None) -> None:
        elapsed = (envelope.acked_at or time.time()) - envelope.sent_at
        if interaction is not None:
            interaction.status, interaction.elapsed = 200, elapsed
        if envelope.type == "slash_commands" and envelope.response_url:
            body = (envelope.ack or {}).get("payload")
            self.deliver_ack(envelope.response_url, body=body, elapsed=elapsed)
