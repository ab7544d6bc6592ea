"""Configuration from the environment, a `.env` file, or `NAME_FILE` secret files.

Variable names are a contract with users: `CONNECT_SERVER` and `CONNECT_API_KEY` match rsconnect,
the `SLACK_*` names match Slack's own tooling, the rest are ours (`BOT_*`, `PORT`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///connect-bot.db"

CommaList = Annotated[list[str], NoDecode]
DEFAULT_SERVER_NAME = "default"
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


class ServerConfigError(ValueError):
    """The Connect server settings are inconsistent; the message says what to fix."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    url: str
    api_key: str = dataclasses.field(repr=False)


def key_variable(name: str) -> str:
    """The API key variable of a named server: `CONNECT_API_KEY_<NAME>`, `-` becomes `_`."""
    return "CONNECT_API_KEY_" + name.upper().replace("-", "_")


def _secret_text(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


class FileSecretsSource(PydanticBaseSettingsSource):
    """`NAME_FILE=/run/secrets/x` reads NAME from that file (Docker and Kubernetes secrets)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            # The message names the variable and the path, never the (unknown) value.
            raise ValueError(
                f"{field_name.upper()}_FILE points at {path!r}: {exc.strerror}"
            ) from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    connect_server: str | None = None
    connect_api_key: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    bot_database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    bot_admin_users: CommaList = Field(default_factory=list)
    bot_admin_groups: CommaList = Field(default_factory=list)
    bot_allowed_channels: CommaList = Field(default_factory=list)
    bot_confirm_ttl_seconds: int = Field(default=900, gt=0)
    # How long Connect may keep failing (per item of a rebuild) before the bot gives up.
    bot_connect_retry_seconds: float = Field(default=600, gt=0)
    bot_two_person_rule: bool = False
    bot_sweep_seconds: int = Field(default=30, ge=1, le=3600)
    # A scheduled rebuild found late (every process was down at its time) still starts if at
    # most this late; later, it is reported as missed. The reminder comes this long before.
    bot_missed_start_grace_seconds: int = Field(default=3600, ge=0)
    bot_schedule_reminder_seconds: int = Field(default=900, ge=0, le=86400)
    bot_audit_channel: str | None = None
    # Content URL requests (process starts) one `health` check makes at once.
    bot_health_concurrency: int = Field(default=4, ge=1, le=32)
    # Rebuilds build what people visit soonest: visits are counted over this many days.
    bot_usage_days: int = Field(default=7, ge=1, le=90)
    # DM the owners of failed rebuild items (scopes users:read.email and im:write).
    bot_notify_owners: bool = True
    # Several Connect servers (see `server_configs`): "staging=https://s,production=https://c".
    bot_connect_servers: str | None = None
    bot_default_server: str | None = None
    bot_channel_servers: CommaList = Field(default_factory=list)
    # Per-server keys given explicitly (simulators); deployments use CONNECT_API_KEY_<NAME>.
    connect_api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    bot_log_format: Literal["text", "json"] = "text"
    bot_log_level: str = "INFO"
    port: int = Field(default=3000, ge=0, le=65535)
    # /healthz and /readyz on a port of their own too: probes are answered even when slow
    # clients hold every connection of PORT. Unset: only on PORT.
    bot_health_port: int | None = Field(default=None, ge=0, le=65535)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values win, then the environment, then NAME_FILE, then .env.
        return (init_settings, env_settings, FileSecretsSource(settings_cls), dotenv_settings)

    @field_validator(
        "bot_admin_users",
        "bot_admin_groups",
        "bot_allowed_channels",
        "bot_channel_servers",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "connect_server",
        "bot_audit_channel",
        "bot_connect_servers",
        "bot_default_server",
        "bot_health_port",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None and bool(self.slack_app_token.get_secret_value())

    @property
    def database_url(self) -> str:
        return self.bot_database_url.get_secret_value()

    def server_configs(self) -> list[ServerConfig]:
        """The Connect servers, in order (the first is the default unless BOT_DEFAULT_SERVER).

        Raises ServerConfigError with what to fix. One server: CONNECT_SERVER + CONNECT_API_KEY,
        named `default`. Several: BOT_CONNECT_SERVERS, each key in CONNECT_API_KEY_<NAME>.
        """
        if not self.bot_connect_servers:
            return [
                ServerConfig(
                    DEFAULT_SERVER_NAME,
                    self.connect_server or "",
                    _secret_text(self.connect_api_key),
                )
            ]
        if self.connect_server:
            raise ServerConfigError(
                "Set either CONNECT_SERVER (one server) or BOT_CONNECT_SERVERS (several), not both."
            )
        configs: list[ServerConfig] = []
        for entry in self.bot_connect_servers.split(","):
            if not entry.strip():
                continue
            name, sep, url = (part.strip() for part in entry.partition("="))
            if not sep or not SERVER_NAME.fullmatch(name) or not url:
                raise ServerConfigError(
                    f"BOT_CONNECT_SERVERS: {entry.strip()[:60]!r} is not NAME=URL (names use"
                    " letters, digits, - and _), e.g. staging=https://connect-staging.example.com"
                )
            if any(c.name == name for c in configs):
                raise ServerConfigError(f"BOT_CONNECT_SERVERS names {name!r} twice.")
            # `Prod-EU` and `prod_eu` are two servers but one CONNECT_API_KEY_PROD_EU.
            shared = [c.name for c in configs if key_variable(c.name) == key_variable(name)]
            if shared:
                raise ServerConfigError(
                    f"BOT_CONNECT_SERVERS: {shared[0]!r} and {name!r} would share the key"
                    f" {key_variable(name)}; rename one."
                )
            configs.append(ServerConfig(name, url, self.server_key(name)))
        if not configs:
            raise ServerConfigError("BOT_CONNECT_SERVERS lists no server.")
        return configs

    def server_key(self, name: str) -> str:
        """CONNECT_API_KEY_<NAME>: given explicitly, then the environment, _FILE, then .env."""
        variable = key_variable(name)
        explicit = self.connect_api_keys.get(name)
        if explicit is not None:
            return explicit.get_secret_value()
        return self._lookup(variable)

    def _lookup(self, variable: str) -> str:
        if os.environ.get(variable):
            return os.environ[variable]
        path = os.environ.get(f"{variable}_FILE")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise ServerConfigError(
                    f"{variable}_FILE points at {path!r}: {exc.strerror}"
                ) from None
        env_file = self.model_config.get("env_file")
        if isinstance(env_file, str) and Path(env_file).is_file():
            from dotenv import dotenv_values

            return dotenv_values(env_file).get(variable) or ""
        return ""

    def channel_servers(self) -> dict[str, str]:
        """BOT_CHANNEL_SERVERS="C0STAGING=staging": a channel's own default server."""
        pairs: dict[str, str] = {}
        for entry in self.bot_channel_servers:
            channel, sep, name = (part.strip() for part in entry.partition("="))
            if not sep or not channel or not name:
                raise ServerConfigError(
                    f"BOT_CHANNEL_SERVERS: {entry[:60]!r} is not CHANNEL=NAME,"
                    " e.g. C0STAGING=staging"
                )
            pairs[channel] = name
        return pairs

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction."""
        secrets = [
            self.connect_api_key,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            *self.connect_api_keys.values(),
        ]
        values = [s.get_secret_value() for s in secrets if s is not None]
        with contextlib.suppress(ServerConfigError):
            values += [c.api_key for c in self.server_configs()]
        password = _url_password(self.database_url)
        if password:
            values.append(password)
        return [v for v in values if v]


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password
    except Exception:
        return None


class ExplicitSettings(Settings):
    """Settings from the given values and the defaults only: no environment, no .env, no files.

    For the simulators (demo, tests, benchmarks): a developer's exported SLACK_APP_TOKEN or
    BOT_ALLOWED_CHANNELS must not leak into a simulated bot.
    """

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    def _lookup(self, variable: str) -> str:
        return ""  # nothing from the environment: keys come in `connect_api_keys`
