"""Jobs of a content item: GET v1/content/{guid}/jobs, a job's log and its error summary
(connect-api-2.md §6). Jobs carry no task id; `key` names a job in URLs."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from bot.connect.client import HttpCore
from bot.connect.errors import expect_shape
from bot.connect.models import Job

DEFAULT_LOG_LINES = 50
MAX_LOG_LINES = 1000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of a job's log (`source` is `stdout` or `stderr`)."""

    source: str
    timestamp: str
    data: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogEntry:
        return cls(
            source=str(data.get("source") or ""),
            timestamp=str(data.get("timestamp") or ""),
            data=str(data["data"]),
        )


@dataclass(frozen=True, slots=True)
class JobError:
    """Connect's summary of why a job failed (`GET …/jobs/{key}/error`)."""

    summary: str
    code: int | None = None
    help_url: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobError:
        code = data.get("code")
        return cls(
            summary=str(data["summary"]),
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            help_url=str(data.get("help_url") or ""),
        )


class Jobs:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def list(self, guid: str) -> builtins.list[Job]:
        """The item's jobs as Connect lists them (running and recent ones)."""
        path = f"v1/content/{guid}/jobs"
        body = self._http.get(path)
        with expect_shape("GET", path, "a list of jobs"):
            if body is None:  # an empty answer: no jobs
                return []
            if not isinstance(body, builtins.list):
                raise TypeError("jobs")
            return [Job.from_json(raw) for raw in body if isinstance(raw, dict)]

    def log(
        self, guid: str, key: str, *, max_lines: int = DEFAULT_LOG_LINES
    ) -> builtins.list[LogEntry]:
        """The last `max_lines` lines of a job's log, oldest first."""
        path = f"v1/content/{guid}/jobs/{key}/log"
        lines = max(1, min(MAX_LOG_LINES, max_lines))
        body = self._http.get(path, params={"maxLogLines": lines})
        with expect_shape("GET", path, 'an object with an "entries" list'):
            if body is None:
                return []
            entries = body["entries"] or []
            if not isinstance(entries, builtins.list):
                raise TypeError("entries")
            return [LogEntry.from_json(raw) for raw in entries]

    def error(self, guid: str, key: str) -> JobError | None:
        """Connect's error summary of a job, or None (204: no error recorded)."""
        path = f"v1/content/{guid}/jobs/{key}/error"
        body = self._http.get(path)
        if body is None:
            return None
        with expect_shape("GET", path, "an error summary"):
            return JobError.from_json(body)
