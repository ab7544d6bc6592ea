"""HTTP plumbing for the Connect API: auth, timeouts, cookies, retries, error decoding."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import ijson

from bot import __version__
from bot.connect.errors import ConnectError

log = logging.getLogger("bot.connect")

# Gateways in front of Connect answer these during restarts and overload (rsconnect-python#467).
RETRYABLE_STATUSES = frozenset({502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class HttpCore:
    """One httpx.Client per Connect server, shared by the resource modules.

    Cookies persist on the client: a multi-node Connect routes task polls by a sticky-session
    cookie, and a poll that lands on another node fails with code 141.
    """

    def __init__(
        self,
        server: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not server:
            raise ValueError("CONNECT_SERVER is not set")
        if not api_key:
            raise ValueError("CONNECT_API_KEY is not set")
        self.server = server.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=f"{self.server}/__api__/",
            headers={
                "Authorization": f"Key {api_key}",
                "User-Agent": f"connect-bot/{__version__}",
                "Accept": "application/json",
            },
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"HttpCore(server={self.server!r})"

    def close(self) -> None:
        self._http.close()

    def get(
        self, path: str, *, params: dict[str, Any] | None = None, read_timeout: float | None = None
    ) -> Any:
        return self.request("GET", path, params=params, idempotent=True, read_timeout=read_timeout)

    def stream_array(self, path: str, *, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """GET a JSON array and yield its elements as they arrive.

        Connect answers `GET v1/content` with every item at once (no paging); on a large
        server that is tens of MB of JSON, which parsed whole would dwarf the bot itself.
        Retried like any GET, but only until the first element has been handed out.
        """
        attempts = 1 + self.retries
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            yielded = False
            try:
                with self._http.stream("GET", path.lstrip("/"), params=params) as response:
                    _log_call("GET", path, response.status_code, started, attempt)
                    if response.status_code in RETRYABLE_STATUSES and attempt < attempts:
                        self._sleep(self._delay(attempt))
                        continue
                    if not response.is_success:
                        response.read()
                        _decode("GET", path, response)
                    reader = _ByteReader(response.iter_bytes())
                    for element in ijson.items(reader, "item", use_float=True):
                        yielded = True
                        yield element
                    return
            except httpx.TransportError as exc:
                error = _transport_error("GET", path, exc)
                _log_call("GET", path, None, started, attempt, error=type(exc).__name__)
                if yielded or attempt >= attempts:
                    raise error from None
                self._sleep(self._delay(attempt))
            except ijson.JSONError:
                raise ConnectError(
                    f"Connect sent malformed JSON for GET {path}", method="GET", path=path
                ) from None

    def post(self, path: str, *, json: Any = None) -> Any:
        return self.request("POST", path, json=json, idempotent=False)

    def delete(self, path: str, *, json: Any = None, idempotent: bool = False) -> Any:
        return self.request("DELETE", path, json=json, idempotent=idempotent)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool,
        read_timeout: float | None = None,
    ) -> Any:
        attempts = 1 + (self.retries if idempotent else 0)
        timeout = self._timeout_for(read_timeout)
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                response = self._http.request(
                    method, path.lstrip("/"), params=params, json=json, timeout=timeout
                )
            except httpx.TransportError as exc:
                error = _transport_error(method, path, exc)
                _log_call(method, path, None, started, attempt, error=type(exc).__name__)
                if attempt < attempts:
                    self._sleep(self._delay(attempt))
                    continue
                raise error from None
            _log_call(method, path, response.status_code, started, attempt)
            if response.status_code in RETRYABLE_STATUSES and attempt < attempts:
                self._sleep(self._delay(attempt))
                continue
            return _decode(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _timeout_for(self, read_timeout: float | None) -> httpx.Timeout | httpx.USE_CLIENT_DEFAULT:
        if read_timeout is None:
            return httpx.USE_CLIENT_DEFAULT
        default = self._http.timeout
        return httpx.Timeout(
            connect=default.connect, read=read_timeout, write=default.write, pool=default.pool
        )

    def _delay(self, attempt: int) -> float:
        # Exponential backoff with full jitter, capped so a long rebuild keeps moving.
        return min(10.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


class _ByteReader:
    """The file-like `read()` that ijson wants, over httpx's chunk iterator."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to learn bytes vs str
            return b""
        for chunk in self._chunks:
            if chunk:  # an empty read means end of input to ijson
                return chunk
        return b""


class NotSent(ConnectError):
    """The request never reached Connect (connection refused or connect timeout): safe to retry."""


def _transport_error(method: str, path: str, exc: httpx.TransportError) -> ConnectError:
    kind = type(exc).__name__
    cls = NotSent if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) else ConnectError
    return cls(f"Could not reach Connect ({kind}) on {method} {path}", method=method, path=path)


def _decode(method: str, path: str, response: httpx.Response) -> Any:
    if response.is_success:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ConnectError(
                f"Connect sent a non-JSON answer to {method} {path} (HTTP {response.status_code})",
                method=method,
                path=path,
                status=response.status_code,
            ) from None
    code: int | None = None
    error: str | None = None
    try:
        body = response.json()
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), int) else None
            error = str(body["error"]) if body.get("error") else None
    except ValueError:
        pass
    detail = f"code {code}: {error}" if error else response.reason_phrase or "no detail"
    return_error = ConnectError(
        f"Connect answered HTTP {response.status_code} to {method} {path} ({detail})",
        method=method,
        path=path,
        status=response.status_code,
        code=code,
        error=error,
    )
    raise return_error


def _log_call(
    method: str, path: str, status: int | None, started: float, attempt: int, error: str = ""
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "connect call",
        extra={
            "event": "connect_call",
            "method": method,
            "path": "/__api__/" + path.lstrip("/"),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "attempt": attempt,
            "error": error or None,
        },
    )
