"""What a plan or a health check selects, kept with it (JSON) so a scheduled rebuild can ask
Connect again at its start: the content filter as typed, the `--uses-package` names (resolved
to items again then), or the caches of "Rebuild affected content". Shared by the features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.connect import ContentFilter, RuntimeCache, VersionFilter


@dataclass(frozen=True, slots=True)
class Criteria:
    content_filter: ContentFilter | None = None
    packages: tuple[str, ...] = ()  # any of these; resolved to GUIDs at each evaluation
    caches: tuple[RuntimeCache, ...] | None = None  # items using these (rebuild affected)
    visited_within: int | None = None  # days: leave out items nobody visited in them

    def with_visited_within(self, days: int | None) -> Criteria:
        return replace(self, visited_within=days)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"packages": list(self.packages)}
        if self.visited_within is not None:
            data["visited_within"] = self.visited_within
        if self.content_filter is not None:
            data["filter"] = _filter_json(self.content_filter)
        if self.caches is not None:
            data["caches"] = [
                {"language": c.language, "version": c.version, "image_name": c.image_name}
                for c in self.caches
            ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Criteria | None:
        """None when nothing (or nothing readable) was stored: plans made before 0010."""
        if not isinstance(data, dict):
            return None
        try:
            raw_filter = data.get("filter")
            raw_caches = data.get("caches")
            within = data.get("visited_within")
            return cls(
                content_filter=_filter(raw_filter) if isinstance(raw_filter, dict) else None,
                packages=tuple(str(p) for p in data.get("packages") or ()),
                caches=(
                    tuple(RuntimeCache.from_json(c) for c in raw_caches)
                    if isinstance(raw_caches, list)
                    else None
                ),
                visited_within=int(within) if within is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def of_filter(content_filter: ContentFilter, packages: Sequence[str] = ()) -> Criteria:
    return Criteria(content_filter=content_filter, packages=tuple(packages))


def _filter_json(f: ContentFilter) -> dict[str, Any]:
    return {
        "published": f.published,
        "content_types": sorted(f.content_types),
        "py_version": str(f.py_version) if f.py_version else None,
        "r_version": str(f.r_version) if f.r_version else None,
        "title_contains": f.title_contains,
        "image_name": f.image_name,
        "guids": sorted(f.guids),
    }


def _filter(data: dict[str, Any]) -> ContentFilter:
    def version(key: str) -> VersionFilter | None:
        text = data.get(key)
        return VersionFilter.parse(str(text)) if text else None

    published = data.get("published")
    return ContentFilter(
        published=published if isinstance(published, bool) else None,
        content_types=frozenset(str(t) for t in data.get("content_types") or ()),
        py_version=version("py_version"),
        r_version=version("r_version"),
        title_contains=data.get("title_contains"),
        image_name=data.get("image_name"),
        guids=frozenset(str(g) for g in data.get("guids") or ()),
    )
