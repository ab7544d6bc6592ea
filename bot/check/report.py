"""The check's output: one marked line per check, redacted, and a closing summary."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Literal

from bot.logs import Redactor

Status = Literal["ok", "warn", "fail"]

MARKS: dict[Status, str] = {"ok": "✔", "warn": "!", "fail": "✘"}


class Report:
    """Prints each line as soon as it is known (slow network checks show progress)."""

    def __init__(self, out: Callable[[str], object], secrets: list[str]) -> None:
        self._out = out
        self._redact = Redactor(secrets)
        self.prefix = ""
        self.counts: dict[Status, int] = {"ok": 0, "warn": 0, "fail": 0}

    def scoped(self, label: str) -> Report:
        """The same report with every line headed `[label]` (one of several Connect servers)."""
        child = copy.copy(self)  # shares the output, the redactor and the counts
        child.prefix = f"{self.prefix}[{label}] "
        return child

    def line(self, status: Status, text: str) -> None:
        self.counts[status] += 1
        self._out(self._redact(f"{MARKS[status]} {self.prefix}{text}"))

    def ok(self, text: str) -> None:
        self.line("ok", text)

    def warn(self, text: str) -> None:
        self.line("warn", text)

    def fail(self, text: str) -> None:
        self.line("fail", text)

    def summary(self) -> None:
        failures, warnings = self.counts["fail"], self.counts["warn"]
        if failures:
            noun = "problem" if failures == 1 else "problems"
            self._out(
                f"{failures} {noun} to fix (marked {MARKS['fail']}), then run the check again."
            )
        elif warnings:
            self._out(f"Ready to run `connect-bot serve`; read the {warnings} note(s) marked !.")
        else:
            self._out("Everything is in place: `connect-bot serve` is ready to run.")
