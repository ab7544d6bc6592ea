"""Runtime caches: GET/DELETE /__api__/v1/system/caches/runtime (admin only, Connect >= 2023.05)."""

from __future__ import annotations

from bot.connect.client import HttpCore
from bot.connect.models import CacheDeletion, RuntimeCache

PATH = "v1/system/caches/runtime"


class RuntimeCaches:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def list(self) -> list[RuntimeCache]:
        body = self._http.get(PATH) or {}
        return [RuntimeCache.from_json(c) for c in body.get("caches", [])]

    def delete(self, cache: RuntimeCache, *, dry_run: bool) -> CacheDeletion:
        """Ask Connect to delete one cache. A dry run checks the target and returns no task.

        Only the dry run is retried on gateway errors: repeating it changes nothing. A real
        deletion is sent once; a lost answer is reported, not guessed at.
        """
        body = {
            "language": cache.language,
            "version": cache.version,
            "image_name": cache.image_name,
            "dry_run": dry_run,
        }
        return CacheDeletion.from_json(self._http.delete(PATH, json=body, idempotent=dry_run))
