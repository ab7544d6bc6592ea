"""Version filters in rsconnect's vocabulary: `3.9.5`, `==3.9.5`, `>=4.2`, `<3.10` ..."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPERATORS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_FILTER = re.compile(r"^\s*(>=|<=|==|>|<|=)?\s*(\d+(?:\.\d+){0,3})\s*$")


def parse_version(text: str) -> tuple[int, ...]:
    """`3.9.17` -> (3, 9, 17). Trailing junk such as `-rc1` or `+local` is ignored."""
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", text or "")
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


@dataclass(frozen=True, slots=True)
class VersionFilter:
    op: str
    version: tuple[int, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> VersionFilter:
        match = _FILTER.match(text)
        if not match:
            raise ValueError(
                f"{text!r} is not a version filter; use a version such as 3.9.5, "
                "optionally after one of >, <, >=, <=, =, =="
            )
        op = match.group(1) or "=="
        return cls(
            op="==" if op == "=" else op, version=parse_version(match.group(2)), text=text.strip()
        )

    def matches(self, version: str | None) -> bool:
        if not version:
            return False  # rsconnect drops items without that runtime
        try:
            candidate = parse_version(version)
        except ValueError:
            return False
        # Compare at equal length, so "4.2" == "4.2.0" and ">=3.9" admits "3.9.17".
        width = max(len(candidate), len(self.version))
        wanted = self.version + (0,) * (width - len(self.version))
        if self.op == "==" and len(self.version) < len(candidate):
            # "==3.9" means any 3.9.x
            return candidate[: len(self.version)] == self.version
        candidate = candidate + (0,) * (width - len(candidate))
        return _OPERATORS[self.op](candidate, wanted)

    def __str__(self) -> str:
        return f"{self.op}{'.'.join(map(str, self.version))}"
