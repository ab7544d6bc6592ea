"""Content URLs: `GET {server}/content/{guid}/` with the API key, as rsconnect and Posit
Publisher check a deploy (connect-api-2.md §11.1). The request starts the item's process when
none is live; the status alone is no verdict (a healthy API may answer `/` with 404)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.connect.client import HttpCore

MAX_REDIRECTS = 3  # rsconnect follows up to 3


@dataclass(frozen=True, slots=True)
class Visit:
    """What the content URL answered. `redirected_to`: a redirect away from the item (a login
    page, another host), not followed."""

    status: int
    redirected_to: str | None = None


def content_path(guid: str) -> str:
    return f"content/{guid}/"


class ContentUrls:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def visit(self, guid: str, *, timeout: float) -> Visit:
        """Request the item's URL once. Redirects are followed only within the item's own URL
        on this server (`/content/{guid}` -> `/content/{guid}/`), at most `MAX_REDIRECTS`."""
        path = content_path(guid)
        for _ in range(MAX_REDIRECTS + 1):
            status, location = self._http.visit(path, timeout=timeout)
            if not 300 <= status < 400 or not location:
                return Visit(status)
            inside = self._inside(location, guid)
            if inside is None:
                return Visit(status, redirected_to=location)
            path = inside
        return Visit(status, redirected_to=location)

    def _inside(self, location: str, guid: str) -> str | None:
        """The redirect's path when it stays within the item on this server, else None."""
        target = urlsplit(location)
        server = urlsplit(self._http.server)
        if target.scheme and (target.scheme, target.netloc) != (server.scheme, server.netloc):
            return None
        prefix = server.path.rstrip("/")
        path = target.path
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        if not path.startswith(f"/content/{guid}"):
            return None
        return path.lstrip("/") + (f"?{target.query}" if target.query else "")
