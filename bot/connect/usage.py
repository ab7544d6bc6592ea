"""Usage instrumentation: how many visits each content item had over [since, until)
(connect-api-2.md §9).

* Connect 2025.04 and later: `GET v1/instrumentation/content/hits`, one bare JSON array meant
  for bulk export (millions of entries on a busy server). It is streamed, reading only each
  entry's `content_guid`, and always asked with a narrow `from`.
* Older servers: `GET v1/instrumentation/content/visits` (every type except Shiny) and
  `GET v1/instrumentation/shiny/usage` (Shiny sessions), keyset paging, `limit` <= 500.

A 404 (too old a server) or 403 (the key may not read usage) is no error: it is `NoUsage`, with
the reason the plan card gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.connect.client import HttpCore
from bot.connect.errors import ConnectError, expect_shape
from bot.connect.versions import parse_version

HITS = "v1/instrumentation/content/hits"
VISITS = "v1/instrumentation/content/visits"
SHINY = "v1/instrumentation/shiny/usage"
HITS_SINCE = (2025, 4)  # the first Connect with the hits endpoint
PAGE_LIMIT = 500  # the most the paged endpoints answer at once
MAX_PAGES = 100_000  # a guard against a server whose cursor never ends


@dataclass(frozen=True, slots=True)
class Usage:
    """Visits per content GUID over [since, until); `source`: `hits` or `visits` (the older
    visits + Shiny usage endpoints)."""

    visits: dict[str, int]
    since: datetime
    until: datetime
    source: str

    @property
    def total(self) -> int:
        return sum(self.visits.values())


@dataclass(frozen=True, slots=True)
class NoUsage:
    """Connect gave no usage: `reason` says why, for the plan card."""

    reason: str
    status: int | None = None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_version(version: str | None) -> str:
    """`2024.09.1` -> `2024.09` (what an admin calls the release)."""
    if not version:
        return "This Connect"
    try:
        parts = parse_version(version)
    except ValueError:
        return f"Connect {version}"
    return "Connect " + ".".join(f"{n:02d}" if i else str(n) for i, n in enumerate(parts[:2]))


def has_hits(version: str | None) -> bool:
    try:
        return version is not None and parse_version(version)[:2] >= HITS_SINCE
    except ValueError:
        return False


class Instrumentation:
    """Usage counts from one Connect server (an administrator's key sees all content)."""

    def __init__(self, http: HttpCore, *, page_limit: int = PAGE_LIMIT) -> None:
        self._http = http
        self.page_limit = max(1, min(PAGE_LIMIT, page_limit))

    def visits(self, since: datetime, until: datetime, *, version: str | None) -> Usage | NoUsage:
        """Visits per GUID over [since, until). `version`: the server's (from
        `server_settings`); it decides which endpoint is asked first. Raises ConnectError for
        anything but 404 and 403 (Connect down, malformed answers)."""
        window = {"from": rfc3339(since), "to": rfc3339(until)}
        if has_hits(version):
            try:
                counts = self._hits(window)
                return Usage(counts, since, until, "hits")
            except ConnectError as exc:
                if exc.status not in (403, 404):
                    raise
                # A 404 here: a server reporting a newer version than it is; try the older API.
                if exc.status == 403:
                    return _refused(exc, version)
        try:
            counts = Counter(self._paged(VISITS, window))
            counts.update(self._paged(SHINY, window))
        except ConnectError as exc:
            if exc.status == 404:
                return NoUsage(f"{short_version(version)} has no usage API", 404)
            if exc.status == 403:
                return _refused(exc, version)
            raise
        return Usage(dict(counts), since, until, "visits")

    def _hits(self, window: dict[str, str]) -> dict[str, int]:
        """Hits per GUID, counted as they stream (`HttpCore.count_strings`): a hit's `data`
        holds `path` and `user_agent`, so `content_guid` is the hit's own."""
        return dict(self._http.count_strings(HITS, "content_guid", params=window))

    def _paged(self, path: str, window: dict[str, str]) -> Iterator[str]:
        """The `content_guid` of every row of a keyset-paged endpoint, page after page."""
        params: dict[str, Any] = {**window, "limit": self.page_limit, "asc_order": "true"}
        for _ in range(MAX_PAGES):
            body = self._http.get(path, params=params)
            with expect_shape("GET", path, "a page of usage rows"):
                results = body.get("results") or []
                yield from _guids(results)
                cursor = (body.get("paging") or {}).get("cursors", {}).get("next")
            if not results or not cursor:
                return
            params = {**params, "next": cursor}


def _guids(rows: Iterable[Any]) -> Iterator[str]:
    for row in rows:
        guid = row.get("content_guid") if isinstance(row, dict) else None
        if isinstance(guid, str):
            yield guid


def _refused(exc: ConnectError, version: str | None) -> NoUsage:
    why = f": {exc.error}" if exc.error else ""
    return NoUsage(f"{short_version(version)} refused the usage API (403{why})", 403)
