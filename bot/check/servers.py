"""Which Connect servers are configured, is that consistent, and then each server's own checks."""

from __future__ import annotations

from bot.check.connect import Target, check_server
from bot.check.report import Report
from bot.config import ServerConfig, ServerConfigError, Settings


def check_connect(settings: Settings, report: Report) -> None:
    """Every configured server; with several, each line is headed with the server's name."""
    configs = _server_configs(settings, report)
    if configs is None:
        return
    several = len(configs) > 1
    named = bool(settings.bot_connect_servers)
    for config in configs:
        scoped = report.scoped(config.name) if several else report
        try:
            check_server(Target.of(config, named=named), scoped)
        except Exception as exc:  # one broken server must not hide the others' answers
            scoped.fail(f"the Connect check failed unexpectedly: {type(exc).__name__}: {exc}")


def _server_configs(settings: Settings, report: Report) -> list[ServerConfig] | None:
    """The servers, after reporting what is inconsistent; None when there is nothing to check."""
    try:
        configs = settings.server_configs()
    except ServerConfigError as exc:
        report.fail(str(exc))
        return None
    names = [config.name for config in configs]
    default_ok = _default_server(settings, names, report)
    channels = _channel_servers(settings, names, report)
    if len(configs) > 1:
        default = settings.bot_default_server or names[0]
        listing = ", ".join(
            f"{name} (default)" if default_ok and name == default else name for name in names
        )
        routed = f"; {len(channels)} channel default(s)" if channels else ""
        report.ok(f"{len(configs)} Connect servers in BOT_CONNECT_SERVERS: {listing}{routed}")
    if settings.bot_connect_servers and _secret_set(settings):
        report.warn(
            "CONNECT_API_KEY is set but not used: with BOT_CONNECT_SERVERS each server's key is "
            f"in CONNECT_API_KEY_<NAME> (e.g. {Target.of(configs[0], named=True).key_setting})"
        )
    return configs


def _default_server(settings: Settings, names: list[str], report: Report) -> bool:
    default = settings.bot_default_server
    if not default or default in names:
        return True
    if not settings.bot_connect_servers:
        report.fail(
            f"BOT_DEFAULT_SERVER is {default!r}, but the only Connect server is CONNECT_SERVER "
            "(named default): unset BOT_DEFAULT_SERVER, or name your servers in "
            "BOT_CONNECT_SERVERS"
        )
    else:
        report.fail(
            f"BOT_DEFAULT_SERVER is {default!r}, which is not a server in BOT_CONNECT_SERVERS "
            f"({', '.join(names)}): set it to one of those, or unset it to use the first "
            f"({names[0]})"
        )
    return False


def _channel_servers(settings: Settings, names: list[str], report: Report) -> dict[str, str]:
    """BOT_CHANNEL_SERVERS, each entry naming a configured server; the good entries."""
    try:
        channels = settings.channel_servers()
    except ServerConfigError as exc:
        report.fail(str(exc))
        return {}
    good: dict[str, str] = {}
    for channel, name in channels.items():
        if name in names:
            good[channel] = name
        else:
            report.fail(
                f"BOT_CHANNEL_SERVERS sends channel {channel} to {name!r}, which is not a "
                f"configured Connect server ({', '.join(names)}): use one of those names, "
                "or remove the entry"
            )
    return good


def _secret_set(settings: Settings) -> bool:
    key = settings.connect_api_key
    return key is not None and bool(key.get_secret_value())
