"""When a scheduled rebuild starts: what people type (`--at 02:00`, `--at 2026-12-24T02:00`,
`--in 30m`) made an instant, in the person's Slack time zone (`users.info` `tz`), and the
limits every way of scheduling shares. Pure: the caller passes `now`.

Local times are resolved with `zoneinfo` for the day they fall on (never with `tz_offset`,
which is the offset *now*), so a schedule across a DST change lands on the wall-clock time
asked for. A time the clocks skip (02:30 on a spring-forward night) is refused; a time that
happens twice (autumn) is its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_AHEAD = timedelta(days=30)
EXAMPLES = "e.g. `--at 02:00`, `--at 2026-12-24T02:00` or `--in 30m`"


@dataclass(frozen=True, slots=True)
class AtTime:
    """`--at HH:MM`: the next time the clock shows it."""

    hour: int
    minute: int


@dataclass(frozen=True, slots=True)
class AtDateTime:
    """`--at YYYY-MM-DDTHH:MM`: that wall-clock time."""

    local: datetime  # naive: in the person's zone


@dataclass(frozen=True, slots=True)
class After:
    """`--in 30m` / `--in 2h`."""

    delay: timedelta


When = AtTime | AtDateTime | After


class BadTime(ValueError):
    """A time that cannot be scheduled; the message says why, in the person's terms."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def zone_named(name: str | None) -> ZoneInfo | None:
    """The IANA zone Slack names (`America/Los_Angeles`), or None when it is not one."""
    if not name or not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def resolve(when: When, zone: ZoneInfo | None, now: datetime) -> datetime:
    """The UTC instant `when` means for someone in `zone` at `now`; BadTime if none, or if
    it is past or more than MAX_AHEAD away."""
    if isinstance(when, After):
        instant = now + when.delay
    else:
        if zone is None:
            raise BadTime(
                "I don't know your time zone (Slack did not say), so I can't read `--at`."
                " Use `--in 30m` or `--in 2h`, or set your time zone in Slack."
            )
        if isinstance(when, AtTime):
            instant = _next_occurrence(when, zone, now)
        else:
            instant = _existing(when.local.date(), when.local.time(), zone)
    reason = refusal(instant, now)
    if reason:
        raise BadTime(reason)
    return instant.astimezone(UTC)


def refusal(instant: datetime, now: datetime) -> str | None:
    """Why `instant` cannot be a start time (past, or too far ahead); None when it can."""
    if instant <= now:
        return f"That time has passed; pick a time ahead ({EXAMPLES})."
    if instant - now > MAX_AHEAD:
        return f"That is more than {MAX_AHEAD.days} days ahead; pick a nearer time ({EXAMPLES})."
    return None


def _next_occurrence(when: AtTime, zone: ZoneInfo, now: datetime) -> datetime:
    wall = time(when.hour, when.minute)
    today = now.astimezone(zone).date()
    for day in (today, today + timedelta(days=1), today + timedelta(days=2)):
        if datetime.combine(day, wall, tzinfo=zone) > now:
            return _existing(day, wall, zone)
    raise AssertionError("unreachable: a wall-clock time recurs within two days")


def _existing(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """`day` at `wall` in `zone` (its first occurrence), or BadTime when the clocks skip it."""
    local = datetime.combine(day, wall, tzinfo=zone)  # fold=0: the first of two
    back = local.astimezone(UTC).astimezone(zone)
    if (back.date(), back.time()) != (day, wall):
        raise BadTime(
            f"{wall:%H:%M} does not exist on {day:%Y-%m-%d} in {zone.key} (the clocks go"
            " forward then); pick another time."
        )
    return local


def local_label(instant: datetime, zone: ZoneInfo | None) -> str:
    """`Tue 24 Dec 02:00 Europe/Paris` (plain text, for buttons; messages use `<!date^…>`)."""
    if zone is None:
        return f"{instant.astimezone(UTC):%a %d %b %H:%M} UTC"
    return f"{instant.astimezone(zone):%a %d %b %H:%M} {zone.key}"


@dataclass(frozen=True, slots=True)
class Proposal:
    """A start time given with the plan (`--at`, `--in`): its card offers to schedule it."""

    at: datetime  # UTC
    zone: str | None = None  # the requester's IANA zone, for the button's label

    @property
    def label(self) -> str:
        return local_label(self.at, zone_named(self.zone))

    def to_json(self) -> dict[str, str | None]:
        return {"at": self.at.astimezone(UTC).isoformat(), "zone": self.zone}

    @classmethod
    def from_json(cls, data: object) -> Proposal | None:
        if not isinstance(data, dict) or not isinstance(data.get("at"), str):
            return None
        try:
            at = datetime.fromisoformat(data["at"])
        except ValueError:
            return None
        if at.tzinfo is None:
            return None
        zone = data.get("zone")
        return cls(at, zone if isinstance(zone, str) else None)
