"""`connect-bot check` against the Connect and Slack simulators over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from slack_sdk import WebClient

from bot.check import MARKS, run_check
from bot.cli import main
from bot.config import ExplicitSettings, Settings, key_variable
from bot.store import Database
from sim.connect_server import FakeConnect
from sim.process import free_port
from sim.slack import FakeSlack

ADMIN_KEY = "Adm1nKeyForCheckTests0000000000A"
PUBLISHER_KEY = "Publ1sherKeyForCheckTests000000B"
PRODUCTION_KEY = "Pr0ductionKeyForCheckTests00000E"
WRONG_KEY = "Wr0ngKeyForCheckTests0000000000D"
BOT_TOKEN = "xoxb-check-bot-token-3f9a1c"
APP_TOKEN = "xapp-check-app-token-8e2d4b"
SIGNING_SECRET = "check-signing-secret-71c0"
DB_PASSWORD = "check-db-password-9931"
SECRETS = (
    ADMIN_KEY,
    PUBLISHER_KEY,
    PRODUCTION_KEY,
    WRONG_KEY,
    BOT_TOKEN,
    APP_TOKEN,
    SIGNING_SECRET,
    DB_PASSWORD,
)
ALL_SCOPES = (
    "commands",
    "chat:write",
    "users:read",
    "usergroups:read",
    "users:read.email",
    "im:write",
    "channels:read",
    "groups:read",
    "im:history",
    "channels:history",
    "groups:history",
)
OK, WARN, FAIL = MARKS["ok"], MARKS["warn"], MARKS["fail"]
# Every SQLite configuration says this (a note, not a failure); PostgreSQL says the other.
ONE_PROCESS = (
    f"{WARN} database: SQLite allows one bot process; use PostgreSQL "
    "(BOT_DATABASE_URL=postgresql://…) to run several replicas"
)
SEVERAL_REPLICAS = f"{OK} database: PostgreSQL, several replicas may share it"
READY_WITH_ONE_NOTE = "Ready to run `connect-bot serve`; read the 1 note(s) marked !."
EVERYTHING_IN_PLACE = "Everything is in place: `connect-bot serve` is ready to run."


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test passes counts: no stray variables, no .env from the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"{name.upper()}_FILE", raising=False)
    for server in ("staging", "production"):
        monkeypatch.delenv(key_variable(server), raising=False)
        monkeypatch.delenv(f"{key_variable(server)}_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def connect() -> Iterator[FakeConnect]:
    with FakeConnect(api_keys={ADMIN_KEY: "administrator", PUBLISHER_KEY: "publisher"}) as fake:
        yield fake.start()


def fake_slack(scopes: tuple[str, ...] = ALL_SCOPES) -> FakeSlack:
    return FakeSlack(
        bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET, scopes=scopes
    )


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with fake_slack() as fake:
        yield fake.start()


def closed_port() -> int:
    """Nobody listens there: below the ephemeral range, so no port-0 bind takes it meanwhile."""
    return free_port()


def settings(connect: FakeConnect, slack: FakeSlack, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "connect_server": connect.url,
        "connect_api_key": ADMIN_KEY,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "bot_admin_users": ["U0ADMIN1"],
        "bot_database_url": f"sqlite:///{tmp_path}/connect-bot.db",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def check(config: Settings, **kwargs: Any) -> tuple[int, list[str]]:
    """Run the check; every run also proves that no secret reached the output."""
    lines: list[str] = []
    code = run_check(config, out=lines.append, **kwargs)
    text = "\n".join(lines)
    for secret in SECRETS:
        assert secret not in text
    assert "Traceback" not in text
    return code, lines


def marked(lines: list[str], mark: str) -> list[str]:
    return [line for line in lines if line.startswith(f"{mark} ")]


def notes(lines: list[str]) -> list[str]:
    """The warnings other than SQLite's one-process note."""
    return [line for line in marked(lines, WARN) if line != ONE_PROCESS]


def only_failure(lines: list[str]) -> str:
    failures = marked(lines, FAIL)
    assert len(failures) == 1, lines
    return failures[0]


# ---------------------------------------------------------------- all good


def test_good_http_mode_configuration_passes_every_line(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    database = Database(f"sqlite:///{tmp_path}/connect-bot.db")
    database.migrate()
    database.dispose()
    code, lines = check(settings(connect, slack, tmp_path))
    assert code == 0
    *checks, note, summary = lines
    assert all(line.startswith(f"{OK} ") for line in checks), lines
    assert note == ONE_PROCESS  # the tests' SQLite: worth knowing, not wrong
    assert summary == READY_WITH_ONE_NOTE
    text = "\n".join(lines)
    assert f"Posit Connect {connect.version}" in text
    assert "runtime cache management is enabled" in text
    assert "belongs to admin, an administrator" in text
    assert "bot @connect-bot in workspace" in text
    assert "scopes the bot needs: commands, chat:write" in text
    assert "HTTP mode" in text
    assert "schema is current" in text
    assert "[" not in text  # one server: no server names


def test_good_socket_mode_with_groups(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    config = settings(
        connect,
        slack,
        tmp_path,
        slack_signing_secret=None,
        slack_app_token=APP_TOKEN,
        bot_admin_users=[],
        bot_admin_groups=["S0ADMINS"],
    )
    code, lines = check(config)
    assert code == 0, lines
    assert not marked(lines, FAIL) and not notes(lines)
    text = "\n".join(lines)
    assert "Socket Mode: SLACK_APP_TOKEN is valid" in text
    assert (
        "commands, chat:write, users:read, channels:history, groups:history, usergroups:read"
        in text
    )
    assert "does not exist yet: `connect-bot serve` creates it" in text
    assert not (tmp_path / "connect-bot.db").exists()  # the check is read-only


def test_web_client_factory_is_used_for_slack_calls(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    made: list[tuple[str, str]] = []

    def factory(token: str, base_url: str) -> WebClient:
        made.append((token, base_url))
        return WebClient(token=token, base_url=base_url, timeout=5)

    config = settings(connect, slack, tmp_path, slack_app_token=APP_TOKEN)
    code, _ = check(config, web_client_factory=factory)
    assert code == 0
    assert made == [(BOT_TOKEN, slack.api_url), (APP_TOKEN, slack.api_url)]


# ---------------------------------------------------------------- Connect


def test_bad_connect_key(connect: FakeConnect, slack: FakeSlack, tmp_path: Path) -> None:
    code, lines = check(settings(connect, slack, tmp_path, connect_api_key="WrongKey0000"))
    assert code == 1
    line = only_failure(lines)
    assert "CONNECT_API_KEY: the key is not valid" in line
    assert "API Keys" in line  # says how to fix it


def test_publisher_key_is_not_an_administrators(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    connect.clear_requests()
    code, lines = check(settings(connect, slack, tmp_path, connect_api_key=PUBLISHER_KEY))
    assert code == 1
    line = only_failure(lines)
    assert "a publisher, not an administrator" in line
    assert connect.count("GET", r"caches/runtime") == 0  # no point asking once the role is known


def test_connect_unreachable_is_one_friendly_line(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    code, lines = check(settings(connect, slack, tmp_path, connect_server=address))
    assert code == 1
    line = only_failure(lines)
    assert line.startswith(f"{FAIL} cannot reach Connect at http://127.0.0.1:")
    assert "Connection refused" in line and "check CONNECT_SERVER" in line


def test_address_that_is_not_connect(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, connect_server=slack.url))
    assert code == 1
    assert "does not look like Posit Connect" in only_failure(lines)


def test_runtime_cache_management_disabled(slack: FakeSlack, tmp_path: Path) -> None:
    with FakeConnect(
        api_keys={ADMIN_KEY: "administrator"}, runtime_cache_management=False
    ) as disabled:
        code, lines = check(settings(disabled.start(), slack, tmp_path))
    assert code == 1
    assert "runtime cache management is disabled" in only_failure(lines)


def test_connect_too_old_for_the_caches_api(slack: FakeSlack, tmp_path: Path) -> None:
    with FakeConnect(api_keys={ADMIN_KEY: "administrator"}, version="2023.03.0") as old:
        code, lines = check(settings(old.start(), slack, tmp_path))
    assert code == 1
    assert "predates the runtime caches API (2023.05): upgrade Connect" in only_failure(lines)


# ---------------------------------------------------------------- Slack


def test_bad_slack_token(connect: FakeConnect, slack: FakeSlack, tmp_path: Path) -> None:
    code, lines = check(settings(connect, slack, tmp_path, slack_bot_token="xoxb-revoked-000"))
    assert code == 1
    line = only_failure(lines)
    assert "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in line
    assert "OAuth & Permissions" in line


def test_user_token_instead_of_bot_token(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, slack_bot_token="xoxp-1-2-3"))
    assert code == 1
    assert "not a bot token" in only_failure(lines)


def test_missing_scopes_say_which_and_to_reinstall(connect: FakeConnect, tmp_path: Path) -> None:
    with fake_slack(scopes=("commands",)) as narrow:
        config = settings(connect, narrow.start(), tmp_path, bot_admin_groups=["S0ADMINS"])
        code, lines = check(config)
    assert code == 1
    line = only_failure(lines)
    assert (
        "lacks the scope(s) chat:write, users:read, channels:history, groups:history,"
        " usergroups:read, users:read.email, im:write, im:history" in line
    )
    assert "manifest.yml" in line and "reinstall the app" in line


def test_group_scope_is_needed_only_with_admin_groups(connect: FakeConnect, tmp_path: Path) -> None:
    scopes = tuple(s for s in ALL_SCOPES if s != "usergroups:read")
    with fake_slack(scopes=scopes) as basic:
        code, lines = check(settings(connect, basic.start(), tmp_path))
    assert code == 0, lines


def test_owner_scopes_are_needed_while_owners_are_notified(
    connect: FakeConnect, tmp_path: Path
) -> None:
    narrow_scopes = tuple(s for s in ALL_SCOPES if s not in ("im:write", "im:history"))
    with fake_slack(scopes=narrow_scopes) as narrow:
        code, lines = check(settings(connect, narrow.start(), tmp_path))
        assert code == 1
        line = only_failure(lines)
        assert "lacks the scope(s) im:write, im:history" in line and "reinstall the app" in line
        # BOT_NOTIFY_OWNERS=false: no owner is looked up or sent a DM, so neither is needed.
        code, lines = check(settings(connect, narrow, tmp_path, bot_notify_owners=False))
    assert code == 0, lines
    assert "scopes the bot needs: commands, chat:write" in "\n".join(lines)
    assert "im:write" not in "\n".join(lines)


def test_channel_scopes_are_needed_with_allowed_channels(
    connect: FakeConnect, tmp_path: Path
) -> None:
    """BOT_ALLOWED_CHANNELS: App Home asks conversations.members who may see Connect."""
    scopes = (
        "commands",
        "chat:write",
        "users:read",
        "users:read.email",
        "im:write",
        "im:history",
        "channels:history",
        "groups:history",
    )
    with fake_slack(scopes=scopes) as narrow:
        code, lines = check(settings(connect, narrow.start(), tmp_path))
        assert code == 0, lines  # no allowed channels: not needed
        config = settings(connect, narrow, tmp_path, bot_allowed_channels=["C0OPS"])
        code, lines = check(config)
    assert code == 1
    line = only_failure(lines)
    assert "lacks the scope(s) channels:read, groups:read" in line
    assert "manifest.yml" in line and "reinstall the app" in line
    with fake_slack(scopes=(*scopes, "channels:read", "groups:read")) as granted:
        code, lines = check(
            settings(connect, granted.start(), tmp_path, bot_allowed_channels=["C0OPS"])
        )
    assert code == 0, lines
    assert "channels:read, groups:read" in "\n".join(lines)


def test_slack_unreachable(connect: FakeConnect, slack: FakeSlack, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/"
    code, lines = check(settings(connect, slack, tmp_path, slack_api_url=url))
    assert code == 1
    line = only_failure(lines)
    assert f"cannot reach the Slack Web API at {url}" in line
    assert "check SLACK_API_URL" in line


def test_http_mode_without_signing_secret(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, slack_signing_secret=None))
    assert code == 1
    line = only_failure(lines)
    assert "HTTP mode needs SLACK_SIGNING_SECRET" in line
    assert "SLACK_APP_TOKEN (xapp-…)" in line


@pytest.mark.parametrize(
    ("app_token", "expected"),
    [
        ("not-an-app-token", "SLACK_APP_TOKEN does not start with xapp-"),
        ("xapp-revoked-1234", "SLACK_APP_TOKEN was refused by Slack (invalid_auth)"),
    ],
)
def test_bad_app_token(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path, app_token: str, expected: str
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, slack_app_token=app_token))
    assert code == 1
    line = only_failure(lines)
    assert expected in line and "connections:write" in line


# ---------------------------------------------------------------- authorisation


def test_no_admins_is_a_warning_not_a_failure(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, bot_admin_users=[]))
    assert code == 0
    (warning,) = notes(lines)
    assert "will be refused to everyone" in warning
    assert lines[-1].startswith("Ready to run")


def test_names_instead_of_ids_and_lonely_two_person_rule(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    config = settings(
        connect, slack, tmp_path, bot_admin_users=["@alice"], bot_two_person_rule=True
    )
    code, lines = check(config)
    assert code == 0
    first, second = notes(lines)
    assert "not Slack IDs (@alice)" in first
    assert "add a second admin" in second


# ---------------------------------------------------------------- database


def test_empty_database_is_fine_because_serve_migrates(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    Database(f"sqlite:///{tmp_path}/connect-bot.db").ping()
    code, lines = check(settings(connect, slack, tmp_path))
    assert code == 0
    assert any("reachable and empty: `connect-bot serve` creates" in line for line in lines)


def test_database_from_a_newer_version(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    database = Database(f"sqlite:///{tmp_path}/connect-bot.db")
    database.migrate()
    with database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    database.dispose()
    code, lines = check(settings(connect, slack, tmp_path))
    assert code == 1
    assert "schema 9999_future, which this connect-bot does not know" in only_failure(lines)


def test_database_unreachable_hides_its_password(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    url = f"postgresql://bot:{DB_PASSWORD}@127.0.0.1:{closed_port()}/connect_bot"
    code, lines = check(settings(connect, slack, tmp_path, bot_database_url=url))
    assert code == 1
    line = only_failure(lines)
    assert line.startswith(
        f"{FAIL} cannot open the database postgresql://bot:[REDACTED]@127.0.0.1:"
    )
    assert "check BOT_DATABASE_URL" in line
    assert SEVERAL_REPLICAS not in lines  # said of a database that answers


# ---------------------------------------------------------------- database: several replicas


def test_sqlite_allows_one_process_which_is_a_note_not_a_failure(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    database = Database(f"sqlite:///{tmp_path}/connect-bot.db")
    database.migrate()
    database.dispose()
    code, lines = check(settings(connect, slack, tmp_path))
    assert code == 0
    assert marked(lines, WARN) == [ONE_PROCESS]
    assert "is reachable and its schema is current" in lines[-3]
    assert lines[-2:] == [ONE_PROCESS, READY_WITH_ONE_NOTE]
    assert SEVERAL_REPLICAS not in lines


def test_sqlite_note_also_before_the_file_exists_and_next_to_a_failure(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(settings(connect, slack, tmp_path))  # no file yet: serve creates it
    assert code == 0
    assert "does not exist yet" in lines[-3] and lines[-2] == ONE_PROCESS
    assert not (tmp_path / "connect-bot.db").exists()

    database = Database(f"sqlite:///{tmp_path}/connect-bot.db")
    database.migrate()
    with database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    database.dispose()
    code, lines = check(settings(connect, slack, tmp_path))
    assert code == 1  # the unknown schema fails; the SQLite note does not
    assert "schema 9999_future" in only_failure(lines)
    assert marked(lines, WARN) == [ONE_PROCESS]


def test_postgresql_says_several_replicas_may_share_it(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path, postgres_url: str
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, bot_database_url=postgres_url))
    assert code == 0, lines
    *checks, summary = lines
    assert all(line.startswith(f"{OK} ") for line in checks), lines
    assert "reachable and empty: `connect-bot serve` creates the schema" in checks[-2]
    assert checks[-1] == SEVERAL_REPLICAS
    assert summary == EVERYTHING_IN_PLACE
    assert ONE_PROCESS not in lines


def test_postgresql_with_a_current_schema_through_the_cli(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path, postgres_url: str
) -> None:
    database = Database(postgres_url)
    database.migrate()
    database.dispose()
    env = {
        "CONNECT_SERVER": connect.url,
        "CONNECT_API_KEY": ADMIN_KEY,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "BOT_ADMIN_USERS": "U0ADMIN1",
        "BOT_DATABASE_URL": postgres_url,
    }
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == 0, result.output
    *_, schema, replicas, summary = result.output.splitlines()
    assert "is reachable and its schema is current" in schema
    assert replicas == SEVERAL_REPLICAS
    assert summary == EVERYTHING_IN_PLACE


# ---------------------------------------------------------------- whole program


def test_nothing_configured(tmp_path: Path) -> None:
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_database_url=f"sqlite:///{tmp_path}/x.db",
    )
    code, lines = check(config)
    assert code == 1
    failures = "\n".join(marked(lines, FAIL))
    for name in ("CONNECT_SERVER", "CONNECT_API_KEY", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        assert f"{name} is not set" in failures or f"needs {name}" in failures
    assert lines[-1] == f"4 problems to fix (marked {FAIL}), then run the check again."


def test_an_unexpected_error_is_a_line_and_is_redacted(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    def broken(token: str, base_url: str) -> WebClient:
        raise RuntimeError(f"bug while using {token}")

    code, lines = check(settings(connect, slack, tmp_path), web_client_factory=broken)
    assert code == 1
    line = only_failure(lines)
    assert (
        line
        == f"{FAIL} the Slack check failed unexpectedly: RuntimeError: bug while using [REDACTED]"
    )


def test_cli_check_exit_codes(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "CONNECT_SERVER": connect.url,
        "CONNECT_API_KEY": ADMIN_KEY,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "BOT_ADMIN_USERS": "U0ADMIN1",
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path}/connect-bot.db",
    }
    runner = CliRunner()
    good = runner.invoke(main, ["check"], env=env)
    assert good.exit_code == 0, good.output
    assert ONE_PROCESS in good.output.splitlines() and READY_WITH_ONE_NOTE in good.output
    bad = runner.invoke(main, ["check"], env={**env, "CONNECT_API_KEY": "WrongKey0000"})
    assert bad.exit_code == 1
    assert "the key is not valid" in bad.output
    for secret in SECRETS:
        assert secret not in good.output + bad.output


# ---------------------------------------------------------------- several Connect servers

PRODUCTION_VERSION = "2025.01.0"


@pytest.fixture(scope="module")
def production() -> Iterator[FakeConnect]:
    with FakeConnect(
        api_keys={PRODUCTION_KEY: "administrator"}, version=PRODUCTION_VERSION
    ) as fake:
        yield fake.start()


def servers_entry(staging: FakeConnect, production: FakeConnect) -> str:
    return f"staging={staging.url},production={production.url}"


def two_servers(
    staging: FakeConnect,
    production: FakeConnect,
    slack: FakeSlack,
    tmp_path: Path,
    **overrides: Any,
) -> Settings:
    """Staging (the module's `connect`) and production, keys given explicitly."""
    values: dict[str, Any] = {
        "bot_connect_servers": servers_entry(staging, production),
        "connect_api_keys": {"staging": ADMIN_KEY, "production": PRODUCTION_KEY},
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "bot_admin_users": ["U0ADMIN1"],
        "bot_database_url": f"sqlite:///{tmp_path}/connect-bot.db",
    }
    values.update(overrides)
    return ExplicitSettings(**values)


def server_lines(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if line[2:].startswith(f"[{name}] ")]


def test_two_good_servers_are_each_checked_and_named(
    connect: FakeConnect, production: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(two_servers(connect, production, slack, tmp_path))
    assert code == 0, lines
    *checks, note, summary = lines
    assert all(line.startswith(f"{OK} ") for line in checks), lines
    assert note == ONE_PROCESS  # the tests' SQLite: worth knowing, not wrong
    assert summary == READY_WITH_ONE_NOTE
    assert f"{OK} 2 Connect servers in BOT_CONNECT_SERVERS: staging (default), production" in lines
    assert f"{OK} [staging] Connect at {connect.url} answers: Posit Connect 2024.08.0" in lines
    assert (
        f"{OK} [production] Connect at {production.url} answers: Posit Connect {PRODUCTION_VERSION}"
    ) in lines
    for name in ("staging", "production"):
        named = "\n".join(server_lines(lines, name))
        assert f"{key_variable(name)} is valid and belongs to admin, an administrator" in named
        assert "runtime cache management is enabled" in named
        assert "the key can list runtime caches" in named
    # Slack, authorisation and the database are not a server's, so they carry no name.
    assert any(line.startswith(f"{OK} SLACK_BOT_TOKEN is valid") for line in lines)


def test_one_server_with_a_bad_key_fails_under_its_name(
    connect: FakeConnect, production: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    keys = {"staging": ADMIN_KEY, "production": WRONG_KEY}
    code, lines = check(two_servers(connect, production, slack, tmp_path, connect_api_keys=keys))
    assert code == 1
    line = only_failure(lines)
    assert line.startswith(f"{FAIL} [production] CONNECT_API_KEY_PRODUCTION: the key is not valid")
    assert "set CONNECT_API_KEY_PRODUCTION to it" in line
    assert all(line.startswith(OK) for line in server_lines(lines, "staging")), lines


def test_missing_key_variable_is_named(
    connect: FakeConnect,
    production: FakeConnect,
    slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECT_API_KEY_STAGING", ADMIN_KEY)  # production's key is not set
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_connect_servers=servers_entry(connect, production),
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        bot_admin_users=["U0ADMIN1"],
        bot_database_url=f"sqlite:///{tmp_path}/connect-bot.db",
    )
    code, lines = check(config)
    assert code == 1
    line = only_failure(lines)
    assert line.startswith(f"{FAIL} [production] CONNECT_API_KEY_PRODUCTION is not set")
    assert "set CONNECT_API_KEY_PRODUCTION to it" in line
    assert f"{OK} [staging] CONNECT_API_KEY_STAGING is valid" in "\n".join(lines)


def test_unknown_default_server(
    connect: FakeConnect, production: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    config = two_servers(connect, production, slack, tmp_path, bot_default_server="qa")
    code, lines = check(config)
    assert code == 1
    line = only_failure(lines)
    assert line.startswith(f"{FAIL} BOT_DEFAULT_SERVER is 'qa', which is not a server")
    assert "(staging, production): set it to one of those" in line
    # The servers themselves are still checked.
    assert server_lines(lines, "staging") and server_lines(lines, "production")


def test_unknown_default_server_with_one_server(
    connect: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = check(settings(connect, slack, tmp_path, bot_default_server="staging"))
    assert code == 1
    assert "unset BOT_DEFAULT_SERVER" in only_failure(lines)


def test_channel_default_naming_an_unknown_server(
    connect: FakeConnect, production: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    channels = ["C0STAGING=staging", "C0QA=qa"]
    config = two_servers(connect, production, slack, tmp_path, bot_channel_servers=channels)
    code, lines = check(config)
    assert code == 1
    line = only_failure(lines)
    assert "BOT_CHANNEL_SERVERS sends channel C0QA to 'qa'" in line
    assert "1 channel default(s)" in "\n".join(marked(lines, OK))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"connect_server": "https://connect.example.com"},
            "Set either CONNECT_SERVER (one server) or BOT_CONNECT_SERVERS (several), not both.",
        ),
        (
            {"bot_connect_servers": "staging https://connect.example.com"},
            "BOT_CONNECT_SERVERS: 'staging https://connect.example.com' is not NAME=URL",
        ),
    ],
)
def test_inconsistent_server_settings(
    connect: FakeConnect,
    production: FakeConnect,
    slack: FakeSlack,
    tmp_path: Path,
    overrides: dict[str, Any],
    expected: str,
) -> None:
    code, lines = check(two_servers(connect, production, slack, tmp_path, **overrides))
    assert code == 1
    assert only_failure(lines).startswith(f"{FAIL} {expected}")
    assert not any("Connect at" in line for line in lines)  # no server was asked
    assert any("SLACK_BOT_TOKEN is valid" in line for line in lines)  # the rest still runs


def test_cli_check_several_servers_from_the_environment(
    connect: FakeConnect, production: FakeConnect, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {
        "BOT_CONNECT_SERVERS": servers_entry(connect, production),
        "CONNECT_API_KEY_STAGING": ADMIN_KEY,
        "CONNECT_API_KEY_PRODUCTION": PRODUCTION_KEY,
        "BOT_DEFAULT_SERVER": "production",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "BOT_ADMIN_USERS": "U0ADMIN1",
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path}/connect-bot.db",
    }
    runner = CliRunner()
    good = runner.invoke(main, ["check"], env=env)
    assert good.exit_code == 0, good.output
    assert "staging, production (default)" in good.output
    bad = runner.invoke(main, ["check"], env={**env, "CONNECT_API_KEY_PRODUCTION": WRONG_KEY})
    assert bad.exit_code == 1
    assert "[production] CONNECT_API_KEY_PRODUCTION: the key is not valid" in bad.output
    for secret in SECRETS:
        assert secret not in good.output + bad.output
