"""Configuration from the environment, a `.env` file, or `NAME_FILE` secret files.

Variable names are a contract with users: `CONNECT_SERVER` and `CONNECT_API_KEY` match rsconnect,
the `SLACK_*` names match Slack's own tooling, the rest are ours (`BOT_*`, `PORT`).
"""

from __future__ import annotations

import os
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
    bot_two_person_rule: bool = False
    bot_audit_channel: str | None = None
    bot_log_format: Literal["text", "json"] = "text"
    bot_log_level: str = "INFO"
    port: int = Field(default=3000, ge=0, le=65535)

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

    @field_validator("bot_admin_users", "bot_admin_groups", "bot_allowed_channels", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("connect_server", "bot_audit_channel", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None and bool(self.slack_app_token.get_secret_value())

    @property
    def database_url(self) -> str:
        return self.bot_database_url.get_secret_value()

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction."""
        secrets = [
            self.connect_api_key,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
        ]
        values = [s.get_secret_value() for s in secrets if s is not None]
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
