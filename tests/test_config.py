"""Configuration: the variable names are a contract with users."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_SLACK_API_URL,
    ExplicitSettings,
    ServerConfig,
    ServerConfigError,
    Settings,
    key_variable,
)

NAMES = [
    "CONNECT_SERVER",
    "CONNECT_API_KEY",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "BOT_DATABASE_URL",
    "BOT_ADMIN_USERS",
    "BOT_ADMIN_GROUPS",
    "BOT_ALLOWED_CHANNELS",
    "BOT_CONNECT_RETRY_SECONDS",
    "BOT_SWEEP_SECONDS",
    "BOT_CONFIRM_TTL_SECONDS",
    "BOT_TWO_PERSON_RULE",
    "BOT_AUDIT_CHANNEL",
    "BOT_CONNECT_SERVERS",
    "BOT_DEFAULT_SERVER",
    "BOT_CHANNEL_SERVERS",
    "CONNECT_API_KEYS",
    "BOT_LOG_FORMAT",
    "BOT_LOG_LEVEL",
    "PORT",
    "BOT_HEALTH_PORT",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    for name in list(os.environ):
        if name.upper().startswith("CONNECT_API_KEY_"):  # a developer's per-server keys
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults():
    settings = Settings()
    assert settings.slack_api_url == DEFAULT_SLACK_API_URL
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.bot_confirm_ttl_seconds == 900
    assert settings.bot_two_person_rule is False
    assert settings.port == 3000
    assert settings.bot_health_port is None  # probes on PORT only
    assert settings.socket_mode is False
    assert settings.bot_admin_users == []


@pytest.mark.parametrize(("value", "port"), [("8081", 8081), ("", None), ("  ", None)])
def test_health_port(monkeypatch: pytest.MonkeyPatch, value: str, port: int | None):
    monkeypatch.setenv("BOT_HEALTH_PORT", value)
    assert Settings().bot_health_port == port


def test_environment_lists_and_flags(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_ADMIN_USERS", "U1, W2 ,")
    monkeypatch.setenv("BOT_ALLOWED_CHANNELS", "C1")
    monkeypatch.setenv("BOT_TWO_PERSON_RULE", "true")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-abc")
    settings = Settings()
    assert settings.bot_admin_users == ["U1", "W2"]
    assert settings.bot_allowed_channels == ["C1"]
    assert settings.bot_two_person_rule is True
    assert settings.socket_mode is True


def test_name_file_reads_docker_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    secret = tmp_path / "connect_api_key"
    secret.write_text("key-from-a-file-123\n")
    monkeypatch.setenv("CONNECT_API_KEY_FILE", str(secret))
    settings = Settings()
    assert settings.connect_api_key is not None
    assert settings.connect_api_key.get_secret_value() == "key-from-a-file-123"
    assert "key-from-a-file-123" not in repr(settings)
    assert "key-from-a-file-123" in settings.secret_values()


def test_dotenv_file_is_read(tmp_path: Path):
    (tmp_path / ".env").write_text(
        "CONNECT_SERVER=https://connect.example.com\nSLACK_BOT_TOKEN=xoxb-from-dotenv\n"
    )
    settings = Settings()
    assert settings.connect_server == "https://connect.example.com"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-dotenv"
    assert "xoxb-from-dotenv" not in repr(settings) and "xoxb-from-dotenv" not in str(settings)


def test_database_password_counts_as_a_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql://bot:pa55word-xyz@db/connect_bot")
    settings = Settings()
    assert "pa55word-xyz" in settings.secret_values()
    assert "pa55word-xyz" not in repr(settings)


# -- several Connect servers ------------------------------------------------------------------

TWO = "staging=https://s,production=https://c"
STAGING_KEY = "key-staging-5f2b9c0d"
PRODUCTION_KEY = "key-production-77aa10e4"


def test_one_server_is_named_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONNECT_SERVER", "https://connect.example.com")
    monkeypatch.setenv("CONNECT_API_KEY", STAGING_KEY)
    assert Settings().server_configs() == [
        ServerConfig("default", "https://connect.example.com", STAGING_KEY)
    ]


def test_nothing_configured_is_one_unnamed_default():
    assert Settings().server_configs() == [ServerConfig("default", "", "")]


def _from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONNECT_API_KEY_STAGING", STAGING_KEY)
    monkeypatch.setenv("CONNECT_API_KEY_PRODUCTION", PRODUCTION_KEY)


def _from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable, key in (("STAGING", STAGING_KEY), ("PRODUCTION", PRODUCTION_KEY)):
        secret = tmp_path / f"key_{variable.lower()}"
        secret.write_text(f"{key}\n")
        monkeypatch.setenv(f"CONNECT_API_KEY_{variable}_FILE", str(secret))


def _from_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"CONNECT_API_KEY_STAGING={STAGING_KEY}\nCONNECT_API_KEY_PRODUCTION='{PRODUCTION_KEY}'\n"
    )


def _mixed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONNECT_API_KEY_STAGING", STAGING_KEY)
    (tmp_path / ".env").write_text(f"CONNECT_API_KEY_PRODUCTION={PRODUCTION_KEY}\n")


@pytest.mark.parametrize(
    ("servers_in_dotenv", "keys"),
    [
        (False, _from_environment),
        (False, _from_files),
        (False, _from_dotenv),
        (False, _mixed),
        (True, _from_environment),
        (True, _from_files),
    ],
    ids=["env", "file", "dotenv", "env+dotenv", "servers-in-dotenv+env", "servers-in-dotenv+file"],
)
def test_several_servers_and_their_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, servers_in_dotenv: bool, keys
):
    keys(monkeypatch, tmp_path)
    if servers_in_dotenv:
        (tmp_path / ".env").write_text(f"BOT_CONNECT_SERVERS={TWO}\n")
    else:
        monkeypatch.setenv("BOT_CONNECT_SERVERS", TWO)
    settings = Settings()
    assert settings.server_configs() == [
        ServerConfig("staging", "https://s", STAGING_KEY),
        ServerConfig("production", "https://c", PRODUCTION_KEY),
    ]
    assert settings.server_key("staging") == STAGING_KEY
    assert {STAGING_KEY, PRODUCTION_KEY} <= set(settings.secret_values())
    for text in (repr(settings), str(settings), *map(repr, settings.server_configs())):
        assert STAGING_KEY not in text and PRODUCTION_KEY not in text


def test_environment_beats_file_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("BOT_CONNECT_SERVERS", "a=https://a,b=https://b,c=https://c")
    (tmp_path / ".env").write_text(
        "CONNECT_API_KEY_A=dotenv-a\nCONNECT_API_KEY_B=dotenv-b\nCONNECT_API_KEY_C=dotenv-c\n"
    )
    for name in ("a", "b"):
        (tmp_path / name).write_text(f"file-{name}")
        monkeypatch.setenv(f"CONNECT_API_KEY_{name.upper()}_FILE", str(tmp_path / name))
    monkeypatch.setenv("CONNECT_API_KEY_A", "env-a")
    keys = [config.api_key for config in Settings().server_configs()]
    assert keys == ["env-a", "file-b", "dotenv-c"]


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("staging", "CONNECT_API_KEY_STAGING"),
        ("prod-eu", "CONNECT_API_KEY_PROD_EU"),
        ("Prod_2", "CONNECT_API_KEY_PROD_2"),
    ],
)
def test_key_variable(name: str, variable: str):
    assert key_variable(name) == variable


def test_a_name_with_a_dash(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_CONNECT_SERVERS", " prod-eu = https://eu.example.com , ")
    monkeypatch.setenv("CONNECT_API_KEY_PROD_EU", STAGING_KEY)
    assert Settings().server_configs() == [
        ServerConfig("prod-eu", "https://eu.example.com", STAGING_KEY)
    ]


def test_a_missing_key_is_empty_not_an_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_CONNECT_SERVERS", TWO)
    monkeypatch.setenv("CONNECT_API_KEY_STAGING", STAGING_KEY)
    configs = Settings().server_configs()
    assert [c.api_key for c in configs] == [STAGING_KEY, ""]  # the startup check names it


@pytest.mark.parametrize(
    ("environment", "phrase"),
    [
        ({"BOT_CONNECT_SERVERS": "staging"}, "'staging' is not NAME=URL"),
        ({"BOT_CONNECT_SERVERS": "https://s"}, "is not NAME=URL"),
        ({"BOT_CONNECT_SERVERS": "staging="}, "'staging=' is not NAME=URL"),
        ({"BOT_CONNECT_SERVERS": "=https://s"}, "is not NAME=URL"),
        ({"BOT_CONNECT_SERVERS": "stag ing=https://s"}, "names use letters, digits, - and _"),
        ({"BOT_CONNECT_SERVERS": "-staging=https://s"}, "is not NAME=URL"),
        ({"BOT_CONNECT_SERVERS": f"{'a' * 41}=https://s"}, "is not NAME=URL"),
        ({"BOT_CONNECT_SERVERS": " , ,"}, "lists no server"),
        ({"BOT_CONNECT_SERVERS": "a=https://a,a=https://b"}, "names 'a' twice"),
        ({"BOT_CONNECT_SERVERS": "prod-eu=https://a,prod_eu=https://b"}, "share the key"),
        ({"BOT_CONNECT_SERVERS": "Prod=https://a,prod=https://b"}, "CONNECT_API_KEY_PROD"),
        (
            {"BOT_CONNECT_SERVERS": TWO, "CONNECT_SERVER": "https://connect.example.com"},
            "either CONNECT_SERVER (one server) or BOT_CONNECT_SERVERS (several), not both",
        ),
        (
            {"BOT_CONNECT_SERVERS": TWO, "CONNECT_API_KEY_STAGING_FILE": "/nonexistent/key"},
            "CONNECT_API_KEY_STAGING_FILE points at '/nonexistent/key'",
        ),
    ],
)
def test_server_configuration_mistakes(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], phrase: str
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONNECT_API_KEY", STAGING_KEY)
    monkeypatch.setenv("CONNECT_API_KEY_PRODUCTION", PRODUCTION_KEY)
    settings = Settings()
    with pytest.raises(ServerConfigError) as caught:
        settings.server_configs()
    message = str(caught.value)
    assert phrase in message
    assert STAGING_KEY not in message and PRODUCTION_KEY not in message
    # secret_values never fails: log redaction must work with a broken configuration.
    assert STAGING_KEY in settings.secret_values()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        ("C0STAGING=staging", {"C0STAGING": "staging"}),
        (" C1 = staging , C2=production,", {"C1": "staging", "C2": "production"}),
        ("C1=staging,C1=production", {"C1": "production"}),
    ],
)
def test_channel_servers(monkeypatch: pytest.MonkeyPatch, value: str, expected: dict[str, str]):
    monkeypatch.setenv("BOT_CHANNEL_SERVERS", value)
    assert Settings().channel_servers() == expected


@pytest.mark.parametrize("value", ["C1", "C1=", "=staging", "C1=staging,C2", " = "])
def test_channel_server_mistakes(monkeypatch: pytest.MonkeyPatch, value: str):
    monkeypatch.setenv("BOT_CHANNEL_SERVERS", value)
    with pytest.raises(ServerConfigError, match=r"is not CHANNEL=NAME, e\.g\. C0STAGING=staging"):
        Settings().channel_servers()


def test_default_server_is_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_DEFAULT_SERVER", "production")
    assert Settings().bot_default_server == "production"
    monkeypatch.setenv("BOT_DEFAULT_SERVER", "  ")
    assert Settings().bot_default_server is None


def test_explicit_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("CONNECT_API_KEY_STAGING", "key-from-the-environment")
    monkeypatch.setenv("CONNECT_API_KEY_PRODUCTION", "key-from-the-environment")
    (tmp_path / ".env").write_text("CONNECT_API_KEY_PRODUCTION=key-from-dotenv\n")
    monkeypatch.setenv("CONNECT_SERVER", "https://from-the-environment")
    settings = ExplicitSettings(bot_connect_servers=TWO, connect_api_keys={"staging": STAGING_KEY})
    assert settings.server_configs() == [
        ServerConfig("staging", "https://s", STAGING_KEY),
        ServerConfig("production", "https://c", ""),
    ]
    assert "key-from-the-environment" not in settings.secret_values()
    assert STAGING_KEY in settings.secret_values()
    assert STAGING_KEY not in repr(settings)


def test_secret_values_include_every_server_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_CONNECT_SERVERS", TWO + ",prod-eu=https://eu")
    monkeypatch.setenv("CONNECT_API_KEY_STAGING", STAGING_KEY)
    monkeypatch.setenv("CONNECT_API_KEY_PRODUCTION", PRODUCTION_KEY)
    monkeypatch.setenv("CONNECT_API_KEY_PROD_EU", "key-prod-eu-31337")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    secrets = Settings().secret_values()
    assert {STAGING_KEY, PRODUCTION_KEY, "key-prod-eu-31337", "xoxb-1"} <= set(secrets)
    assert "" not in secrets
