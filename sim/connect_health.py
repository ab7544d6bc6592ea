"""The fake Connect's health model: system changes that break compiled packages, removed
runtimes, and whether an item's process starts (issue 19; connect-api-2.md §6, §11).

* A system change (`FakeConnect.system_change("gdal", breaks={"R": ["sf", "terra"]})`) bumps
  the system's serial. Every runtime cache remembers the serial it was created under (the
  seed's caches: 0), and every item the serial of the cache its last successful build used.
* An item fails to start when its active bundle uses a package a change broke (in that
  language) and its last successful build used a cache created before that change: the cache
  still holds the package compiled against the old library. A build that finds the cache there
  re-uses it (the item stays broken); a build that finds it deleted creates it fresh (fixed).
* An item whose R or Python version (on its image) was removed cannot start either.

Not thread-safe by itself: `FakeConnect` calls it with its one lock held.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The library a well-known system change replaces: what the loader cannot find afterwards.
LIBRARIES = {
    "gdal": "libgdal.so.30",
    "openblas": "libopenblas.so.0",
    "proj": "libproj.so.22",
    "geos": "libgeos_c.so.1",
    "icu": "libicuuc.so.70",
    "openssl": "libssl.so.1.1",
}

# The job tag of the process that serves each interactive app mode (connect-api-2.md §6).
RUN_TAGS = {
    "shiny": "run_app",
    "rmd-shiny": "run_app",
    "quarto-shiny": "run_app",
    "python-shiny": "run_pyshiny_app",
    "python-dash": "run_dash_app",
    "python-streamlit": "run_streamlit",
    "python-bokeh": "run_bokeh_app",
    "python-panel": "run_panel_app",
    "python-gradio": "run_gradio_app",
    "jupyter-voila": "run_voila_app",
    "api": "run_api",
    "python-api": "run_python_api",
    "python-fastapi": "run_fastapi_app",
    "tensorflow-saved-model": "run_tensorflow",
}
# APIs: a healthy one may have no route at `/` and answer it with 404.
API_MODES = frozenset({"api", "python-api", "python-fastapi", "tensorflow-saved-model"})
RENDER_TAGS = {
    "rmd-static": "build_report",
    "quarto-static": "build_report",
    "jupyter-static": "build_jupyter",
}

Runtime = tuple[str, str, str]  # (language "R"/"Python", version, image name)


@dataclass(frozen=True)
class SystemChange:
    serial: int
    name: str
    library: str
    breaks: Mapping[str, frozenset[str]]  # language ("R"/"Python") -> package names


@dataclass(frozen=True)
class Breakage:
    """Why an item cannot start: the job's log lines and Connect's error summary."""

    log: tuple[str, ...]
    summary: str


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _same_package(language: str, a: str, b: str) -> bool:
    return pep503(a) == pep503(b) if language == "Python" else a == b


@dataclass
class HealthModel:
    serial: int = 0
    changes: list[SystemChange] = field(default_factory=list)
    cache_serials: dict[tuple[str, str, str], int] = field(default_factory=dict)
    built_serials: dict[tuple[str, str], int] = field(default_factory=dict)  # (guid, language)
    removed: set[Runtime] = field(default_factory=set)

    def system_change(
        self, name: str, breaks: Mapping[str, Iterable[str]], library: str | None = None
    ) -> SystemChange:
        self.serial += 1
        normalised = {_language(lang): frozenset(names) for lang, names in breaks.items()}
        lib = library or LIBRARIES.get(name.lower(), f"lib{name.lower()}.so")
        change = SystemChange(self.serial, name, lib, normalised)
        self.changes.append(change)
        return change

    def cache_created(self, key: tuple[str, str, str]) -> None:
        self.cache_serials[key] = self.serial

    def cache_serial(self, key: tuple[str, str, str]) -> int:
        return self.cache_serials.get(key, 0)

    def built(self, guid: str, language: str, serial: int) -> None:
        """The item's last successful build used a cache created under `serial`."""
        self.built_serials[(guid, language)] = serial

    def breakage(
        self,
        item: dict[str, Any],
        runtimes: Iterable[tuple[str, str | None]],
        packages: Iterable[dict[str, Any]],
    ) -> Breakage | None:
        """Why `item` (its runtimes; its active bundle's package rows) cannot start, or None."""
        image = item.get("image_name") or "Local"
        runtimes = list(runtimes)
        for language, version in runtimes:
            if version and (language, version, image) in self.removed:
                return _runtime_gone(language, version, image)
        used = [(str(row["language"]), str(row["name"])) for row in packages]
        for language, _ in runtimes:
            built = self.built_serials.get((item["guid"], language), 0)
            for change in self.changes:
                if change.serial <= built:
                    continue
                for row_language, name in used:
                    if _language(row_language) != language:
                        continue
                    broken = change.breaks.get(language, frozenset())
                    if any(_same_package(language, name, b) for b in broken):
                        return _load_failure(language, name, change.library, item)
        return None


def _language(name: str) -> str:
    return {"r": "R", "python": "Python"}.get(name.lower(), name)


def _runtime_gone(language: str, version: str, image: str) -> Breakage:
    where = "Local" if image == "Local" else image
    message = (
        f"Cannot find compatible environment: no compatible {where} environment with"
        f" {language} version {version}"
    )
    return Breakage(log=(message,), summary=message)


def _load_failure(language: str, package: str, library: str, item: dict[str, Any]) -> Breakage:
    missing = f"{library}: cannot open shared object file: No such file or directory"
    summary = "The application exited unexpectedly during startup (exit code 1). See the logs."
    if language == "R":
        version = item.get("r_version") or ""
        so = f"/opt/rstudio-connect/mnt/app/packrat/lib/x86_64-pc-linux-gnu/{version}/{package}"
        return Breakage(
            log=(
                f"[rsc-session] Content GUID: {item['guid']}",
                "Loading required package: shiny" if "shiny" in item["app_mode"] else "",
                f"Error: package or namespace load failed for '{package}' in"
                " dyn.load(file, DLLpath = DLLpath, ...):",
                f" unable to load shared object '{so}/libs/{package}.so':",
                f"  {missing}",
                "Execution halted",
            ),
            summary=summary,
        )
    module = pep503(package).replace("-", "_")
    return Breakage(
        log=(
            f"[rsc-session] Content GUID: {item['guid']}",
            "Traceback (most recent call last):",
            '  File "/opt/rstudio-connect/mnt/app/app.py", line 3, in <module>',
            f"    import {module}",
            f"ImportError: {missing}",
        ),
        summary=summary,
    )


def healthy_log(item: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"[rsc-session] Content GUID: {item['guid']}",
        "Listening on http://127.0.0.1:39341",
    )
