"""Logging: one structured line per event (text or JSON lines), with secrets redacted.

Redaction happens in a filter on our handler, before any formatting, so every place a secret can
hide in a record is covered: the rendered message, its args, `extra=` fields, exception text and
tracebacks, and stack info. Bolt logs the raw body of a request whose signature fails (INFO
"Invalid request signature detected ... body: ..."); that body carries the slash command's
`token=` field and a live `response_url`, both redacted here.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from bot.config import Settings

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4

# Third-party loggers that are noisy at INFO. httpx/httpcore log every request line (the
# Connect client already logs its calls, without headers); APScheduler logs every job run.
QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "urllib3": logging.WARNING,
    "apscheduler": logging.WARNING,
}

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)

# (pattern, replacement) pairs for secrets whose value we do not know in advance.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack tokens: bot/user/app/refresh/config tokens.
    (re.compile(r"\bxox(?:[abposr]|e(?:\.xox[a-z])?)-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),
    # Authorization header values, as header text, dict repr or JSON.
    (
        re.compile(
            r"""(?i)(authorization['"]?\s*[:=]\s*['"]?(?:(?:key|bearer|basic|token)\s+)?)"""
            r"""[^\s'",;}]+"""
        ),
        r"\1" + REDACTED,
    ),
    # A scheme and credential without the header name ("Key" is capitalised as sent).
    (re.compile(r"\b((?:[Bb]earer|Key)\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + REDACTED),
    # Tokens in form bodies, JSON and URL-encoded JSON (Slack's verification token in slash
    # command and interactivity bodies; access_token= and friends elsewhere), and the one-time
    # ticket in a Socket Mode WebSocket URL.
    (re.compile(r"(?i)(\b[a-z_]*(?:token|ticket)=)[^&\s'\"]+"), r"\1" + REDACTED),
    (re.compile(r"""(?i)(["'][a-z_]*token["']\s*:\s*["'])[^"']+"""), r"\1" + REDACTED),
    (re.compile(r"(?i)(%22[a-z_]*token%22%3A(?:%20)?%22)[^%&\s]+"), r"\1" + REDACTED),
    # response_url / incoming webhooks: anyone holding the URL can post as the app.
    (re.compile(r"(?i)(hooks\.slack\.com(?:/|%2F))[^\s'\"&,;)]+"), r"\1" + REDACTED),
    # Passwords in URLs (database URLs, proxies).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
)

# Connect API keys are 32 random letters and digits. Requiring both cases and a digit keeps hex
# digests (bundle checksums, lower-case signing secrets) and CamelCase names readable; the
# configured key is redacted by value anyway.
_CONNECT_KEY = re.compile(r"\b[A-Za-z0-9]{32}\b")


# Every pattern above needs one of these; text without any is left as it is.
_MAYBE_SECRET = re.compile(
    r"(?i)xox|xapp|authoriz|bearer|key\s|token|ticket|hooks\.slack|://|[a-z0-9]{32}"
)


def _looks_like_connect_key(candidate: str) -> bool:
    return (
        any(c.isupper() for c in candidate)
        and any(c.islower() for c in candidate)
        and any(c.isdigit() for c in candidate)
    )


class Redactor:
    """Replaces known secret values and secret-shaped strings with `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret containing another is replaced whole. A value under
        # MIN_SECRET_LENGTH characters is no secret, and replacing it would garble every line.
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        if not _MAYBE_SECRET.search(text):
            return text  # the common case (paths, ids, statuses): one scan instead of twelve
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return _CONNECT_KEY.sub(
            lambda m: REDACTED if _looks_like_connect_key(m.group()) else m.group(), text
        )

    def value(self, value: Any) -> Any:
        """Redact strings inside an `extra=` value, keeping its shape for the JSON formatter."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self(str(value))


@lru_cache(maxsize=32)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret in `secrets`, and anything shaped like a token, replaced."""
    return _redactor(tuple(secrets))(text)


class RedactingFilter(logging.Filter):
    """Handler filter: rewrites each record so that no formatter can render a secret."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(secrets)
        self._tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(_render(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRS:
                setattr(record, name, self.redact.value(value))
        return True


def _render(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not lose the record (or leak raw args)
        return f"{record.msg} {record.args!r}"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and not k.startswith("_")
    }


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [p for p in (record.exc_text, record.stack_info) if p]
    return "\n".join(parts)


class TextFormatter(logging.Formatter):
    """`2024-05-01T12:00:00.000Z INFO bot.connect connect call method=GET status=200 ...`"""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{k}={_text_value(v)}" for k, v in _extras(record).items() if v is not None
        )
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        trace = _exception_text(self, record)
        return f"{line}\n{trace}" if trace else line


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    # Quote only when needed, so `status=200 path=/x` stays greppable.
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extras, and exc when raised."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        trace = _exception_text(self, record)
        if trace:
            entry["exc"] = trace
        return json.dumps(entry, default=str, ensure_ascii=False)


_instance: str | None = None


def set_instance(instance_id: str | None) -> None:
    """Every log line from now on names this process's instance id (several replicas)."""
    global _instance
    _instance = instance_id


class _InstanceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _instance is not None and not hasattr(record, "instance"):
            record.instance = _instance
        return True


class _BotHandler(logging.StreamHandler[TextIO]):
    """Marks the handler we install, so configuring again replaces it rather than adding one."""


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to `stream` (stderr) in the configured format, redacted.

    Returns the installed handler. Safe to call more than once: the previous one is replaced.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BotHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _BotHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.bot_log_format == "json" else TextFormatter())
    handler.addFilter(_InstanceFilter())
    handler.addFilter(RedactingFilter(settings.secret_values()))
    root.addHandler(handler)
    root.setLevel(_level(settings.bot_log_level))
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    # Warnings (deprecations from libraries) then pass through the same redacted handler.
    logging.captureWarnings(True)
    return handler


def _level(name: str) -> int:
    level = logging.getLevelName(name.strip().upper())
    if isinstance(level, int):
        return level
    logging.getLogger(__name__).warning("unknown BOT_LOG_LEVEL %r, using INFO", name)
    return logging.INFO
