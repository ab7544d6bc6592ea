"""One Connect server: reachable, a recent version, runtime cache management on, an admin key."""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

import httpx

from bot.check.report import Report
from bot.config import ServerConfig, key_variable
from bot.connect import ConnectClient, ConnectError, NotSent, ServerSettings, User

# The runtime caches API (GET/DELETE v1/system/caches/runtime) arrived in Connect 2023.05.
MIN_CONNECT = (2023, 5)
CONNECT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A server to check, and the settings a fix would change."""

    name: str
    url: str
    key: str = dataclasses.field(repr=False)
    named: bool  # from BOT_CONNECT_SERVERS (else CONNECT_SERVER and CONNECT_API_KEY)

    @classmethod
    def of(cls, config: ServerConfig, *, named: bool) -> Target:
        return cls(config.name, config.url, config.api_key, named)

    @property
    def address_setting(self) -> str:
        """Where the address is set, as a fix names it."""
        return f"the {self.name} address in BOT_CONNECT_SERVERS" if self.named else "CONNECT_SERVER"

    @property
    def key_setting(self) -> str:
        return key_variable(self.name) if self.named else "CONNECT_API_KEY"


def check_server(target: Target, report: Report) -> None:
    server = _connect_server(target, report)
    if not target.key:
        report.fail(
            f"{target.key_setting} is not set: log in to Connect as an administrator, create an "
            f"API key (user menu > API Keys) and set {target.key_setting} to it"
        )
    if not server or not target.key:
        return
    with ConnectClient(server, target.key, retries=0, timeout=CONNECT_TIMEOUT) as client:
        server_settings = _connect_reachable(client, target, report)
        if server_settings is None:
            return
        user = _connect_user(client, target, report)
        if user is False:
            return
        if server_settings.runtime_cache_management and (user is None or user.is_admin):
            _connect_caches(client, target, report)


def _connect_server(target: Target, report: Report) -> str | None:
    server = target.url
    if not server:
        report.fail(
            f"{target.address_setting} is not set: set it to Connect's address, "
            "e.g. https://connect.example.com"
        )
        return None
    if not re.match(r"https?://[^/\s]+", server):
        where = (
            f"the address {server!r} of {target.name} in BOT_CONNECT_SERVERS"
            if target.named
            else f"CONNECT_SERVER {server!r}"
        )
        report.fail(
            f"{where} is not an http(s) address: "
            "use Connect's root URL, e.g. https://connect.example.com"
        )
        return None
    report.ok(f"{target.address_setting} is {server}")
    return server


def _connect_reachable(
    client: ConnectClient, target: Target, report: Report
) -> ServerSettings | None:
    try:
        server_settings = client.server_settings()
    except ConnectError as exc:
        _connect_unreachable(client.server, exc, target, report)
        return None
    report.ok(f"Connect at {client.server} answers: Posit Connect {server_settings.version}")
    _connect_version(server_settings.version, report)
    if server_settings.runtime_cache_management:
        report.ok("runtime cache management is enabled on Connect")
    else:
        report.fail(
            "runtime cache management is disabled on Connect (server_settings says so): "
            "ask Connect's administrator to enable it, or cache commands will all fail"
        )
    return server_settings


def _connect_unreachable(server: str, exc: ConnectError, target: Target, report: Report) -> None:
    if isinstance(exc, NotSent) or exc.status is None:
        report.fail(f"cannot reach Connect at {server}: {_transport_detail(exc, target)}")
    elif exc.status == 401:
        _key_refused(exc, target, report)
    elif exc.status == 404 or exc.code is None:
        report.fail(
            f"{server} answered HTTP {exc.status} to /__api__/server_settings, so it does not look "
            f"like Posit Connect: {target.address_setting} must be Connect's root address "
            "(no /__api__, no content path)"
        )
    else:
        report.fail(f"Connect at {server} answered HTTP {exc.status}: {exc.reason}")


def _transport_detail(exc: ConnectError, target: Target) -> str:
    # The client hides the httpx error (`from None`) but keeps it as context: use it for the hint.
    cause = exc.__context__
    detail = str(cause) if cause else str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        return (
            "its TLS certificate is not trusted; if Connect uses a private CA, set SSL_CERT_FILE "
            "to a bundle that includes it"
        )
    if isinstance(cause, httpx.TimeoutException):
        return "no answer in time; check the address, proxy settings and firewall"
    reason = detail.splitlines()[0] if detail else type(cause or exc).__name__
    return f"{reason}; check {target.address_setting}, DNS, proxy settings and firewall"


def _connect_version(version: str, report: Report) -> None:
    found = re.match(r"(\d{4})\.(\d{1,2})", version)
    if found and (int(found[1]), int(found[2])) < MIN_CONNECT:
        report.fail(
            f"Posit Connect {version} predates the runtime caches API (2023.05): upgrade Connect"
        )


def _connect_user(
    client: ConnectClient, target: Target, report: Report
) -> User | Literal[False] | None:
    """The key's user; None when the key is valid but has no user; False when it is refused."""
    key = target.key_setting
    try:
        user = client.current_user()
    except ConnectError as exc:
        if exc.status == 401:
            _key_refused(exc, target, report)
            return False
        if exc.status == 403 and exc.code == 22:
            return None  # a credential without a user (rsconnect accepts it); caches decide
        report.fail(f"Connect did not say whose {key} this is: {exc.reason}")
        return False
    if user.is_admin:
        report.ok(f"{key} is valid and belongs to {user.username}, an administrator")
    else:
        role = user.user_role or "user without a role"
        report.fail(
            f"{key} belongs to {user.username}, a {role}, not an administrator: runtime "
            "caches need an administrator's key; create one while logged in as an administrator"
        )
    return user


def _key_refused(exc: ConnectError, target: Target, report: Report) -> None:
    said = f" (Connect: {exc.error})" if exc.error else ""
    report.fail(
        f"{target.key_setting}: the key is not valid{said}: create a new API key in Connect "
        f"(user menu > API Keys) as an administrator and set {target.key_setting} to it"
    )


def _connect_caches(client: ConnectClient, target: Target, report: Report) -> None:
    try:
        caches = client.caches.list()
    except ConnectError as exc:
        if exc.status == 403:
            report.fail(
                f"Connect refused to list runtime caches (code 22): {target.key_setting} is not "
                "an administrator's key; create one while logged in as an administrator"
            )
        else:
            report.fail(f"listing runtime caches failed: {exc.reason}")
        return
    report.ok(f"the key can list runtime caches ({len(caches)} on the server now)")
