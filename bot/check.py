"""`connect-bot check`: is the configuration right, and if not, what to do about it.

One line per check: `✔` right, `!` worth knowing (does not fail the check), `✘` wrong, each `✘`
saying how to fix it. Read-only: nothing is created, migrated or posted. Every line goes
through log redaction, so no secret reaches the terminal even inside an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.config import Settings
from bot.connect import ConnectClient, ConnectError, NotSent, ServerSettings, User
from bot.logs import Redactor

WebClientFactory = Callable[[str, str], WebClient]
Status = Literal["ok", "warn", "fail"]

MARKS: dict[Status, str] = {"ok": "✔", "warn": "!", "fail": "✘"}
# The runtime caches API (GET/DELETE v1/system/caches/runtime) arrived in Connect 2023.05.
MIN_CONNECT = (2023, 5)
CONNECT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
SLACK_TIMEOUT = 10
BASE_SCOPES = ("commands", "chat:write")
GROUP_SCOPE = "usergroups:read"
REFUSED_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class Report:
    """Prints each line as soon as it is known (slow network checks show progress)."""

    def __init__(self, out: Callable[[str], object], secrets: list[str]) -> None:
        self._out = out
        self._redact = Redactor(secrets)
        self.counts: dict[Status, int] = {"ok": 0, "warn": 0, "fail": 0}

    def line(self, status: Status, text: str) -> None:
        self.counts[status] += 1
        self._out(self._redact(f"{MARKS[status]} {text}"))

    def ok(self, text: str) -> None:
        self.line("ok", text)

    def warn(self, text: str) -> None:
        self.line("warn", text)

    def fail(self, text: str) -> None:
        self.line("fail", text)

    def summary(self) -> None:
        failures, warnings = self.counts["fail"], self.counts["warn"]
        if failures:
            noun = "problem" if failures == 1 else "problems"
            self._out(
                f"{failures} {noun} to fix (marked {MARKS['fail']}), then run the check again."
            )
        elif warnings:
            self._out(f"Ready to run `connect-bot serve`; read the {warnings} note(s) marked !.")
        else:
            self._out("Everything is in place: `connect-bot serve` is ready to run.")


def run_check(
    settings: Settings,
    out: Callable[[str], object] = print,
    *,
    web_client_factory: WebClientFactory | None = None,
) -> int:
    """Check Connect, Slack, authorisation and the database; 0 when nothing needed is wrong."""
    report = Report(out, settings.secret_values())
    factory = web_client_factory or _default_web_client
    sections: list[tuple[str, Callable[[], None]]] = [
        ("Connect", lambda: check_connect(settings, report)),
        ("Slack", lambda: check_slack(settings, report, factory)),
        ("authorisation", lambda: check_authorisation(settings, report)),
        ("database", lambda: check_database(settings, report)),
    ]
    for name, section in sections:
        try:
            section()
        except Exception as exc:  # one broken check must not hide the others' answers
            report.fail(f"the {name} check failed unexpectedly: {type(exc).__name__}: {exc}")
    report.summary()
    return 1 if report.counts["fail"] else 0


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else ""


# --------------------------------------------------------------------------- Connect


def check_connect(settings: Settings, report: Report) -> None:
    server = _connect_server(settings, report)
    key = _secret(settings.connect_api_key)
    if not key:
        report.fail(
            "CONNECT_API_KEY is not set: log in to Connect as an administrator, create an API key "
            "(user menu > API Keys) and set CONNECT_API_KEY to it"
        )
    if not server or not key:
        return
    with ConnectClient(server, key, retries=0, timeout=CONNECT_TIMEOUT) as client:
        server_settings = _connect_reachable(client, report)
        if server_settings is None:
            return
        user = _connect_user(client, report)
        if user is False:
            return
        if server_settings.runtime_cache_management and (user is None or user.is_admin):
            _connect_caches(client, report)


def _connect_server(settings: Settings, report: Report) -> str | None:
    server = settings.connect_server
    if not server:
        report.fail(
            "CONNECT_SERVER is not set: set it to Connect's address, e.g. https://connect.example.com"
        )
        return None
    if not re.match(r"https?://[^/\s]+", server):
        report.fail(
            f"CONNECT_SERVER {server!r} is not an http(s) address: "
            "use Connect's root URL, e.g. https://connect.example.com"
        )
        return None
    report.ok(f"CONNECT_SERVER is {server}")
    return server


def _connect_reachable(client: ConnectClient, report: Report) -> ServerSettings | None:
    try:
        server_settings = client.server_settings()
    except ConnectError as exc:
        _connect_unreachable(client.server, exc, report)
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


def _connect_unreachable(server: str, exc: ConnectError, report: Report) -> None:
    if isinstance(exc, NotSent) or exc.status is None:
        report.fail(f"cannot reach Connect at {server}: {_transport_detail(exc)}")
    elif exc.status == 401:
        _key_refused(exc, report)
    elif exc.status == 404 or exc.code is None:
        report.fail(
            f"{server} answered HTTP {exc.status} to /__api__/server_settings, so it does not look "
            "like Posit Connect: CONNECT_SERVER must be Connect's root address "
            "(no /__api__, no content path)"
        )
    else:
        report.fail(f"Connect at {server} answered HTTP {exc.status}: {exc.reason}")


def _transport_detail(exc: ConnectError) -> str:
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
    return f"{reason}; check CONNECT_SERVER, DNS, proxy settings and firewall"


def _connect_version(version: str, report: Report) -> None:
    found = re.match(r"(\d{4})\.(\d{1,2})", version)
    if found and (int(found[1]), int(found[2])) < MIN_CONNECT:
        report.fail(
            f"Posit Connect {version} predates the runtime caches API (2023.05): upgrade Connect"
        )


def _connect_user(client: ConnectClient, report: Report) -> User | Literal[False] | None:
    """The key's user; None when the key is valid but has no user; False when it is refused."""
    try:
        user = client.current_user()
    except ConnectError as exc:
        if exc.status == 401:
            _key_refused(exc, report)
            return False
        if exc.status == 403 and exc.code == 22:
            return None  # a credential without a user (rsconnect accepts it); caches decide
        report.fail(f"Connect did not say whose CONNECT_API_KEY this is: {exc.reason}")
        return False
    if user.is_admin:
        report.ok(f"CONNECT_API_KEY is valid and belongs to {user.username}, an administrator")
    else:
        role = user.user_role or "user without a role"
        report.fail(
            f"CONNECT_API_KEY belongs to {user.username}, a {role}, not an administrator: runtime "
            "caches need an administrator's key; create one while logged in as an administrator"
        )
    return user


def _key_refused(exc: ConnectError, report: Report) -> None:
    said = f" (Connect: {exc.error})" if exc.error else ""
    report.fail(
        f"CONNECT_API_KEY: the key is not valid{said}: create a new API key in Connect "
        "(user menu > API Keys) as an administrator and set CONNECT_API_KEY to it"
    )


def _connect_caches(client: ConnectClient, report: Report) -> None:
    try:
        caches = client.caches.list()
    except ConnectError as exc:
        if exc.status == 403:
            report.fail(
                "Connect refused to list runtime caches (code 22): CONNECT_API_KEY is not an "
                "administrator's key; create one while logged in as an administrator"
            )
        else:
            report.fail(f"listing runtime caches failed: {exc.reason}")
        return
    report.ok(f"the key can list runtime caches ({len(caches)} on the server now)")


# --------------------------------------------------------------------------- Slack


def _default_web_client(token: str, base_url: str) -> WebClient:
    return WebClient(token=token, base_url=base_url, timeout=SLACK_TIMEOUT)


def check_slack(settings: Settings, report: Report, factory: WebClientFactory) -> None:
    token = _secret(settings.slack_bot_token)
    if not token:
        report.fail(
            "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from your Slack "
            "app's OAuth & Permissions page"
        )
    elif not token.startswith("xoxb-"):
        report.fail(
            "SLACK_BOT_TOKEN is not a bot token (it does not start with xoxb-): use the Bot User "
            "OAuth Token from the app's OAuth & Permissions page, not a user or app-level token"
        )
    else:
        response = _slack_auth(settings, token, report, factory)
        if response is not None:
            _slack_scopes(settings, response, report)
    _slack_mode(settings, report, factory)


def _slack_auth(
    settings: Settings, token: str, report: Report, factory: WebClientFactory
) -> SlackResponse | None:
    url = settings.slack_api_url
    try:
        response = factory(token, url).auth_test()
    except SlackApiError as exc:
        _slack_refused(url, exc, report)
        return None
    except (SlackClientError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        report.fail(
            f"cannot reach the Slack Web API at {url}: {reason}; check SLACK_API_URL "
            "(normally https://slack.com/api/), proxy settings and firewall"
        )
        return None
    where = "" if url.rstrip("/") == "https://slack.com/api" else f" (SLACK_API_URL {url})"
    report.ok(
        f"SLACK_BOT_TOKEN is valid: bot @{response.get('user')} in workspace "
        f"{response.get('team')} ({response.get('team_id')}){where}"
    )
    return response


def _slack_refused(url: str, exc: SlackApiError, report: Report) -> None:
    status = exc.response.status_code
    error = _slack_error(exc)
    if error in REFUSED_TOKEN_ERRORS:
        report.fail(
            f"SLACK_BOT_TOKEN was refused by Slack ({error}): copy the current Bot User OAuth "
            "Token (xoxb-…) from the app's OAuth & Permissions page; reinstalling the app "
            "issues a new one"
        )
    elif status != 200 and status != 429:
        report.fail(
            f"{url} answered HTTP {status} to auth.test: SLACK_API_URL must be Slack's Web API "
            "base, normally https://slack.com/api/"
        )
    else:
        report.fail(f"Slack answered auth.test with an error: {error or status}; try again")


def required_scopes(settings: Settings) -> list[str]:
    """Bot scopes the bot uses: group membership is read only when groups grant rights."""
    return [*BASE_SCOPES, *([GROUP_SCOPE] if settings.bot_admin_groups else [])]


def _slack_scopes(settings: Settings, response: SlackResponse, report: Report) -> None:
    required = required_scopes(settings)
    header = next((v for k, v in response.headers.items() if k.lower() == "x-oauth-scopes"), None)
    if header is None:
        report.warn(
            "Slack did not list the token's scopes; make sure the app has: " + ", ".join(required)
        )
        return
    granted = {scope.strip() for scope in header.split(",") if scope.strip()}
    missing = [scope for scope in required if scope not in granted]
    if not missing:
        report.ok("the bot token has the scopes the bot needs: " + ", ".join(required))
        return
    report.fail(
        f"the bot token lacks the scope(s) {', '.join(missing)}: add them to "
        "oauth_config.scopes.bot in manifest.yml (or on OAuth & Permissions), then reinstall "
        "the app to the workspace; new scopes take effect only after reinstalling"
    )


def _slack_mode(settings: Settings, report: Report, factory: WebClientFactory) -> None:
    app_token = _secret(settings.slack_app_token)
    if app_token:
        _socket_mode(settings, app_token, report, factory)
    elif _secret(settings.slack_signing_secret):
        report.ok(
            f"HTTP mode: SLACK_SIGNING_SECRET is set; Slack must reach /slack/events on this bot "
            f"(port {settings.port}) over HTTPS"
        )
    else:
        report.fail(
            "HTTP mode needs SLACK_SIGNING_SECRET (Basic Information > App Credentials > Signing "
            "Secret); or set SLACK_APP_TOKEN (xapp-…) to use Socket Mode instead"
        )


def _socket_mode(
    settings: Settings, app_token: str, report: Report, factory: WebClientFactory
) -> None:
    if not app_token.startswith("xapp-"):
        report.fail(
            "SLACK_APP_TOKEN does not start with xapp-: Socket Mode needs an app-level token "
            "(Basic Information > App-Level Tokens) with the connections:write scope; "
            "or unset SLACK_APP_TOKEN to use HTTP mode"
        )
        return
    try:
        # Only asks for a connection URL; the running bot's own connection is not touched.
        factory(app_token, settings.slack_api_url).apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        _app_token_refused(exc, report)
        return
    except (SlackClientError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        report.fail(f"cannot reach Slack to check SLACK_APP_TOKEN: {reason}")
        return
    report.ok("Socket Mode: SLACK_APP_TOKEN is valid and can open connections (connections:write)")


def _app_token_refused(exc: SlackApiError, report: Report) -> None:
    error = _slack_error(exc)
    if error == "missing_scope":
        report.fail(
            "SLACK_APP_TOKEN lacks the connections:write scope: create an app-level token with "
            "it under Basic Information > App-Level Tokens"
        )
    elif error == "ratelimited" or exc.response.status_code == 429:
        report.warn(
            "Slack rate-limited the Socket Mode check (about one a minute is allowed); "
            "SLACK_APP_TOKEN looks right but was not verified"
        )
    elif error in REFUSED_TOKEN_ERRORS or error == "not_allowed_token_type":
        report.fail(
            f"SLACK_APP_TOKEN was refused by Slack ({error}): generate an app-level token with "
            "the connections:write scope under Basic Information > App-Level Tokens"
        )
    else:
        report.fail(
            f"Slack would not open a Socket Mode connection ({error or exc.response.status_code}): "
            "enable Socket Mode for the app (settings.socket_mode_enabled in manifest.yml)"
        )


def _slack_error(exc: SlackApiError) -> str | None:
    data = exc.response.data
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else None


# --------------------------------------------------------------------------- authorisation


def check_authorisation(settings: Settings, report: Report) -> None:
    users, groups = settings.bot_admin_users, settings.bot_admin_groups
    if not users and not groups:
        report.warn(
            "neither BOT_ADMIN_USERS nor BOT_ADMIN_GROUPS is set: deleting caches and rebuilding "
            "will be refused to everyone; set BOT_ADMIN_USERS to Slack member IDs (U…) or "
            "BOT_ADMIN_GROUPS to user group IDs (S…)"
        )
        return
    _malformed_ids(
        "BOT_ADMIN_USERS", users, r"[UW][A-Z0-9]{4,}", "member IDs such as U012AB3CD", report
    )
    _malformed_ids(
        "BOT_ADMIN_GROUPS", groups, r"S[A-Z0-9]{4,}", "user group IDs such as S0614TZR7", report
    )
    report.ok(f"authorisation: {len(users)} admin user(s), {len(groups)} admin group(s)")
    if settings.bot_two_person_rule and not groups and len(users) < 2:
        report.warn(
            "BOT_TWO_PERSON_RULE is on with a single admin: nobody else can approve, so "
            "destructive commands cannot complete; add a second admin"
        )


def _malformed_ids(name: str, values: list[str], shape: str, example: str, report: Report) -> None:
    bad = [value for value in values if not re.fullmatch(shape, value)]
    if bad:
        report.warn(
            f"{name} has entries that are not Slack IDs ({', '.join(bad)}): they will match "
            f"nobody; use {example} (names and @handles do not work)"
        )


# --------------------------------------------------------------------------- database


def check_database(settings: Settings, report: Report) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = settings.database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        report.fail(
            "BOT_DATABASE_URL is not a database URL: use e.g. sqlite:////data/connect-bot.db "
            "or postgresql://user:password@host/dbname"
        )
        return
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and _sqlite_not_created(parsed.database, report):
        return
    if parsed.get_backend_name() == "postgresql":
        # libpq waits indefinitely for an unreachable host; a check should answer.
        os.environ.setdefault("PGCONNECT_TIMEOUT", "10")
    _database_state(url, shown, report)


def _sqlite_not_created(database: str | None, report: Report) -> bool:
    """Handle a SQLite file that does not exist yet without creating it (the check is read-only)."""
    if not database or database == ":memory:":
        report.warn("BOT_DATABASE_URL is an in-memory database: nothing survives a restart")
        return True
    path = Path(database).expanduser()
    if path.exists():
        return False
    parent = next(p for p in path.absolute().parents if p.exists())
    if os.access(parent, os.W_OK | os.X_OK):
        report.ok(f"database {path} does not exist yet: `connect-bot serve` creates it on start")
    else:
        report.fail(
            f"database {path} cannot be created: {parent} is not writable by this user; "
            "fix its permissions or point BOT_DATABASE_URL elsewhere"
        )
    return True


def _database_state(url: str, shown: str, report: Report) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store import Database
    from bot.store.migrate import current, head

    database = None
    try:
        database = Database(url)
        database.ping()
        at = current(database.engine)
    except ModuleNotFoundError as exc:
        report.fail(f"BOT_DATABASE_URL needs the {exc.name} driver: install connect-bot[postgres]")
        return
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        report.fail(f"cannot open the database {shown}: {reason}; check BOT_DATABASE_URL")
        return
    finally:
        if database is not None:
            database.dispose()
    _schema_line(shown, at, head(), report)


def _schema_line(shown: str, at: str | None, wanted: str | None, report: Report) -> None:
    if at == wanted:
        report.ok(f"database {shown} is reachable and its schema is current ({at})")
    elif at is None:
        report.ok(
            f"database {shown} is reachable and empty: `connect-bot serve` creates the schema"
        )
    elif _known_revision(at):
        report.ok(
            f"database {shown} is reachable; its schema ({at}) is older than this version's "
            f"({wanted}): `connect-bot serve` upgrades it on start"
        )
    else:
        report.fail(
            f"database {shown} has schema {at}, which this connect-bot does not know (a newer "
            "version wrote it): run that version, or point BOT_DATABASE_URL at another database"
        )


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from bot.store.migrate import MIGRATIONS

    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False
