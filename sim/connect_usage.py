"""Simulated usage for the Connect simulator (issue 20): who visits what.

Each published item gets a rate of visits per day from a deterministic, seeded Zipf-like
spread: the items are shuffled by the seed, about a fifth are never visited, and the i-th of the
others gets `TOP_PER_DAY / i`. Visits happen at evenly spaced times going back from the model's
`anchor` (when the simulator started), so the same window always holds the same visits.

Served as Connect does (connect-api-2.md §9): the hits endpoint (2025.04+, one bare array), and
the older content visits (every type except Shiny) and Shiny usage endpoints (keyset paging,
`limit` <= 500).
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TOP_PER_DAY = 40.0  # the most visited item's visits per day
UNVISITED_SHARE = 0.2  # about a fifth of the items are never visited
SHINY_MODES = frozenset({"shiny", "rmd-shiny", "python-shiny"})
MAX_LIMIT = 500
DAY = 86_400.0
HITS_CHUNK = 1 << 20  # the hits body is written in chunks of about this many bytes
_HIT_DATA = '"data":{"path":"/","user_agent":"Mozilla/5.0 (simulated)"}'


@dataclass(frozen=True, slots=True)
class HitsBody:
    """A pre-encoded JSON body in chunks (written one after the other, never joined)."""

    chunks: tuple[bytes | memoryview, ...]

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True, slots=True)
class _HitLog:
    """Every hit from `since` on, oldest first, as JSON rows each followed by a comma; a
    window's answer is a slice of it, in chunks of about HITS_CHUNK bytes."""

    visited: tuple[tuple[str, float], ...]
    since: float
    body: bytes
    moments: array[float]
    starts: array[int]  # each row's offset in `body`, and the end of the last

    @classmethod
    def render(
        cls,
        visited: tuple[tuple[str, float], ...],
        visits: Iterable[tuple[float, dict[str, Any]]],
        since: float,
    ) -> _HitLog:
        moments, starts, rows, offset = array("d"), array("q"), [], 0
        for n, (moment, item) in enumerate(visits, start=1):
            row = (
                f'{{"id":"{n}","user_guid":null,"content_guid":"{item["guid"]}",'
                f'"timestamp":"{_time(moment)}",{_HIT_DATA}}},'
            ).encode()
            moments.append(moment)
            starts.append(offset)
            rows.append(row)
            offset += len(row)
        starts.append(offset)
        return cls(visited, since, b"".join(rows), moments, starts)

    def window(self, since: float, until: float) -> HitsBody:
        first, end = bisect_left(self.moments, since), bisect_left(self.moments, until)
        rows = memoryview(self.body)[self.starts[first] : max(0, self.starts[end] - 1)]
        pieces = [rows[at : at + HITS_CHUNK] for at in range(0, len(rows), HITS_CHUNK)]
        return HitsBody((b"[", *pieces, b"]"))


def zipf_rates(guids: Iterable[str], seed: int) -> dict[str, float]:
    """Visits per day per GUID: a seeded shuffle, the first fifth unvisited, then 1/rank."""
    ordered = sorted(guids)
    random.Random(seed).shuffle(ordered)
    unvisited = round(len(ordered) * UNVISITED_SHARE)
    rates = {guid: 0.0 for guid in ordered[:unvisited]}
    for rank, guid in enumerate(ordered[unvisited:], start=1):
        rates[guid] = TOP_PER_DAY / rank
    return rates


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str | None, default: float) -> float:
    if not text:
        return default
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class UsageModel:
    """Visit times per item; `rates` may be set by tests (`FakeConnect.set_usage`)."""

    def __init__(self, seed: int | None, anchor: float) -> None:
        self.seed = seed
        self.anchor = anchor
        self.rates: dict[str, float] | None = None  # assigned at first use
        self.overrides: dict[str, float] = {}
        self._hit_log: _HitLog | None = None  # rendered at the first hits request

    def rates_for(self, guids: Iterable[str]) -> dict[str, float]:
        if self.rates is None:
            self.rates = zipf_rates(guids, self.seed) if self.seed is not None else {}
        return {**self.rates, **self.overrides}

    def visits(
        self, items: dict[str, dict[str, Any]], since: float, until: float
    ) -> Iterator[tuple[float, dict[str, Any]]]:
        """(time, item) of every visit in [since, until), oldest first."""
        rates = self.rates_for(g for g, item in items.items() if item.get("published", True))
        found: list[tuple[float, str]] = []
        for guid, per_day in rates.items():
            if per_day <= 0 or guid not in items:
                continue
            interval = DAY / per_day
            moment = self.anchor - interval / 2
            while moment >= since:
                if moment < until:
                    found.append((moment, guid))
                moment -= interval
        found.sort()
        for moment, guid in found:
            yield moment, items[guid]

    def hits(self, items: dict[str, dict[str, Any]], since: float, until: float) -> HitsBody:
        """The hits endpoint's bare JSON array, compact as Connect (Go) writes it: a slice of
        the hit log (every hit from the earliest `since` asked, rendered once per set of
        visited items), so a bench's millions of hits are written as fast as the socket takes
        them for any window, a plan's moving one included."""
        rates = self.rates_for(g for g, item in items.items() if item.get("published", True))
        visited = tuple(sorted((g, r) for g, r in rates.items() if r > 0 and g in items))
        log = self._hit_log
        if log is None or log.visited != visited or since < log.since:
            log = self._hit_log = _HitLog.render(
                visited, self.visits(items, since, math.inf), since
            )
        return log.window(since, until)

    def page(
        self,
        items: dict[str, dict[str, Any]],
        query: dict[str, str],
        *,
        shiny: bool,
        base: str,
    ) -> dict[str, Any]:
        """One page of the visits (`shiny` False) or Shiny usage endpoint."""
        since = parse_time(query.get("from"), 0.0)
        until = parse_time(query.get("to"), self.anchor + DAY) + 1e-6  # `to` is inclusive
        limit = max(1, min(MAX_LIMIT, int(query.get("limit") or 20)))
        start = int(query.get("next") or 0)
        rows = [
            (moment, item)
            for moment, item in self.visits(items, since, until)
            if (item.get("app_mode") in SHINY_MODES) == shiny
        ]
        chosen = rows[start : start + limit]
        results = [
            (
                {
                    "content_guid": item["guid"],
                    "user_guid": None,
                    "started": _time(moment),
                    "ended": _time(moment + 60),
                    "data_version": 1,
                }
                if shiny
                else {
                    "content_guid": item["guid"],
                    "user_guid": None,
                    "variant_key": None,
                    "rendering_id": None,
                    "bundle_id": item.get("bundle_id"),
                    "time": _time(moment),
                    "data_version": 3,
                    "path": "/",
                }
            )
            for moment, item in chosen
        ]
        after = start + len(chosen)
        more = after < len(rows)
        return {
            "paging": {
                "cursors": {
                    "previous": str(start) if start else None,
                    "next": str(after) if more else None,
                },
                "first": base,
                "next": f"{base}?next={after}" if more else None,
            },
            "results": results,
        }
