"""Connect service layer over httpx. Knows nothing of Slack."""

from __future__ import annotations

from bot.connect.caches import RuntimeCaches
from bot.connect.client import HttpCore, NotSent
from bot.connect.content import Content, ContentFilter
from bot.connect.errors import ConnectError, expect_shape
from bot.connect.jobs import JobError, Jobs, LogEntry
from bot.connect.models import (
    CacheDeletion,
    ContentItem,
    Job,
    PackageUse,
    RuntimeCache,
    ServerProbe,
    ServerSettings,
    Task,
    User,
)
from bot.connect.packages import PACKAGES_SINCE, Packages, PackagesUnavailable
from bot.connect.renders import Renders
from bot.connect.runtimes import Installation, Runtimes
from bot.connect.tasks import Tasks
from bot.connect.usage import Instrumentation, NoUsage, Usage
from bot.connect.users import Users
from bot.connect.versions import VersionFilter
from bot.connect.visits import ContentUrls, Visit

__all__ = [
    "PACKAGES_SINCE",
    "CacheDeletion",
    "ConnectClient",
    "ConnectError",
    "Content",
    "ContentFilter",
    "ContentItem",
    "ContentUrls",
    "Installation",
    "Instrumentation",
    "Job",
    "JobError",
    "Jobs",
    "LogEntry",
    "NoUsage",
    "NotSent",
    "PackageUse",
    "Packages",
    "PackagesUnavailable",
    "Renders",
    "RuntimeCache",
    "RuntimeCaches",
    "Runtimes",
    "ServerProbe",
    "ServerSettings",
    "Task",
    "Tasks",
    "Usage",
    "User",
    "Users",
    "VersionFilter",
    "Visit",
]


class ConnectClient:
    """Entry point: `ConnectClient(server, api_key).caches.list()` and friends."""

    def __init__(self, server: str, api_key: str, **options: object) -> None:
        self._attach(HttpCore(server, api_key, **options))  # type: ignore[arg-type]

    def _attach(self, http: HttpCore) -> None:
        self.http = http
        self.caches = RuntimeCaches(self.http)
        self.tasks = Tasks(self.http)
        self.content = Content(self.http)
        self.users = Users(self.http)
        self.packages = Packages(self.http)
        self.jobs = Jobs(self.http)
        self.runtimes = Runtimes(self.http)
        self.renders = Renders(self.http)
        self.urls = ContentUrls(self.http)
        self.usage = Instrumentation(self.http)

    def single_try(self) -> ConnectClient:
        """This client sending every request once (same connections and key), for a caller
        that retries by a budget of its own, as the rebuild's `Builds` do: the client's own
        retries inside would multiply the requests during an outage. Close this client's
        origin, not the copy."""
        once = object.__new__(ConnectClient)
        once._attach(self.http.single_try())
        return once

    @property
    def server(self) -> str:
        return self.http.server

    @property
    def retry_seconds(self) -> float | None:
        """The retry time budget this client was made with (BOT_CONNECT_RETRY_SECONDS)."""
        return self.http.retry_policy.max_seconds

    def __repr__(self) -> str:
        return f"ConnectClient(server={self.server!r})"

    def server_settings(self) -> ServerSettings:
        body = self.http.get("server_settings")
        with expect_shape("GET", "server_settings", "a settings object"):
            return ServerSettings.from_json(body)

    def probe(self, timeout: float = 5.0) -> ServerProbe:
        """Is Connect answering, and which version is it? One GET, no retries; never raises.

        For a list of servers: a short `timeout` covers connect, read and write alike.
        """
        try:
            # Sent as a non-idempotent call only so that it is tried exactly once.
            body = self.http.request("GET", "server_settings", idempotent=False, timeout=timeout)
        except ConnectError as exc:
            return ServerProbe(reachable=False, version=None, error=self.http.redact(str(exc)))
        except Exception as exc:  # a probe reports; whatever went wrong is its answer
            reason = f"{type(exc).__name__} while asking {self.server} for server_settings"
            return ServerProbe(reachable=False, version=None, error=self.http.redact(reason))
        if not isinstance(body, dict):
            reason = f"{self.server} answered server_settings with no settings object: not Connect?"
            return ServerProbe(reachable=False, version=None, error=self.http.redact(reason))
        version = body.get("version")
        return ServerProbe(reachable=True, version=str(version) if version else None)

    def current_user(self) -> User:
        body = self.http.get("v1/user")
        with expect_shape("GET", "v1/user", "a user object"):
            return User.from_json(body)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
