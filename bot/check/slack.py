"""Slack: the bot token (auth.test), its scopes, and the mode's credential (HTTP or Socket Mode)."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.check.report import Report
from bot.config import Settings

WebClientFactory = Callable[[str, str], WebClient]

SLACK_TIMEOUT = 10
# users:read: time zones for --at; *:history: before posting a rebuild's summary again, look
# whether it is in the thread already (public or private channel).
BASE_SCOPES = ("commands", "chat:write", "users:read", "channels:history", "groups:history")
GROUP_SCOPE = "usergroups:read"
# BOT_NOTIFY_OWNERS: find owners by email, open a DM with each (and read it before a DM is
# sent again).
OWNER_SCOPES = ("users:read.email", "im:write", "im:history")
# conversations.members on public / private channels: who may see Connect data on App Home.
CHANNEL_SCOPES = ("channels:read", "groups:read")
REFUSED_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter else ""


def default_web_client(token: str, base_url: str) -> WebClient:
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
    """Bot scopes the bot uses: group membership is read only when groups grant rights,
    owners are looked up and sent DMs only with BOT_NOTIFY_OWNERS, and channel membership is
    read only with BOT_ALLOWED_CHANNELS (App Home shows Connect only to their members)."""
    return [
        *BASE_SCOPES,
        *([GROUP_SCOPE] if settings.bot_admin_groups else []),
        *(OWNER_SCOPES if settings.bot_notify_owners else ()),
        *(CHANNEL_SCOPES if settings.bot_allowed_channels else ()),
    ]


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
