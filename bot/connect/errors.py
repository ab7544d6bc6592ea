"""One exception type for everything that goes wrong talking to Connect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ConnectError(Exception):
    """Connect answered with an error, or could not be reached.

    Carries Connect's own `code` and `error` when it sent them, the HTTP status, the request
    method and path, and the seconds of a Retry-After header on a 429/503. It never carries the
    API key or request headers. `malformed`: Connect (or something in front of it) answered,
    but not with what the API promises (HTML, another JSON shape, too large a body); the
    request may well have been acted on, and asking again is unlikely to help.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status: int | None = None,
        code: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
        malformed: bool = False,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.error = error
        self.retry_after = retry_after
        self.malformed = malformed

    @property
    def transient(self) -> bool:
        """A fault worth retrying later: no answer at all, or a gateway/overload status."""
        if self.malformed:
            return False
        return self.status is None or self.status in (429, 502, 503, 504)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def reason(self) -> str:
        """Short human text: Connect's own message when it gave one."""
        if self.error:
            return self.error
        return str(self)


@contextmanager
def expect_shape(method: str, path: str, expected: str) -> Iterator[None]:
    """Turn a JSON answer of another shape than the API's, met while reading it into models
    (a missing key, a list for an object, text for a number), into a `ConnectError` that says
    what was expected, instead of a KeyError or TypeError deep in a worker."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ConnectError(
            f"Connect sent an unexpected answer to {method} {path}: expected {expected}"
            f" ({type(exc).__name__})",
            method=method,
            path=path,
            malformed=True,
        ) from None
