"""HTTP plumbing for the Connect API: auth, timeouts, cookies, retries, error decoding."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import httpx
import ijson

from bot import __version__
from bot.connect.errors import ConnectError
from bot.connect.retry import (
    RETRY_AFTER_STATUSES,
    RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)
from bot.connect.transport import QuickAckTransport, quick_ack_available

if TYPE_CHECKING:
    from httpx._client import UseClientDefault  # the type of httpx.USE_CLIENT_DEFAULT

log = logging.getLogger("bot.connect")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_END = object()


class HttpCore:
    """One httpx.Client per Connect server, shared by the resource modules.

    Cookies persist on the client: a multi-node Connect routes task polls by a sticky-session
    cookie, and a poll that lands on another node fails with code 141.

    Idempotent requests are retried (see `RetryPolicy`) on transport errors and on 429, 502,
    503 and 504, honouring Retry-After; `retries` counts the tries after the first (None: no
    count, only the `retry_seconds` budget). Others are sent once: a lost answer is reported.
    """

    def __init__(
        self,
        server: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: int | None = 4,
        backoff: float = 0.5,
        retry_seconds: float | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not server:
            raise ValueError("CONNECT_SERVER is not set")
        if not api_key:
            raise ValueError("CONNECT_API_KEY is not set")
        self.server = server.rstrip("/")
        self.retry_policy = RetryPolicy.from_retries(retries, backoff, retry_seconds)
        self._sleep = sleep
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None and quick_ack_available():
            transport = QuickAckTransport(limits=limits)
        self._http = httpx.Client(
            base_url=f"{self.server}/__api__/",
            headers={
                "Authorization": f"Key {api_key}",
                "User-Agent": f"connect-bot/{__version__}",
                "Accept": "application/json",
            },
            timeout=timeout,
            transport=transport,
            limits=limits,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"HttpCore(server={self.server!r})"

    @property
    def retries(self) -> int | None:
        attempts = self.retry_policy.attempts
        return None if attempts is None else attempts - 1

    @property
    def backoff(self) -> float:
        return self.retry_policy.backoff

    def close(self) -> None:
        self._http.close()

    def redact(self, text: str) -> str:
        """`text` with the API key blanked out, for messages built from foreign errors."""
        key = self._http.headers.get("Authorization", "").removeprefix("Key ")
        return text.replace(key, "***") if key else text

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

        def open_stream(attempt: int) -> tuple[ExitStack, Iterator[Any], Any, float, int]:
            # One try: the answer's head and its first element, or an error to retry on.
            started = time.perf_counter()
            stack = ExitStack()
            try:
                response = stack.enter_context(
                    self._http.stream("GET", path.lstrip("/"), params=params)
                )
                _log_call("GET", path, response.status_code, started, attempt)
                if not response.is_success:
                    response.read()
                    _decode("GET", path, response)
                reader = _ByteReader(response.iter_bytes())
                items = ijson.items(reader, "item", use_float=True)
                first = next(items, _END)
            except httpx.TransportError as exc:
                stack.close()
                _log_call("GET", path, None, started, attempt, error=type(exc).__name__)
                raise
            except ijson.JSONError:
                stack.close()
                raise _malformed(path) from None
            except BaseException:
                stack.close()
                raise
            return stack, items, first, started, attempt

        stack, items, first, started, attempt = self._send("GET", path, open_stream, True)
        with stack:
            if first is _END:
                return
            yield first
            try:
                yield from items
            except httpx.TransportError as exc:  # too late to retry: elements were handed out
                _log_call("GET", path, None, started, attempt, error=type(exc).__name__)
                raise _transport_error("GET", path, exc) from None
            except ijson.JSONError:
                raise _malformed(path) from None

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
        timeout: float | None = None,
    ) -> Any:
        """Send one request (retried if `idempotent`) and decode Connect's JSON answer.

        `read_timeout` overrides the read timeout only; `timeout` overrides every timeout.
        """
        http_timeout = self._timeout_for(read_timeout, timeout)

        def once(attempt: int) -> Any:
            started = time.perf_counter()
            try:
                response = self._http.request(
                    method, path.lstrip("/"), params=params, json=json, timeout=http_timeout
                )
            except httpx.TransportError as exc:
                _log_call(method, path, None, started, attempt, error=type(exc).__name__)
                raise
            _log_call(method, path, response.status_code, started, attempt)
            return _decode(method, path, response)

        return self._send(method, path, once, idempotent)

    def _send(self, method: str, path: str, once: Callable[[int], Any], idempotent: bool) -> Any:
        """Run `once(attempt)`: retried by the policy if idempotent, else exactly once."""
        try:
            if not idempotent:
                return once(1)
            return self.retry_policy.call(once, retry_on=_retryable, sleep=self._sleep)
        except httpx.TransportError as exc:
            raise _transport_error(method, path, exc) from None

    def _timeout_for(
        self, read_timeout: float | None, timeout: float | None = None
    ) -> httpx.Timeout | UseClientDefault:
        if timeout is not None:
            return httpx.Timeout(timeout)
        if read_timeout is None:
            return httpx.USE_CLIENT_DEFAULT
        default = self._http.timeout
        return httpx.Timeout(
            connect=default.connect, read=read_timeout, write=default.write, pool=default.pool
        )


def _retryable(exc: BaseException) -> bool:
    """No answer at all, or a gateway/overload status: worth another try of an idempotent call."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ConnectError) and exc.status in RETRYABLE_STATUSES


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


def _malformed(path: str) -> ConnectError:
    return ConnectError(f"Connect sent malformed JSON for GET {path}", method="GET", path=path)


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
    retry_after = None
    if response.status_code in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return_error = ConnectError(
        f"Connect answered HTTP {response.status_code} to {method} {path} ({detail})",
        method=method,
        path=path,
        status=response.status_code,
        code=code,
        error=error,
        retry_after=retry_after,
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
