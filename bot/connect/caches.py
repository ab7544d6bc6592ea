"""Runtime caches: GET/DELETE /__api__/v1/system/caches/runtime (admin only, Connect >= 2023.05)."""

from __future__ import annotations

from bot.connect.client import HttpCore
from bot.connect.errors import expect_shape
from bot.connect.models import CacheDeletion, RuntimeCache

PATH = "v1/system/caches/runtime"


class RuntimeCaches:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def list(self) -> list[RuntimeCache]:
        body = self._http.get(PATH)
        with expect_shape("GET", PATH, 'an object with a "caches" list'):
            return [RuntimeCache.from_json(c) for c in body["caches"]]

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
        answer = self._http.delete(PATH, json=body, idempotent=dry_run)
        with expect_shape("DELETE", PATH, "the cache and its task_id"):
            return CacheDeletion.from_json(answer)
