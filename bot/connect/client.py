"""HTTP plumbing for the Connect API: auth, timeouts, cookies, retries, error decoding."""

from __future__ import annotations

import copy
import json as jsonlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import ijson

from bot import __version__
from bot.connect.errors import ConnectError
from bot.connect.keycount import KeyCount, NotAnArray
from bot.connect.retry import (
    RETRY_AFTER_STATUSES,
    RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)

if TYPE_CHECKING:
    from httpx._client import UseClientDefault  # the type of httpx.USE_CLIENT_DEFAULT

log = logging.getLogger("bot.connect")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# The most of an answer read into memory (decoded): Connect's largest non-streamed answers
# (a cache list, a task's output page, a content item's jobs) are far smaller. Past it the
# answer is refused, and no more of it is read. `GET v1/content` is streamed, not capped.
MAX_BODY = 16 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024  # of an error answer only its detail matters
MAX_VISIT_BODY = 64 * 1024  # of a content page only the status matters: the rest is dropped
_END = object()


class HttpCore:
    """One httpx.Client per Connect server, shared by the resource modules.

    Cookies persist on the client: a multi-node Connect routes task polls by a sticky-session
    cookie, and a poll that lands on another node fails with code 141.

    Idempotent requests are retried (see `RetryPolicy`) on transport errors and on 429, 502,
    503 and 504, honouring Retry-After; `retries` counts the tries after the first (None: no
    count, only the `retry_seconds` budget). Others are sent once: a lost answer is reported.

    An answer is read up to `max_body` bytes (streamed, so a huge one costs no more memory);
    an answer that is not the JSON the API promises raises a `ConnectError` (`malformed`).
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
        max_body: int = MAX_BODY,
    ) -> None:
        if not server:
            raise ValueError("CONNECT_SERVER is not set")
        if not api_key:
            raise ValueError("CONNECT_API_KEY is not set")
        self.server = server.rstrip("/")
        self.retry_policy = RetryPolicy.from_retries(retries, backoff, retry_seconds)
        self._sleep = sleep
        self.max_body = max_body
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
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

    def single_try(self) -> HttpCore:
        """This client (the same connections, cookies and key) sending every request once, for
        a caller that retries by a budget of its own: retries would otherwise multiply. Close
        the client it came from, not this one."""
        once = copy.copy(self)
        once.retry_policy = RetryPolicy(attempts=1, backoff=self.backoff)
        return once

    def redact(self, text: str) -> str:
        """`text` with the API key blanked out, for messages built from foreign errors."""
        key = self._http.headers.get("Authorization", "").removeprefix("Key ")
        return text.replace(key, "***") if key else text

    def get(
        self, path: str, *, params: dict[str, Any] | None = None, read_timeout: float | None = None
    ) -> Any:
        return self.request("GET", path, params=params, idempotent=True, read_timeout=read_timeout)

    def stream_array(
        self, path: str, *, params: dict[str, Any] | None = None, prefix: str = "item"
    ) -> Iterator[Any]:
        """GET a JSON array and yield its elements as they arrive (`prefix`: ijson's path of
        what to yield, e.g. `item.content_guid` for one field of each element, which skips
        building the elements).

        Connect answers `GET v1/content` with every item at once (no paging); on a large
        server that is tens of MB of JSON, which parsed whole would dwarf the bot itself.
        Retried like any GET, but only until the first element has been handed out.
        """
        stack, items, first, started, attempt = self._open_array(path, params, prefix)
        with stack:
            if first is _END:
                return
            yield first
            with self._reading_array(path, started, attempt):
                yield from items

    def count_strings(
        self, path: str, key: str, *, params: dict[str, Any] | None = None
    ) -> Counter[str]:
        """How many times each string value of `key` occurs in the JSON array that GET `path`
        answers, counted as it streams (`KeyCount`: for a key only the elements carry, e.g.
        `content_guid` of a bulk export of millions of hits). Nothing is handed out before the
        end, so a connection lost part-way is retried like any GET, counting from the start."""

        def once(attempt: int) -> Counter[str]:
            started = time.perf_counter()
            try:
                with self._http.stream("GET", path.lstrip("/"), params=params) as response:
                    _log_call("GET", path, response.status_code, started, attempt)
                    if not response.is_success:
                        _decode("GET", path, response, _read_capped(response, MAX_ERROR_BODY)[0])
                    counting = KeyCount(key)
                    for chunk in response.iter_bytes():
                        counting.feed(chunk)
            except httpx.TransportError as exc:
                _log_call("GET", path, None, started, attempt, error=type(exc).__name__)
                raise
            try:
                return counting.counts()
            except NotAnArray:
                raise _malformed(path, "a JSON array") from None

        counts: Counter[str] = self._send("GET", path, once, True)
        return counts

    def _open_array(
        self, path: str, params: dict[str, Any] | None, prefix: str
    ) -> tuple[ExitStack, Iterator[Any], Any, float, int]:
        """The open answer to GET `path` (a JSON array) and its first value at `prefix` (`_END`
        if none), retried like any GET until that first value is read."""

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
                    _decode("GET", path, response, _read_capped(response, MAX_ERROR_BODY)[0])
                # The pieces as the socket gives them (up to 64 KiB): joining them into larger
                # ones costs a copy and gains nothing measurable (bench/usage.py).
                reader = _ByteReader(response.iter_bytes())
                items = ijson.items(reader, prefix, use_float=True)
                first = next(items, _END)
                if first is _END and reader.opening != b"[":
                    raise _malformed(path, "a JSON array")
            except httpx.TransportError as exc:
                stack.close()
                _log_call("GET", path, None, started, attempt, error=type(exc).__name__)
                raise
            except ijson.JSONError:
                stack.close()
                raise _malformed(path, "JSON") from None
            except BaseException:
                stack.close()
                raise
            return stack, items, first, started, attempt

        opened: tuple[ExitStack, Iterator[Any], Any, float, int]
        opened = self._send("GET", path, open_stream, True)
        return opened

    @staticmethod
    @contextmanager
    def _reading_array(path: str, started: float, attempt: int) -> Iterator[None]:
        """The errors of reading an array past its first element: too late to retry."""
        try:
            yield
        except httpx.TransportError as exc:
            _log_call("GET", path, None, started, attempt, error=type(exc).__name__)
            raise _transport_error("GET", path, exc) from None
        except ijson.JSONError:
            raise _malformed(path, "JSON") from None

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
                with self._http.stream(
                    method, path.lstrip("/"), params=params, json=json, timeout=http_timeout
                ) as response:
                    limit = self.max_body if response.is_success else MAX_ERROR_BODY
                    content, complete = _read_capped(response, limit)
            except httpx.TransportError as exc:
                _log_call(method, path, None, started, attempt, error=type(exc).__name__)
                raise
            _log_call(method, path, response.status_code, started, attempt)
            if response.is_success and not complete:
                raise ConnectError(
                    f"Connect's answer to {method} {path} is larger than {_size(limit)}"
                    f" (HTTP {response.status_code}); the bot read no more of it",
                    method=method,
                    path=path,
                    status=response.status_code,
                    malformed=True,
                )
            return _decode(method, path, response, content)

        return self._send(method, path, once, idempotent)

    def visit(self, path: str, *, timeout: float) -> tuple[int, str | None]:
        """GET `{server}/{path}`, outside the API (a content URL, as a viewer would), once,
        with the key: (status, Location header). No redirect is followed; at most
        `MAX_VISIT_BODY` bytes of the page are read, and dropped. `timeout` bounds every phase
        (a cold start may take the item's whole init_timeout). A transport failure raises a
        `ConnectError` (`NotSent` if the request never left)."""
        url = f"{self.server}/{path.lstrip('/')}"
        started = time.perf_counter()
        try:
            with self._http.stream(
                "GET", url, headers={"Accept": "*/*"}, timeout=httpx.Timeout(timeout)
            ) as response:
                _read_capped(response, MAX_VISIT_BODY)
        except httpx.TransportError as exc:
            _log_call("GET", path, None, started, 1, error=type(exc).__name__, api=False)
            raise _transport_error("GET", path, exc) from None
        _log_call("GET", path, response.status_code, started, 1, api=False)
        return response.status_code, response.headers.get("Location")

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
    """The file-like `read()` that ijson wants, over httpx's chunk iterator; `opening` is the
    answer's first non-blank byte (`[` for an array)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.opening: bytes | None = None

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to learn bytes vs str
            return b""
        for chunk in self._chunks:
            if chunk:  # an empty read means end of input to ijson
                if self.opening is None and chunk.strip():
                    self.opening = chunk.lstrip()[:1]
                return chunk
        return b""


def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the (decoded) body, and whether that was all of it. A body
    whose Content-Length says it is larger is not read at all."""
    declared = response.headers.get("Content-Length", "")
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    if declared.isdigit() and int(declared) > limit and not encoded:
        return b"", False
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), False
    return bytes(body), True


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


class NotSent(ConnectError):
    """The request never reached Connect (connection refused or connect timeout): safe to retry."""


def _transport_error(method: str, path: str, exc: httpx.TransportError) -> ConnectError:
    kind = type(exc).__name__
    cls = NotSent if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) else ConnectError
    return cls(f"Could not reach Connect ({kind}) on {method} {path}", method=method, path=path)


def _malformed(path: str, expected: str) -> ConnectError:
    return ConnectError(
        f"Connect sent an unexpected answer to GET {path}: expected {expected}",
        method="GET",
        path=path,
        malformed=True,
    )


def _looks_html(response: httpx.Response, content: bytes) -> bool:
    kind = response.headers.get("Content-Type", "").lower()
    return "html" in kind or content.lstrip()[:1] == b"<"


def _decode(method: str, path: str, response: httpx.Response, content: bytes) -> Any:
    """Connect's JSON answer (None for an empty one), or a `ConnectError` saying what was wrong:
    an error status (with Connect's code and message when it sent them), or not JSON at all."""
    if response.is_success:
        if not content.strip():
            return None
        try:
            return jsonlib.loads(content)
        except ValueError:
            what = (
                "an HTML page, not JSON: is CONNECT_SERVER the Connect server itself, not a"
                " login page or a proxy?"
                if _looks_html(response, content)
                else "an answer that is not JSON"
            )
            raise ConnectError(
                f"Connect sent {what} (HTTP {response.status_code} to {method} {path})",
                method=method,
                path=path,
                status=response.status_code,
                malformed=True,
            ) from None
    code: int | None = None
    error: str | None = None
    try:
        body = jsonlib.loads(content)
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
    method: str,
    path: str,
    status: int | None,
    started: float,
    attempt: int,
    *,
    error: str = "",
    api: bool = True,
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "connect call",
        extra={
            "event": "connect_call",
            "method": method,
            "path": ("/__api__/" if api else "/") + path.lstrip("/"),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "attempt": attempt,
            "error": error or None,
        },
    )
