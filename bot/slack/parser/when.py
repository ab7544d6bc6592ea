"""`--at HH:MM`, `--at YYYY-MM-DDTHH:MM` and `--in 30m` / `--in 2h`: when a planned rebuild
should start. Pure: the words become a `When`; the person's time zone and the clock make it an
instant later (`bot.services.times.resolve`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.services.times import MAX_AHEAD, After, AtDateTime, AtTime, When
from bot.slack.parser.options import Bad, short

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\Z")
_DATE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})\Z")
_DELAY = re.compile(r"^(\d{1,6})\s*(m|min|h)\Z")
_NAMES = ("--at", "--in")
MAX_MINUTES = int(MAX_AHEAD.total_seconds() // 60)


def take_when(words: list[str], command: str) -> tuple[list[str], When | None]:
    """The words less `--at`/`--in` and their values, and what they ask for (None: now)."""
    rest: list[str] = []
    given: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, sep, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        i += 1
        if name not in _NAMES:
            rest.append(word)
            continue
        if sep:
            value = inline
        elif i < len(words) and not (words[i].startswith("-") and len(words[i]) > 1):
            value = words[i]
            i += 1
        else:
            value = ""
        if not value.strip():
            raise Bad(f"`{name}` needs a value, e.g. `--at 02:00` or `--in 30m`.", command)
        given.append((name, value.strip()))
    if not given:
        return rest, None
    if len({name for name, _ in given}) > 1:
        raise Bad("Use `--at` or `--in`, not both.", command)
    name, value = given[0]
    if any(other != value for _, other in given[1:]):
        raise Bad(f"`{name}` was given twice; give it once.", command)
    return rest, (_at(value, command) if name == "--at" else _in(value, command))


def _at(value: str, command: str) -> When:
    clock = _CLOCK.match(value)
    if clock:
        return AtTime(int(clock.group(1)), int(clock.group(2)))
    stamp = _DATE_TIME.match(value)
    if stamp:
        try:
            year, month, day, hour, minute = (int(part) for part in stamp.groups())
            return AtDateTime(datetime(year, month, day, hour, minute))
        except ValueError:
            raise Bad(f"`{short(value)}` is not a real date and time.", command) from None
    raise Bad(
        f"`{short(value)}` is not a time: use `--at 02:00` (24-hour, in your Slack time zone)"
        " or `--at 2026-12-24T02:00`.",
        command,
    )


def _in(value: str, command: str) -> When:
    delay = _DELAY.match(value.lower()) if value.isascii() else None
    if delay is None:
        raise Bad(
            f"`{short(value)}` is not a delay: use minutes or hours, e.g. `--in 30m` or `--in 2h`.",
            command,
        )
    minutes = int(delay.group(1)) * (60 if delay.group(2) == "h" else 1)
    if not 1 <= minutes <= MAX_MINUTES:
        raise Bad(
            f"`--in` takes from 1 minute to {MAX_AHEAD.days} days, e.g. `--in 30m` or `--in 2h`.",
            command,
        )
    return After(timedelta(minutes=minutes))
