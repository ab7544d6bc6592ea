"""Log lines: text and JSON formats, and redaction of every secret on real logging records."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from slack_bolt import App, BoltRequest

from bot.config import Settings
from bot.logs import REDACTED, Redactor, configure_logging, redact

CONNECT_KEY = "Jk4mQ9xT2vLp8RzW5nYb3HcF7dGs6AeU"
BOT_TOKEN = "xoxb-1111111111-2222222222-AbCdEfGhIjKlMnOpQrStUvWx"
APP_TOKEN = "xapp-1-A0123456789-1234567890123-0a1b2c3d4e5f"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DB_PASSWORD = "s3cr3t-db-pass"
SECRETS = (CONNECT_KEY, BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, DB_PASSWORD)


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"{name.upper()}_FILE", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "apscheduler")}
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "connect_api_key": CONNECT_KEY,
        "slack_bot_token": BOT_TOKEN,
        "slack_app_token": APP_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "bot_database_url": f"postgresql://bot:{DB_PASSWORD}@db.internal/connect_bot",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def capture(**overrides: object) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(settings(**overrides), stream=stream)
    return stream


def assert_clean(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output
    assert REDACTED in output


def connect_call(log: logging.Logger) -> None:
    log.info(
        "connect call",
        extra={
            "event": "connect_call",
            "method": "GET",
            "path": "/__api__/v1/system/caches/runtime",
            "status": 200,
            "duration_ms": 12.5,
            "attempt": 1,
            "error": None,
        },
    )


def test_text_line_carries_extra_fields() -> None:
    stream = capture()
    connect_call(logging.getLogger("bot.connect"))
    line = stream.getvalue().strip()
    assert "\n" not in line
    assert " INFO bot.connect connect call " in line
    assert "event=connect_call method=GET path=/__api__/v1/system/caches/runtime" in line
    assert "status=200 duration_ms=12.5 attempt=1" in line
    assert "error=" not in line  # None-valued fields are left out of text lines


def test_text_quotes_values_with_spaces() -> None:
    stream = capture()
    logging.getLogger("bot.slack").info(
        "request", extra={"event": "request", "command": "caches list", "user": "U1"}
    )
    assert 'command="caches list" user=U1' in stream.getvalue()


def test_json_lines_have_the_documented_fields() -> None:
    stream = capture(bot_log_format="json")
    connect_call(logging.getLogger("bot.connect"))
    logging.getLogger("bot.slack").warning(
        "slack call", extra={"event": "slack_call", "method": "chat.postMessage", "status": 429}
    )
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "bot.connect"
    assert first["message"] == "connect call"
    assert first["ts"].endswith("Z")
    assert {k: first[k] for k in ("event", "method", "status", "duration_ms", "attempt")} == {
        "event": "connect_call",
        "method": "GET",
        "status": 200,
        "duration_ms": 12.5,
        "attempt": 1,
    }
    assert second["event"] == "slack_call" and second["method"] == "chat.postMessage"


def test_json_serialises_odd_extra_values() -> None:
    stream = capture(bot_log_format="json")
    logging.getLogger("bot").info("odd", extra={"thing": object(), "items": ("a", 1)})
    entry = json.loads(stream.getvalue())
    assert entry["thing"].startswith("<object object")
    assert entry["items"] == ["a", 1]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configured_secrets_are_redacted_in_message_args_and_extras(log_format: str) -> None:
    stream = capture(bot_log_format=log_format)
    log = logging.getLogger("bot.test")
    log.info("key %s token %s", CONNECT_KEY, BOT_TOKEN)
    log.info("app token %(t)s", {"t": APP_TOKEN})
    log.warning(
        "odd command",
        extra={"command": f"caches list {SIGNING_SECRET}", "nested": {"db": [DB_PASSWORD]}},
    )
    output = stream.getvalue()
    assert_clean(output)
    if log_format == "json":
        entries = [json.loads(line) for line in output.splitlines()]
        assert entries[2]["nested"] == {"db": [REDACTED]}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_exception_text_and_traceback_are_redacted(log_format: str) -> None:
    stream = capture(bot_log_format=log_format)
    log = logging.getLogger("bot.test")
    try:
        try:
            raise ConnectionError(f"proxy refused Authorization: Key {CONNECT_KEY}")
        except ConnectionError as inner:
            raise RuntimeError(f"while posting with {BOT_TOKEN}") from inner
    except RuntimeError:
        log.exception("failed for %s", APP_TOKEN)
    log.error("where", stack_info=True, extra={"password": DB_PASSWORD})
    output = stream.getvalue()
    assert_clean(output)
    assert "Traceback (most recent call last)" in output
    assert "ConnectionError: proxy refused Authorization: Key [REDACTED]" in output.replace(
        "\\n", "\n"
    )


def test_bolt_rejected_request_body_is_redacted() -> None:
    """A real Bolt app rejecting a badly signed slash command logs its body at INFO."""
    stream = capture()
    app = App(
        token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        token_verification_enabled=False,
    )
    verification_token = "gIkuvaNzQIHg97ATvDxqgjtO"
    body = urlencode(
        {
            "token": verification_token,
            "team_id": "T0001",
            "user_id": "U2147483697",
            "command": "/connect",
            "text": f"caches list {CONNECT_KEY}",
            "response_url": "https://hooks.slack.com/commands/T0001/1234/SeCrEtPaRt",
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    )
    timestamp = str(int(time.time()))
    wrong = hmac.new(b"not-the-secret", f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    response = app.dispatch(
        BoltRequest(
            body=body,
            headers={
                "content-type": ["application/x-www-form-urlencoded"],
                "x-slack-signature": [f"v0={wrong.hexdigest()}"],
                "x-slack-request-timestamp": [timestamp],
            },
        )
    )
    assert response.status == 401
    output = stream.getvalue()
    assert "Invalid request signature detected" in output
    assert verification_token not in output
    assert "SeCrEtPaRt" not in output
    assert CONNECT_KEY not in output
    assert "command=%2Fconnect" in output  # the rest of the body stays readable


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("sent xoxb-123-456-abcDEF to slack", "xoxb-123-456-abcDEF"),
        ("user token xoxp-1-2-3-abc", "xoxp-1-2-3-abc"),
        ("app xapp-1-A1-2-ff00", "xapp-1-A1-2-ff00"),
        ("headers {'Authorization': 'Key zzzzzzzz'}", "zzzzzzzz"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
        ("curl -H 'Key q1W2e3R4t5Y6u7I8o9P0aSdF'", "q1W2e3R4t5Y6u7I8o9P0aSdF"),
        ("token=verif123&team_id=T1", "verif123"),
        ("client access_token=abc123def", "abc123def"),
        ("wss://wss-primary.slack.com/link/?ticket=5e7c-11aa&app_id=A1", "5e7c-11aa"),
        ('payload {"type": "block_actions", "token": "verif456"}', "verif456"),
        ("payload=%7B%22token%22%3A%22verif789%22%7D", "verif789"),
        ("url https://hooks.slack.com/services/T0/B0/XXXX", "T0/B0/XXXX"),
        ("posted to https%3A%2F%2Fhooks.slack.com%2Factions%2FT0%2F1%2FYYYY", "YYYY"),
        ("db postgresql://bot:hunter22@db/x", "hunter22"),
        ("key in text Qw3rTy7uIo9pAs2dFg4hJk6lZx8cVb1n end", "Qw3rTy7uIo9pAs2dFg4hJk6lZx8cVb1n"),
    ],
)
def test_secret_shaped_strings_are_redacted_without_configuration(text: str, gone: str) -> None:
    cleaned = redact(text)
    assert gone not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "content 3f1a9b2c-1111-4a5b-9c8d-0123456789ab rebuilt",  # GUIDs
        "bundle checksum 0123456789abcdef0123456789abcdef",  # lower-case hex digest
        "primary key violates constraint fk_rebuild_items_rebuild_id",
        "ThisIsAThirtyTwoCharCamelCaseNam",  # 32 letters, no digit
        "caches delete python 3.11.4 Local",
        "ts=1503435956.000247 channel=C123ABC456",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_replaces_longest_secret_first_and_ignores_trivial_values() -> None:
    assert redact("pw=abcdef-longer", ["abcdef", "abcdef-longer"]) == f"pw={REDACTED}"
    assert redact("a b c", ["a", ""]) == "a b c"  # one-letter "secrets" would garble every line
    assert Redactor([CONNECT_KEY]).value({"k": [CONNECT_KEY, 3, None]}) == {
        "k": [REDACTED, 3, None]
    }


def test_reconfiguring_replaces_the_handler() -> None:
    first = io.StringIO()
    configure_logging(settings(), stream=first)
    second = capture(bot_log_format="json")
    logging.getLogger("bot").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def test_levels_and_noisy_libraries() -> None:
    stream = capture(bot_log_level="warning")
    logging.getLogger("bot").info("hidden")
    logging.getLogger("bot").warning("shown")
    capture_info = capture()
    logging.getLogger("httpx").info("HTTP Request: GET https://x 200 OK")
    logging.getLogger("httpcore.connection").debug("connect_tcp.started")
    logging.getLogger("bot").info("ours")
    assert "hidden" not in stream.getvalue() and "shown" in stream.getvalue()
    assert capture_info.getvalue().count("\n") == 1 and "ours" in capture_info.getvalue()


def test_unknown_level_falls_back_to_info() -> None:
    stream = capture(bot_log_level="chatty")
    logging.getLogger("bot").info("still here")
    assert "unknown BOT_LOG_LEVEL 'chatty'" in stream.getvalue()
    assert "still here" in stream.getvalue()


def test_a_broken_format_string_still_logs_redacted() -> None:
    stream = io.StringIO()
    handler = configure_logging(settings(), stream=stream)
    # Off the root logger: pytest's own capture handler would raise on the bad record first.
    log = logging.getLogger("bot.broken")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.info("two %s %s", BOT_TOKEN)  # one arg short
    finally:
        log.removeHandler(handler)
        log.propagate = True
    output = stream.getvalue()
    assert "two %s %s" in output and BOT_TOKEN not in output
