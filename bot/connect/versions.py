"""Version filters in rsconnect's vocabulary: `3.9.5`, `==3.9.5`, `>=4.2`, `<3.10` ...

Built on `packaging`: a filter becomes a PEP 440 `Specifier` and a version Connect reports
becomes a `Version` of its leading release numbers, so `4.2` == `4.2.0`, `>=3.9` admits
`3.9.17`, and `==3.9` (rsconnect's "any 3.9.x") is `==3.9.*`. Suffixes such as `-rc1`,
`+local` or `-dev+103-g11242ee129` are ignored, as rsconnect's users expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.specifiers import Specifier
from packaging.version import Version

_FILTER = re.compile(r"^\s*(>=|<=|==|>|<|=)?\s*(\d+(?:\.\d+){0,3})\s*$")
_LEADING_RELEASE = re.compile(r"^\s*(\d+(?:\.\d+)*)")


def release(text: str | None) -> Version:
    """The release a version string starts with: `3.9.17-rc1+local` -> Version('3.9.17').

    What follows the leading `N.N...` numbers is ignored, whatever it is; a string that does
    not start with a number is no version (ValueError).
    """
    match = _LEADING_RELEASE.match(text or "")
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return Version(match.group(1))


def parse_version(text: str) -> tuple[int, ...]:
    """`3.9.17` -> (3, 9, 17). Trailing junk such as `-rc1` or `+local` is ignored."""
    return release(text).release


@dataclass(frozen=True, slots=True)
class VersionFilter:
    op: str
    version: tuple[int, ...]
    text: str
    specifier: Specifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wanted = ".".join(map(str, self.version))
        # rsconnect's `==3.9` means any 3.9.x: PEP 440's prefix match, which also pads
        # (`==4.2.0.*` admits `4.2`).
        spec = f"=={wanted}.*" if self.op == "==" else f"{self.op}{wanted}"
        object.__setattr__(self, "specifier", Specifier(spec))

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
            candidate = release(version)
        except ValueError:
            return False
        return self.specifier.contains(candidate, prereleases=True)

    def __str__(self) -> str:
        return f"{self.op}{'.'.join(map(str, self.version))}"
