"""Installed runtimes: GET v1/server_settings/r | /python (connect-api-2.md §7.1).

Content whose R or Python version, on its image, is not listed any more cannot start (§11.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.connect.client import HttpCore
from bot.connect.errors import expect_shape
from bot.connect.models import LOCAL_IMAGE

LANGUAGES = {"R": "r", "Python": "python"}  # the language as the bot names it -> the path


@dataclass(frozen=True, slots=True)
class Installation:
    """One interpreter Connect offers: `language` is "R" or "Python"."""

    language: str
    version: str
    image_name: str = LOCAL_IMAGE

    @classmethod
    def from_json(cls, language: str, data: dict[str, Any]) -> Installation:
        return cls(
            language=language,
            version=str(data["version"]),
            image_name=str(data.get("image_name") or LOCAL_IMAGE),
        )


class Runtimes:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def installed(self, language: str) -> list[Installation]:
        """The installations of `language` ("R" or "Python") Connect lists."""
        path = f"v1/server_settings/{LANGUAGES[language]}"
        body = self._http.get(path)
        with expect_shape("GET", path, 'an object with an "installations" list'):
            found = body["installations"] or []
            if not isinstance(found, list):
                raise TypeError("installations")
            return [Installation.from_json(language, raw) for raw in found]

    def all_installed(self) -> list[Installation]:
        """R's and Python's installations (two GETs)."""
        return [found for language in LANGUAGES for found in self.installed(language)]
