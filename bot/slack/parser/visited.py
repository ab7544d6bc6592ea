"""`--visited-within 30d`: leave out of a rebuild or a health check the content nobody visited
in that many days
(`2w` for weeks; a bare number
is days). Pure: the words become a number of days."""

from __future__ import annotations

import re

from bot.slack.parser.options import Bad

NAME = "--visited-within"
MAX_DAYS = 365
_SPAN = re.compile(r"^(\d{1,4})\s*(d|day|days|w|week|weeks)?\Z", re.IGNORECASE)
EXAMPLE = "e.g. `--visited-within 30d` or `--visited-within 2w`"


def take_visited_within(words: list[str], command: str) -> tuple[list[str], int | None]:
    """The words less `--visited-within` and its value, and the days it gives (None: absent)."""
    rest: list[str] = []
    given: list[int] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, sep, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        i += 1
        if name != NAME:
            rest.append(word)
            continue
        if sep:
            value = inline
        elif i < len(words) and not words[i].startswith("-"):
            value = words[i]
            i += 1
        else:
            value = ""
        given.append(days(value.strip(), command))
    if not given:
        return rest, None
    if any(other != given[0] for other in given[1:]):
        raise Bad(f"`{NAME}` was given twice; give it once.", command)
    return rest, given[0]


def days(value: str, command: str) -> int:
    """`30d` -> 30, `2w` -> 14, `7` -> 7; between 1 and `MAX_DAYS`."""
    if not value:
        raise Bad(f"`{NAME}` needs a number of days, {EXAMPLE}.", command)
    match = _SPAN.match(value)
    if not match:
        raise Bad(f"`{NAME}` takes days or weeks, {EXAMPLE}.", command)
    count = int(match.group(1)) * (7 if (match.group(2) or "d").lower().startswith("w") else 1)
    if not 1 <= count <= MAX_DAYS:
        raise Bad(f"`{NAME}` takes 1 to {MAX_DAYS} days.", command)
    return count
