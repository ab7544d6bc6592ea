"""Packages: GET /__api__/v1/packages?name=… (Connect >= 2024.11.0), paged.

Which bundles of which content depend on a package. An older Connect has no such route and
answers 404; that is reported as `PackagesUnavailable` (connect-api-2.md §1, §2).
"""

from __future__ import annotations

from bot.connect.client import HttpCore
from bot.connect.errors import ConnectError, expect_shape
from bot.connect.models import PackageUse

PATH = "v1/packages"
PACKAGES_SINCE = "2024.11.0"  # the first Connect with the packages API
PAGE_SIZE = 100_000  # the packages API does not cap its page size (posit-sdk-py #396)
MAX_PAGES = 1_000  # a guard against a server that never says it is done


class PackagesUnavailable(ConnectError):
    """This Connect has no packages API (older than 2024.11.0)."""


class Packages:
    def __init__(self, http: HttpCore, *, page_size: int = PAGE_SIZE) -> None:
        self._http = http
        self.page_size = page_size

    def find(self, name: str) -> list[PackageUse]:
        """Every row Connect has for `name`, all pages, keeping only rows of that package.

        Connect matches Python names normalised and R names exactly; the rows are filtered
        here by the same rule, in case a server matches more loosely.
        """
        rows: list[PackageUse] = []
        total: int | None = None
        for page in range(1, MAX_PAGES + 1):
            params = {"name": name, "page_number": page, "page_size": self.page_size}
            try:
                body = self._http.get(PATH, params=params)
            except ConnectError as exc:
                if exc.not_found:
                    raise PackagesUnavailable(
                        f"Connect has no packages API (needs {PACKAGES_SINCE} or later)",
                        method="GET",
                        path=PATH,
                        status=404,
                        code=exc.code,
                        error=exc.error,
                    ) from None
                raise
            if not isinstance(body, dict):  # 204: no content at all
                break
            results = body.get("results") or []
            if isinstance(body.get("total"), int):
                total = body["total"]
            with expect_shape("GET", PATH, "a page of package rows"):
                page_rows = [PackageUse.from_json(r) for r in results if isinstance(r, dict)]
            rows.extend(page_rows)
            if not results or (total is not None and page * self.page_size >= total):
                break
        return [row for row in rows if row.is_named(name)]

    def of_content(self, guid: str) -> list[PackageUse]:
        """The packages of the item's active bundle (`GET v1/content/{guid}/packages`);
        empty when never deployed (204)."""
        path = f"v1/content/{guid}/packages"
        try:
            body = self._http.get(path)
        except ConnectError as exc:
            if exc.not_found and exc.code is None:  # an unknown route, not a missing item
                raise PackagesUnavailable(
                    f"Connect has no packages API (needs {PACKAGES_SINCE} or later)",
                    method="GET",
                    path=path,
                    status=404,
                ) from None
            raise
        if body is None:
            return []
        with expect_shape("GET", path, "a list of packages"):
            if not isinstance(body, list):
                raise TypeError("packages")
            return [
                PackageUse.from_json({**raw, "content_guid": guid})
                for raw in body
                if isinstance(raw, dict)
            ]
