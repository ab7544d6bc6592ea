"""Content: list, get, client-side search (rsconnect `content search`), build and jobs."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bot.connect.client import HttpCore
from bot.connect.errors import expect_shape
from bot.connect.models import ContentItem
from bot.connect.versions import VersionFilter


@dataclass(frozen=True, slots=True)
class ContentFilter:
    """The filters of `rsconnect content search`, applied client-side as rsconnect does."""

    published: bool | None = None  # True: only published; False: only unpublished
    content_types: frozenset[str] = field(default_factory=frozenset)
    py_version: VersionFilter | None = None
    r_version: VersionFilter | None = None
    title_contains: str | None = None
    image_name: str | None = None
    guids: frozenset[str] = field(default_factory=frozenset)

    def matches(self, item: ContentItem) -> bool:
        if self.published is not None and item.published != self.published:
            return False
        if self.guids and item.guid not in self.guids:
            return False
        if self.content_types and item.app_mode not in self.content_types:
            return False
        if self.title_contains is not None and self.title_contains not in item.title:
            return False
        if self.py_version is not None and not self.py_version.matches(item.py_version):
            return False
        if self.r_version is not None and not self.r_version.matches(item.r_version):
            return False
        return self.image_name is None or item.image == self.image_name


class Content:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def list(self) -> list[ContentItem]:
        """Every content item the key can see, newest deployment first (Connect's order)."""
        return list(self.iter())

    def iter(self) -> Iterator[ContentItem]:
        # One GET, as rsconnect does; streamed, and each item slimmed as it is read.
        for raw in self._http.stream_array("v1/content"):
            with expect_shape("GET", "v1/content", "a list of content items"):
                item = ContentItem.from_json(raw)
            yield item

    def get(self, guid: str) -> ContentItem:
        path = f"v1/content/{guid}"
        body = self._http.get(path)
        with expect_shape("GET", path, "a content item"):
            return ContentItem.from_json(body)

    def search(self, content_filter: ContentFilter) -> builtins.list[ContentItem]:
        return [item for item in self.iter() if content_filter.matches(item)]

    def build(self, guid: str, *, bundle_id: str | None = None) -> str:
        """Start a build (environment restore) of the item's bundle; returns the task id.

        Never retried here: a lost answer may still have started a build.
        """
        path = f"v1/content/{guid}/build"
        body = self._http.post(path, json={"bundle_id": bundle_id})
        with expect_shape("POST", path, "an object with a task_id"):
            task_id = body["task_id"]
            if not isinstance(task_id, str | int) or not str(task_id):
                raise TypeError("task_id")
            return str(task_id)


def filter_items(items: Iterable[ContentItem], content_filter: ContentFilter) -> list[ContentItem]:
    return [item for item in items if content_filter.matches(item)]
