"""Configuration: the variable names are a contract with users."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_DATABASE_URL, DEFAULT_SLACK_API_URL, Settings

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
    "BOT_CONFIRM_TTL_SECONDS",
    "BOT_TWO_PERSON_RULE",
    "BOT_AUDIT_CHANNEL",
    "PORT",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults():
    settings = Settings()
    assert settings.slack_api_url == DEFAULT_SLACK_API_URL
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.bot_confirm_ttl_seconds == 900
    assert settings.bot_two_person_rule is False
    assert settings.port == 3000
    assert settings.socket_mode is False
    assert settings.bot_admin_users == []


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
