"""The fake Connect's build model: which runtime caches a build uses, how long it takes, and a
log of the builds that ran.

* An item uses the runtime cache of its app mode's language (`APP_MODE_LANGUAGE`; for a mode
  without a language, R if it has an R version, else Python). An item with both an `r_version`
  and a `py_version` (an R Markdown or Quarto document using reticulate, a Shiny app calling
  Python) uses both caches, its app mode's language first; this is what the bot's
  `ContentItem.runtimes` reads.
* A build is *cold* when, at the moment it starts running (it gets a build slot), a runtime cache
  it uses is missing. A cold build takes `cold_factor` times its duration. Builds starting at the
  same time on the same cold runtime are all cold: the cache appears only when one of them
  succeeds (a success repopulates every cache the item uses).

Not thread-safe by itself: `FakeConnect` calls it with its one lock held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.connect_seed import APP_MODE_LANGUAGE

# (language, version): version is None for an item naming a language without a version.
Runtime = tuple[str, str | None]


def item_runtimes(item: dict[str, Any]) -> list[Runtime]:
    """The runtimes (language, version) whose caches a content item uses, primary one first."""
    r_version, py_version = item.get("r_version"), item.get("py_version")
    language = APP_MODE_LANGUAGE.get(item["app_mode"])
    if r_version and py_version:
        both: list[Runtime] = [("R", r_version), ("Python", py_version)]
        return both[::-1] if language == "Python" else both
    if language == "R" or (language is None and r_version):
        return [("R", r_version)]
    if language == "Python" or (language is None and py_version):
        return [("Python", py_version)]
    return []


@dataclass
class BuildRecord:
    """One build that got a build slot. Times are `time.monotonic()` seconds."""

    guid: str
    task_id: str
    started: float
    duration: float  # the duration actually used (the cold factor applied if cold)
    cold: bool
    cold_runtimes: list[Runtime] = field(default_factory=list)
    ended: float | None = None
    ok: bool | None = None  # None while running

    def to_json(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "task_id": self.task_id,
            "started": self.started,
            "ended": self.ended,
            "cold": self.cold,
            "duration": self.duration,
            "cold_runtimes": [list(runtime) for runtime in self.cold_runtimes],
            "ok": self.ok,
        }


class BuildModel:
    """Per-item build durations and the log of builds that ran."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}
        self._log: list[BuildRecord] = []

    def set_durations(self, durations: dict[str, float]) -> None:
        for guid, seconds in durations.items():
            if seconds < 0:
                raise ValueError(f"negative build duration for {guid}: {seconds}")
        self.durations.update(durations)

    def start(
        self,
        guid: str,
        task_id: str,
        now: float,
        cold_runtimes: list[Runtime],
        *,
        default_seconds: float,
        cold_factor: float,
    ) -> BuildRecord:
        """Record a build starting now; a cold one takes `cold_factor` times its duration."""
        cold = bool(cold_runtimes)
        duration = self.durations.get(guid, default_seconds)
        if cold:
            duration *= cold_factor
        record = BuildRecord(guid, task_id, now, duration, cold, list(cold_runtimes))
        self._log.append(record)
        return record

    @staticmethod
    def finish(record: BuildRecord, now: float, ok: bool) -> None:
        record.ended = now
        record.ok = ok

    def cold_builds(self) -> list[str]:
        return [record.guid for record in self._log if record.cold]

    def log(self, include_running: bool = False) -> list[dict[str, Any]]:
        return [
            record.to_json() for record in self._log if include_running or record.ended is not None
        ]

    def clear(self) -> None:
        self._log.clear()
