"""Typed views of Connect JSON, keeping only the fields the bot uses (memory matters)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# From posit-sdk-py's ContentItem.is_interactive / is_rendered.
INTERACTIVE_MODES = frozenset(
    {
        "api",
        "jupyter-voila",
        "python-api",
        "python-bokeh",
        "python-dash",
        "python-fastapi",
        "python-gradio",
        "python-panel",
        "python-shiny",
        "python-streamlit",
        "quarto-shiny",
        "rmd-shiny",
        "shiny",
        "tensorflow-saved-model",
    }
)
RENDERED_MODES = frozenset({"rmd-static", "jupyter-static", "quarto-static"})
LOCAL_IMAGE = "Local"
# Job tags of an environment restore, which is what a build runs (connect-api-2.md §6).
RESTORE_TAGS = frozenset({"packrat_restore", "python_restore"})
JOB_ACTIVE = 0  # Job.status: 0 active, 1 finished, 2 finalized, 3 skipped


@dataclass(frozen=True, slots=True)
class RuntimeCache:
    language: str
    version: str
    image_name: str = LOCAL_IMAGE

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuntimeCache:
        return cls(
            language=str(data["language"]),
            version=str(data["version"]),
            image_name=str(data.get("image_name") or LOCAL_IMAGE),
        )

    def matches(self, language: str, version: str, image_name: str = LOCAL_IMAGE) -> bool:
        return (
            self.language.lower() == language.lower()
            and self.version == version
            and self.image_name == image_name
        )

    @property
    def label(self) -> str:
        return f"{self.language} {self.version} ({self.image_name})"


@dataclass(frozen=True, slots=True)
class CacheDeletion:
    """Connect's answer to DELETE /v1/system/caches/runtime; `task_id` is None for a dry run."""

    cache: RuntimeCache
    task_id: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheDeletion:
        return cls(cache=RuntimeCache.from_json(data), task_id=data.get("task_id") or None)


@dataclass(slots=True)
class Task:
    id: str
    finished: bool
    code: int
    error: str
    last: int
    output: list[str] = field(default_factory=list)
    result: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(
            id=str(data["id"]),
            finished=bool(data.get("finished")),
            code=int(data.get("code") or 0),
            error=str(data.get("error") or ""),
            last=int(data.get("last") or 0),
            output=list(data.get("output") or []),
            result=data.get("result"),
        )

    @property
    def succeeded(self) -> bool:
        # A finished task with a non-zero code failed, whatever else it says (rsconnect-python#746).
        return self.finished and self.code == 0

    @property
    def failure_reason(self) -> str:
        if self.succeeded:
            return ""
        if not self.finished:
            return "the task has not finished"
        if self.error:
            return self.error
        result = self.result if isinstance(self.result, dict) else {}
        return str(result.get("data") or f"the task exited with status {self.code}")


@dataclass(frozen=True, slots=True)
class Job:
    """A process Connect ran for a content item (`GET v1/content/{guid}/jobs`). Jobs carry no
    task id; a build shows as a `packrat_restore` / `python_restore` job."""

    key: str
    tag: str
    status: int
    start_time: datetime | None
    end_time: datetime | None
    exit_code: int | None
    error: str | None
    bundle_id: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        exit_code = data.get("exit_code")
        bundle_id = data.get("bundle_id")
        return cls(
            key=str(data.get("key") or data.get("id") or ""),
            tag=str(data.get("tag") or "unknown"),
            status=int(data.get("status") or 0),
            start_time=parse_time(data.get("start_time")),
            end_time=parse_time(data.get("end_time")),
            exit_code=None if exit_code is None else int(exit_code),
            error=str(data["error"]) if data.get("error") else None,
            bundle_id=None if bundle_id is None else str(bundle_id),
        )

    @property
    def active(self) -> bool:
        return self.status == JOB_ACTIVE

    @property
    def restores(self) -> bool:
        """An environment restore: what a build request starts."""
        return self.tag in RESTORE_TAGS

    @property
    def succeeded(self) -> bool:
        return not self.active and self.status != 3 and self.exit_code == 0

    @property
    def failure_reason(self) -> str:
        if self.succeeded:
            return ""
        if self.error:
            return self.error
        if self.status == 3:
            return f"Connect skipped the build (job {self.key})"
        return f"the build (Connect job {self.key}) exited with status {self.exit_code}"


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from Connect (`2024-12-05T16:22:51Z`, nanoseconds allowed), in UTC."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ContentItem:
    guid: str
    name: str
    title: str
    app_mode: str
    bundle_id: str | None
    r_version: str | None
    py_version: str | None
    image_name: str | None
    created_time: str | None
    last_deployed_time: str | None
    dashboard_url: str | None
    content_url: str | None
    owner_guid: str | None = None  # the Connect user owning the item
    # Locked content has no Rebuild button in Connect (connect-api-2.md §5, Connect 2024.08+).
    locked: bool = False
    locked_message: str = ""
    # Seconds Connect waits for a process to start (None: the server's default).
    init_timeout: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContentItem:
        bundle_id = data.get("bundle_id")
        init_timeout = data.get("init_timeout")
        return cls(
            guid=str(data["guid"]),
            name=str(data.get("name") or ""),
            title=str(data.get("title") or data.get("name") or ""),
            app_mode=str(data.get("app_mode") or "unknown"),
            bundle_id=None if bundle_id is None else str(bundle_id),
            r_version=data.get("r_version") or None,
            py_version=data.get("py_version") or None,
            image_name=data.get("image_name") or None,
            created_time=data.get("created_time"),
            last_deployed_time=data.get("last_deployed_time"),
            dashboard_url=data.get("dashboard_url"),
            content_url=data.get("content_url"),
            owner_guid=str(data["owner_guid"]) if data.get("owner_guid") else None,
            locked=data.get("locked") is True,
            locked_message=str(data.get("locked_message") or ""),
            init_timeout=float(init_timeout) if isinstance(init_timeout, int | float) else None,
        )

    @property
    def published(self) -> bool:
        # rsconnect's rule: published means an active bundle exists.
        return self.bundle_id is not None

    @property
    def interactive(self) -> bool:
        return self.app_mode in INTERACTIVE_MODES

    @property
    def rendered(self) -> bool:
        return self.app_mode in RENDERED_MODES

    @property
    def image(self) -> str:
        """Execution environment, in the runtime-cache vocabulary (`Local` for native)."""
        return self.image_name or LOCAL_IMAGE

    @property
    def runtimes(self) -> tuple[RuntimeCache, ...]:
        """The runtime caches this item depends on."""
        found: list[RuntimeCache] = []
        if self.r_version:
            found.append(RuntimeCache("R", self.r_version, self.image))
        if self.py_version:
            found.append(RuntimeCache("Python", self.py_version, self.image))
        return tuple(found)

    @property
    def display_title(self) -> str:
        return self.title or self.name or self.guid


_PEP503 = re.compile(r"[-_.]+")


def sanitised_image(image_name: str) -> str:
    """An image name as Connect may spell it in listings (`rstudio/x:1` as `rstudio_x_1`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", image_name)


def normalise_package(language: str, name: str) -> str:
    """How Connect matches a package name: Python names by PEP 503, R names exactly."""
    if language.lower() == "python":
        return _PEP503.sub("-", name).lower()
    return name


@dataclass(frozen=True, slots=True)
class PackageUse:
    """One row of `GET v1/packages`: a bundle of a content item depends on a package."""

    language: str  # "r" or "python", as Connect sends it
    language_version: str
    name: str
    version: str
    bundle_id: str | None
    content_guid: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackageUse:
        bundle_id = data.get("bundle_id")
        return cls(
            language=str(data.get("language") or "").lower(),
            language_version=str(data.get("language_version") or ""),
            name=str(data.get("name") or ""),
            version=str(data.get("version") or ""),
            bundle_id=None if bundle_id is None else str(bundle_id),
            content_guid=str(data.get("content_guid") or data.get("app_guid") or ""),
        )

    def is_named(self, wanted: str) -> bool:
        """Connect's rule: Python names are normalised (PEP 503), R names must match exactly."""
        return normalise_package(self.language, self.name) == normalise_package(
            self.language, wanted
        )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    version: str
    execution_type: str
    runtime_cache_management: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerSettings:
        return cls(
            version=str(data.get("version") or "unknown"),
            execution_type=str(data.get("execution_type") or "native"),
            runtime_cache_management=bool(data.get("enable_runtime_cache_management", False)),
        )


@dataclass(frozen=True, slots=True)
class ServerProbe:
    """One look at a Connect server: did `server_settings` answer, and with which version.

    `error` is a short reason when not reachable; it never carries the API key.
    """

    reachable: bool
    version: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    guid: str
    username: str
    user_role: str
    # Empty for non-admin keys when Connect hides email addresses (connect-api-2.md §4.1).
    email: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(
            guid=str(data.get("guid") or ""),
            username=str(data.get("username") or ""),
            user_role=str(data.get("user_role") or ""),
            email=str(data.get("email") or "").strip(),
        )

    @property
    def is_admin(self) -> bool:
        return self.user_role == "administrator"
