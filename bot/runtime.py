"""Assemble the bot from its settings, and run it (HTTP mode or Socket Mode)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import jobs
from bot.config import Settings
from bot.connect import ConnectClient
from bot.scheduler import create_scheduler
from bot.services.audit import AuditLog, AuditRecord
from bot.services.authz import Authorizer
from bot.services.caches import CacheService
from bot.services.pending import PendingStore
from bot.slack.app import create_app
from bot.slack.deps import Deps
from bot.slack.poster import SlackPoster, SlackUnavailable, make_web_client
from bot.slack.server import BotWsgi, HttpServer
from bot.slack.views import audit_notice_view
from bot.store import Database

log = logging.getLogger("bot")


class StartupError(Exception):
    """Configuration or credentials stop the bot from starting; the message says what to fix."""


def missing_settings(settings: Settings) -> list[str]:
    needed = {
        "CONNECT_SERVER": settings.connect_server,
        "CONNECT_API_KEY": settings.connect_api_key,
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
    }
    if not settings.socket_mode:
        needed["SLACK_SIGNING_SECRET"] = settings.slack_signing_secret
    return [name for name, value in needed.items() if not value]


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    connect: ConnectClient
    web: WebClient
    deps: Deps
    app: App
    scheduler: BackgroundScheduler
    executor: ThreadPoolExecutor
    bot_user_id: str | None
    key: str
    grace_seconds: float = 5.0
    http: HttpServer | None = None
    socket_handler: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def readiness(self) -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            self.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        checks["scheduler"] = "ok" if self.scheduler.running else "stopped"
        return {"ready": all(v == "ok" for v in checks.values()), "checks": checks}

    def start_http(self, host: str = "0.0.0.0", port: int | None = None) -> HttpServer:
        app = None if self.settings.socket_mode else self.app
        self.http = HttpServer(
            BotWsgi(app, self.readiness, self.deps.gate),
            host=host,
            port=self.settings.port if port is None else port,
        ).start()
        return self.http

    def start_socket_mode(self) -> Any:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self.socket_handler = SocketModeHandler(self.app, _secret(self.settings.slack_app_token))
        self.socket_handler.connect()
        return self.socket_handler

    def close(self) -> None:
        if self.deps.rebuilds is not None:  # rebuild engine hook: stop drivers and reporter
            self.deps.rebuilds.engine.close()
            if "rebuild_reporter" in self.extras:
                self.extras["rebuild_reporter"].close()
        if self.socket_handler is not None:
            # Don't reconnect while closing; the reader thread ends with the socket.
            self.socket_handler.client.auto_reconnect_enabled = False
            self.socket_handler.close()
        if self.http is not None:
            self.http.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.executor.shutdown(wait=False, cancel_futures=True)
        # Let work already under way finish its Slack reply; a long one (a deletion task that
        # outlives the grace period) is abandoned and shows as unfinished on its card.
        still_running = self.deps.drain(timeout=self.grace_seconds)
        if still_running:
            log.warning("stopping with %d background task(s) unfinished", still_running)
        jobs.unregister_runtime(self.key)
        self.connect.close()
        self.db.dispose()


def build_runtime(settings: Settings, *, start_scheduler: bool = True) -> Runtime:
    missing = missing_settings(settings)
    if missing:
        raise StartupError(
            "Missing settings: " + ", ".join(missing) + ". Set them in the environment or a .env"
            " file (see README, Configuration); `connect-bot check` explains each one."
        )
    db = Database(settings.database_url)
    try:
        db.migrate()
    except Exception as exc:
        raise StartupError(f"The database ({db!r}) is not usable: {type(exc).__name__}") from None
    web = make_web_client(_secret(settings.slack_bot_token), settings.slack_api_url)
    try:
        identity = web.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        raise StartupError(
            f"Slack rejected SLACK_BOT_TOKEN at {settings.slack_api_url} ({error}). "
            "Copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page."
        ) from None
    except Exception as exc:
        raise StartupError(
            f"Could not reach Slack at {settings.slack_api_url} ({type(exc).__name__})."
        ) from None
    connect = ConnectClient(settings.connect_server or "", _secret(settings.connect_api_key))
    poster = SlackPoster(web)
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="bot-work")
    audit = AuditLog(db, notify=_audit_notifier(poster, settings.bot_audit_channel))
    authz = Authorizer(
        admin_users=settings.bot_admin_users,
        admin_groups=settings.bot_admin_groups,
        allowed_channels=settings.bot_allowed_channels,
        resolve_group=lambda group: web.usergroups_users_list(usergroup=group)["users"],
    )
    deps = Deps(
        caches=CacheService(connect),
        pending=PendingStore(db, settings.bot_confirm_ttl_seconds),
        audit=audit,
        authz=authz,
        poster=poster,
        executor=executor,
        connect_server=connect.server,
        two_person_rule=settings.bot_two_person_rule,
        bot_user_id=identity.get("user_id"),
    )
    # --- rebuild engine (issue 4): service + commands/buttons, before the app reads them ---
    from bot.services.rebuild_engine import RebuildEngine
    from bot.services.rebuilds import RebuildService
    from bot.slack.flows import rebuilds as rebuild_flows
    from bot.slack.listeners.actions import EXTRA_ACTIONS
    from bot.slack.listeners.commands import EXTRA_HANDLERS

    rebuild_engine = RebuildEngine(
        db, connect, runtime_key=jobs.runtime_key(settings.database_url), audit=audit
    )
    deps.rebuilds = RebuildService(db, connect, engine=rebuild_engine)
    deps.rebuilds.team_url = identity.get("url")
    rebuild_flows.install(EXTRA_HANDLERS, EXTRA_ACTIONS)
    # --- end rebuild engine ---
    app = create_app(
        web,
        deps,
        signing_secret=None if settings.socket_mode else _secret(settings.slack_signing_secret),
    )
    key = jobs.runtime_key(settings.database_url)
    runtime = Runtime(
        settings=settings,
        db=db,
        connect=connect,
        web=web,
        deps=deps,
        app=app,
        scheduler=create_scheduler(db),
        executor=executor,
        bot_user_id=identity.get("user_id"),
        key=key,
    )
    jobs.register_runtime(key, runtime)
    runtime.scheduler.add_job(
        "bot.jobs:expire_pending",
        "interval",
        seconds=30,
        args=[key],
        id="expire-pending",
        replace_existing=True,
    )
    # --- rebuild engine (issue 4): scheduler jobs, Slack progress, resume after a restart ---
    from bot.slack.rebuild_progress import RebuildReporter

    rebuild_engine.scheduler = runtime.scheduler
    reporter = RebuildReporter(deps.rebuilds, poster)
    rebuild_engine.subscribe(reporter.watch)
    runtime.extras["rebuild_reporter"] = reporter
    runtime.scheduler.add_job(
        "bot.jobs:expire_rebuild_plans",
        "interval",
        seconds=30,
        args=[key],
        id="expire-rebuild-plans",
        replace_existing=True,
    )
    for rebuild_id in deps.rebuilds.unreported_ids():
        reporter.watch(rebuild_id)  # finished, but the bot died before the summary
    rebuild_engine.resume(deps.rebuilds.active_ids())
    reporter.start()
    # --- end rebuild engine ---
    if start_scheduler:
        runtime.scheduler.start()
    return runtime


def _audit_notifier(poster: SlackPoster, channel: str | None) -> Any:
    if not channel:
        return None

    def notify(record: AuditRecord) -> None:
        try:
            poster.post(channel, audit_notice_view(record))
        except SlackUnavailable as exc:
            log.warning("could not post to the audit channel %s: %s", channel, exc.error)

    return notify


def serve(settings: Settings | None = None) -> int:
    from bot.logs import configure_logging

    settings = settings or Settings()
    configure_logging(settings)
    try:
        runtime = build_runtime(settings)
    except StartupError as exc:
        print(f"connect-bot: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    http = runtime.start_http()
    if settings.socket_mode:
        runtime.start_socket_mode()
        log.info("connect-bot running in Socket Mode; health on %s/healthz", http.url)
    else:
        log.info("connect-bot listening on %s/slack/events", http.url)
    stop.wait()
    runtime.close()
    return 0
