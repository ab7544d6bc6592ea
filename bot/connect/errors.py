"""One exception type for everything that goes wrong talking to Connect."""

from __future__ import annotations


class ConnectError(Exception):
    """Connect answered with an error, or could not be reached.

    Carries Connect's own `code` and `error` when it sent them, the HTTP status, the request
    method and path, and the seconds of a Retry-After header on a 429/503. It never carries the
    API key or request headers.
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
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.error = error
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """A fault worth retrying later: no answer at all, or a gateway/overload status."""
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
