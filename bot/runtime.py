"""Assemble the bot from its settings, and run it (HTTP mode or Socket Mode)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import jobs
from bot.config import DEFAULT_SERVER_NAME, ServerConfigError, Settings, key_variable
from bot.connect import ConnectClient
from bot.logs import set_instance
from bot.scheduler import create_scheduler
from bot.services.audit import AuditStore
from bot.services.authz import Authorizer
from bot.services.caches import CacheService, DeletionRunner, Deletions, JournalStore
from bot.services.confirmations import Confirmations
from bot.services.container import Services
from bot.services.health import DEFAULT_CONCURRENCY as DEFAULT_HEALTH_CONCURRENCY
from bot.services.health import HealthChecks, HealthRunner, HealthRuns, HealthStore
from bot.services.home import Home
from bot.services.pending import PendingStore
from bot.services.queries import Impact, Queries
from bot.services.rebuilds import (
    Access,
    RebuildEngine,
    Rebuilds,
    RebuildStore,
    Records,
    UsageCounter,
)
from bot.services.schedules import Schedules, ScheduleStore
from bot.services.servers import ConnectServer, Servers
from bot.slack.app import create_app
from bot.slack.bounded import HEALTH_LIMITS
from bot.slack.deps import Deps
from bot.slack.health_progress import HealthReporter
from bot.slack.home_publisher import HomePublisher
from bot.slack.members import channel_members
from bot.slack.notifier import SlackNotifier
from bot.slack.poster import SlackPoster, make_web_client
from bot.slack.rebuild_progress import RebuildReporter, slack_owners
from bot.slack.server import BotWsgi, HttpServer
from bot.slack.zones import UserZones
from bot.store import Database, utcnow
from bot.store.coordination import AnotherProcess, Coordinator, migrate_serialised
from bot.store.dbtime import WallClock
from bot.store.seen import SeenSignatures

log = logging.getLogger("bot")


class StartupError(Exception):
    """Configuration or credentials stop the bot from starting; the message says what to fix."""


def missing_settings(settings: Settings) -> list[str]:
    needed: dict[str, object] = {"SLACK_BOT_TOKEN": settings.slack_bot_token}
    if not settings.socket_mode:
        needed["SLACK_SIGNING_SECRET"] = settings.slack_signing_secret
    missing = [name for name, value in needed.items() if not value]
    try:
        configs = settings.server_configs()
    except ServerConfigError:
        return missing  # reported by build_runtime with what to fix
    for config in configs:
        if config.name == DEFAULT_SERVER_NAME and not settings.bot_connect_servers:
            missing += [
                name
                for name, value in (
                    ("CONNECT_SERVER", config.url),
                    ("CONNECT_API_KEY", config.api_key),
                )
                if not value
            ]
        elif not config.api_key:
            missing.append(key_variable(config.name))
    return missing


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    services: Services
    web: WebClient
    deps: Deps
    app: App
    scheduler: BackgroundScheduler
    executor: ThreadPoolExecutor
    reporter: RebuildReporter
    home_publisher: HomePublisher
    health_reporter: HealthReporter | None
    coordinator: Coordinator
    bot_user_id: str | None
    grace_seconds: float = 5.0
    http: HttpServer | None = None
    health: HttpServer | None = None
    socket_handler: Any = None

    def readiness(self) -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            self.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        checks["scheduler"] = "ok" if self.scheduler.running else "stopped"
        ready = all(v == "ok" for v in checks.values())
        # Which replica answered: with several, an operator can tell them apart.
        return {"ready": ready, "checks": checks, "instance": self.coordinator.instance_id}

    def start_http(
        self, host: str = "0.0.0.0", port: int | None = None, health_port: int | None = None
    ) -> HttpServer:
        """PORT serves Slack and the probes; `health_port` (BOT_HEALTH_PORT) the probes alone."""
        app = None if self.settings.socket_mode else self.app
        # Replicas on PostgreSQL share the replay check; one process on SQLite keeps its own.
        shared = SeenSignatures(self.db) if self.db.dialect == "postgresql" else None
        self.http = HttpServer(
            BotWsgi(
                app,
                self.readiness,
                self.deps.gate,
                signing_secret=_secret(self.settings.slack_signing_secret),
                shared=shared,
            ),
            host=host,
            port=self.settings.port if port is None else port,
        ).start()
        health_port = self.settings.bot_health_port if health_port is None else health_port
        if health_port is not None:
            self.health = HttpServer(
                BotWsgi(None, self.readiness),
                host=host,
                port=health_port,
                limits=HEALTH_LIMITS,
                name="health",
            ).start()
        return self.http

    def start_socket_mode(self) -> Any:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self.socket_handler = SocketModeHandler(self.app, _secret(self.settings.slack_app_token))
        self.socket_handler.connect()
        return self.socket_handler

    def close(self) -> None:
        # SIGTERM hands over: no new builds; build requests under way are answered and
        # recorded (up to the request timeout and a margin, DRAIN_SECONDS); only then are the
        # leases released (another replica takes them at once); running builds stay on Connect
        # and are re-attached by their task id.
        self.reporter.close()  # first: no post from here once the leases are released
        if self.health_reporter is not None:
            self.health_reporter.close()
        if self.services.health_runs is not None:
            self.services.health_runs.runner.close()  # another replica finishes its checks
        self.home_publisher.close()
        self.services.engine.close()
        if self.socket_handler is not None:
            # Don't reconnect while closing; the reader thread ends with the socket.
            self.socket_handler.client.auto_reconnect_enabled = False
            self.socket_handler.close()
        if self.http is not None:
            self.http.stop()
        if self.health is not None:
            self.health.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.executor.shutdown(wait=False, cancel_futures=True)
        # Let work already under way finish its Slack reply; a long one (a deletion task that
        # outlives the grace period) is abandoned and shows as unfinished on its card.
        still_running = self.deps.drain(timeout=self.grace_seconds)
        if still_running:
            log.warning("stopping with %d background task(s) unfinished", still_running)
        self.services.servers.close()
        self.coordinator.close()  # last: until now the others saw this process alive
        self.db.dispose()


def build_runtime(settings: Settings, *, start_scheduler: bool = True) -> Runtime:
    missing = missing_settings(settings)
    if missing:
        raise StartupError(
            "Missing settings: " + ", ".join(missing) + ". Set them in the environment or a .env"
            " file (see README, Configuration); `connect-bot check` explains each one."
        )
    servers = _servers(settings)
    db = Database(settings.database_url)
    coordinator = Coordinator(db)
    try:
        coordinator.start()
        migrate_serialised(db)
    except AnotherProcess as exc:
        db.dispose()
        raise StartupError(str(exc)) from None
    except Exception as exc:
        coordinator.close()
        db.dispose()
        raise StartupError(f"The database ({db!r}) is not usable: {type(exc).__name__}") from None
    except BaseException:  # a signal (serve): let go of the locks on the way out
        _let_go(coordinator, db)
        raise
    set_instance(coordinator.instance_id)
    web = make_web_client(_secret(settings.slack_bot_token), settings.slack_api_url)
    try:
        identity = _slack_identity(web, settings.slack_api_url)
    except BaseException:
        _let_go(coordinator, db)
        raise
    poster = SlackPoster(web)
    notifier = SlackNotifier(
        poster, audit_channel=settings.bot_audit_channel, several_servers=servers.several
    )
    scheduler = create_scheduler()
    services = build_services(
        db,
        servers,
        notifier,
        coordinator,
        retry_seconds=settings.bot_connect_retry_seconds,
        authz=Authorizer(
            admin_users=settings.bot_admin_users,
            admin_groups=settings.bot_admin_groups,
            allowed_channels=settings.bot_allowed_channels,
            resolve_group=lambda group: web.usergroups_users_list(usergroup=group)["users"],
            resolve_channel=partial(channel_members, web),
        ),
        confirm_ttl_seconds=settings.bot_confirm_ttl_seconds,
        two_person_rule=settings.bot_two_person_rule,
        grace=timedelta(seconds=settings.bot_missed_start_grace_seconds),
        reminder=timedelta(seconds=settings.bot_schedule_reminder_seconds),
        wall_clock=_wall_clock(),
        health_concurrency=settings.bot_health_concurrency,
        usage_days=settings.bot_usage_days,
    )
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="bot-work")
    deps = Deps(
        services=services,
        poster=poster,
        executor=executor,
        bot_user_id=identity.get("user_id"),
        team_url=identity.get("url"),
        zones=UserZones(web),
    )
    app = create_app(
        web,
        deps,
        signing_secret=None if settings.socket_mode else _secret(settings.slack_signing_secret),
    )
    reporter = RebuildReporter(
        services.rebuild_store,
        poster,
        instance_id=coordinator.instance_id,
        several_servers=servers.several,
        owners=slack_owners(servers.client, poster) if settings.bot_notify_owners else None,
    )
    home_publisher = HomePublisher(deps)
    health_reporter = None
    if services.health_runs is not None:
        health_reporter = HealthReporter(
            services.health_runs,
            poster,
            instance_id=coordinator.instance_id,
            several_servers=servers.several,
            on_final=home_publisher.changed,  # Home shows the latest result per server
        )
        services.health_runs.runner.subscribe(health_reporter.changed)
    runtime = Runtime(
        settings=settings,
        db=db,
        services=services,
        web=web,
        deps=deps,
        app=app,
        scheduler=scheduler,
        executor=executor,
        reporter=reporter,
        home_publisher=home_publisher,
        health_reporter=health_reporter,
        coordinator=coordinator,
        bot_user_id=identity.get("user_id"),
    )
    timers = jobs.schedule(
        scheduler, services, coordinator, sweep_seconds=settings.bot_sweep_seconds
    )
    if services.schedules is not None:
        services.schedules.subscribe(timers.refresh)
        services.schedules.subscribe(home_publisher.rebuild_changed)  # Home lists them
    services.engine.subscribe(reporter.watch)
    services.engine.subscribe(home_publisher.rebuild_changed)
    if services.home is not None:
        services.home.subscribe(home_publisher.changed)
    reporter.start()
    home_publisher.start()
    if health_reporter is not None and services.health_runs is not None:
        health_reporter.start()
        executor.submit(services.health_runs.runner.watch)  # checks a dead process left
    # What a crashed process left half-done is taken up now, not at the first tick; off the
    # main thread, since it may ask Connect (the bot answers Slack meanwhile). Every replica
    # may try: claims and leases decide who does it.
    executor.submit(jobs.reconcile, services)
    executor.submit(timers.sync)  # schedules made before this process started: their timers
    executor.submit(services.engine.watch)
    if start_scheduler:
        scheduler.start()
    return runtime


def _let_go(coordinator: Coordinator, db: Database) -> None:
    with contextlib.suppress(Exception):
        coordinator.close()
    db.dispose()


def build_services(
    db: Database,
    servers: Servers,
    notifier: SlackNotifier,
    instance: Coordinator,
    *,
    retry_seconds: float | None,
    authz: Authorizer,
    confirm_ttl_seconds: int,
    two_person_rule: bool,
    grace: timedelta = timedelta(hours=1),
    reminder: timedelta = timedelta(minutes=15),
    wall_clock: WallClock = utcnow,
    health_concurrency: int = DEFAULT_HEALTH_CONCURRENCY,
    usage_days: int | None = None,
) -> Services:
    """Every use case, wired once; the notifier is how they talk back to people."""
    audit = AuditStore(db, notify=notifier.audit_recorded if notifier.audit_channel else None)
    pending = PendingStore(db, confirm_ttl_seconds)
    confirmations = Confirmations(pending, authz, audit, two_person_rule=two_person_rule)
    journal = JournalStore(db)
    deletions = Deletions(
        servers=servers,
        pending=pending,
        confirmations=confirmations,
        authz=authz,
        audit=audit,
        notifier=notifier,
        journal=journal,
        runner=DeletionRunner(journal, audit, servers),
        instance=instance,
    )
    store = RebuildStore(db)
    schedule_store = ScheduleStore(db)
    health_store = HealthStore(db, wall_clock)
    home = Home(
        db=db,
        servers=servers,
        authz=authz,
        audit=audit,
        rebuilds=store,
        schedules=schedule_store,
        health=health_store.latest_per_server,
    )
    engine = RebuildEngine(
        db,
        servers.client,
        instance_id=instance.instance_id,
        is_alive=instance.is_alive,
        audit=audit,
        retry_seconds=retry_seconds,
        wall_clock=wall_clock,
    )
    records = Records(rebuilds=store, pending=pending, audit=audit)
    access = Access(authz=authz, confirmations=confirmations)
    usage = UsageCounter(usage_days, wall_clock) if usage_days else None
    rebuilds = Rebuilds(
        records=records,
        access=access,
        servers=servers,
        engine=engine,
        deletions=deletions,
        notifier=notifier,
        instance=instance,
        usage=usage,
    )
    impact = Impact(servers=servers)
    health = HealthChecks(servers=servers, impact=impact, concurrency=health_concurrency)
    health_runner = HealthRunner(
        health_store,
        servers,
        instance_id=instance.instance_id,
        is_alive=instance.is_alive,
        concurrency=health_concurrency,
    )
    schedules = Schedules(
        rebuilds=rebuilds,
        records=records,
        access=access,
        servers=servers,
        usage=usage,
        store=schedule_store,
        impact=impact,
        notifier=notifier,
        instance=instance,
        grace=grace,
        reminder=reminder,
    )
    return Services(
        servers=servers,
        authz=authz,
        audit=audit,
        queries=Queries(servers=servers, authz=authz, audit=audit),
        deletions=deletions,
        rebuilds=rebuilds,
        rebuild_store=store,
        engine=engine,
        home=home,
        impact=impact,
        schedules=schedules,
        health=health,
        health_runs=HealthRuns(
            health, health_store, health_runner, confirmations=confirmations, audit=audit
        ),
    )


CLOCK_OFFSET_VARIABLE = "BOT_TEST_CLOCK_OFFSET_SECONDS"


def _wall_clock() -> WallClock:
    """This process's clock for the rebuild engine: off by BOT_TEST_CLOCK_OFFSET_SECONDS (for
    the tests of a replica whose clock is wrong; not a setting, nor documented as one)."""
    offset = float(os.environ.get(CLOCK_OFFSET_VARIABLE) or 0)
    if not offset:
        return utcnow

    def skewed() -> datetime:
        return utcnow() + timedelta(seconds=offset)

    return skewed


def _servers(settings: Settings) -> Servers:
    try:
        configs = settings.server_configs()
        channel_defaults = settings.channel_servers()
        connected = [
            ConnectServer(config.name, client, CacheService(client))
            for config in configs
            for client in [
                ConnectClient(
                    config.url, config.api_key, retry_seconds=settings.bot_connect_retry_seconds
                )
            ]
        ]
        return Servers(
            connected, default=settings.bot_default_server, channel_defaults=channel_defaults
        )
    except ValueError as exc:  # ServerConfigError, or a default that names no server
        raise StartupError(str(exc)) from None


def _slack_identity(web: WebClient, api_url: str) -> Any:
    try:
        return web.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        raise StartupError(
            f"Slack rejected SLACK_BOT_TOKEN at {api_url} ({error}). "
            "Copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page."
        ) from None
    except Exception as exc:
        raise StartupError(f"Could not reach Slack at {api_url} ({type(exc).__name__}).") from None


class _StopDuringStartup(KeyboardInterrupt):
    """SIGTERM or SIGINT before the bot is up: unwinds start-up like Ctrl-C (a query under
    way is cancelled, the database connections close, and with them the migration lock)."""


def serve(settings: Settings | None = None) -> int:
    from bot.logs import configure_logging

    # The handlers come first: start-up may wait a long time (the migration lock, Slack's
    # auth.test), and as PID 1 in a container a signal without a handler is ignored.
    stop = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if starting:
            raise _StopDuringStartup(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    settings = settings or Settings()
    configure_logging(settings)
    runtime: Runtime | None = None
    try:
        runtime = build_runtime(settings)
        starting = False
    except BaseException as exc:
        starting = False  # a second signal, while unwinding: don't interrupt the unwinding
        if stop.is_set():  # whatever the signal interrupted, it asked us to stop: a clean exit
            if runtime is not None:
                runtime.close()
            log.info("connect-bot stopped during start-up (%s)", exc or "signal")
            return 0
        if isinstance(exc, StartupError):
            print(f"connect-bot: {exc}", file=sys.stderr)
            return 2
        raise
    http = runtime.start_http()
    if runtime.health is not None:
        log.info("health checks on %s/healthz and /readyz", runtime.health.bound)
    if settings.socket_mode:
        runtime.start_socket_mode()
        log.info("connect-bot running in Socket Mode; health on %s/healthz", http.bound)
    else:
        log.info("connect-bot listening on %s/slack/events", http.bound)
    stop.wait()
    runtime.close()
    return 0
