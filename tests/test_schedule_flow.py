"""Scheduled rebuilds over HTTP with the bot in-process: `--at`/`--in` in each person's Slack
time zone, the card's Schedule button (Start's rules), the Schedule… modal, listing and
cancelling, and (with an injected clock, no sleeping) the reminder, the start with the
selection asked again, a start found late inside the grace and one missed outside it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rebuild_support import (
    items,
    plan,
    published,
    rebuild_id_of,
    rebuild_row,
    wait_ephemeral,
    wait_final,
)
from slack_helpers import stale_click
from sqlalchemy import select, update

from bot.services.schedules import Scheduled, Schedules
from bot.services.times import AtTime, resolve
from bot.store import AuditEntry, PendingAction, utcnow
from sim.stack import ADMIN, OPS_CHANNEL, SECOND_ADMIN, VIEWER, Stack, start_stack

DATE_TOKEN = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\} \{time\}\|")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Replica:
    """Another process's identity, for two Schedules racing on one database."""

    def __init__(self, instance_id: str, *, others_alive: bool = False) -> None:
        self.instance_id = instance_id
        self.others_alive = others_alive  # every other replica runs too

    def is_alive(self, instance_id: str | None) -> bool:
        return instance_id == self.instance_id or (self.others_alive and instance_id is not None)


def clocked(
    stack: Stack,
    clock: Clock,
    name: str = "replica-a",
    *,
    others_alive: bool = False,
    **options: object,
) -> Schedules:
    """The stack's schedule use case with a clock of the test's own."""
    s = stack.runtime.services.schedules
    assert s is not None
    return Schedules(
        rebuilds=s.rebuilds,
        records=s.records,
        access=s.access,
        servers=s.servers,
        usage=s.usage,
        store=s.store,
        impact=s.impact,
        notifier=s.notifier,
        instance=Replica(name, others_alive=others_alive),
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def audits(stack: Stack, action: str) -> list[AuditEntry]:
    with stack.runtime.db.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).all()
        )


def schedule_card(stack: Stack, text: str, *, count: int = 1, user: str = ADMIN) -> int:
    """Plan with a time and click "Schedule for …"; the rebuild's id, once scheduled."""
    card = plan(stack, text, count=count, user=user)
    stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule", user_id=user)
    rebuild_id = rebuild_id_of(card)
    assert stack.slack.wait_for(
        lambda s: "Scheduled for" in s.message(OPS_CHANNEL, card.ts).all_text(), timeout=5
    )
    assert rebuild_row(stack.runtime.db, rebuild_id).state == "scheduled"
    return rebuild_id


def item(stack: Stack, rebuild_id: int) -> Scheduled:
    s = stack.runtime.services.schedules
    assert s is not None
    found = s.store.get(rebuild_id)
    assert found is not None
    return found


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack(build_seconds=0.1, bot_two_person_rule=False) as running:
        yield running


def test_at_in_two_slack_time_zones_gives_two_instants(stack: Stack) -> None:
    slack = stack.slack
    slack.add_user(ADMIN, "ada", real_name="Ada Admin", tz="America/Los_Angeles")
    slack.add_user(SECOND_ADMIN, "grace", real_name="Grace Admin", tz="Asia/Tokyo")
    slack.add_user(VIEWER, "victor", real_name="Victor Viewer", tz="Mars/Olympus")
    instants = {}
    for count, (user, zone) in enumerate(
        [(ADMIN, "America/Los_Angeles"), (SECOND_ADMIN, "Asia/Tokyo")], start=1
    ):
        before = utcnow()
        card = plan(stack, "rebuild -t shiny --at 02:00", count=count, user=user)
        expected = {resolve(AtTime(2, 0), ZoneInfo(zone), t) for t in (before, utcnow())}
        (epoch,) = {int(m) for m in DATE_TOKEN.findall(card.all_text())}
        at = datetime.fromtimestamp(epoch, UTC)
        assert at in expected
        assert at.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "02:00"
        label = card.button_labels()[0]
        assert label.startswith("Schedule for ") and label.endswith(f"02:00 {zone}")
        instants[zone] = at
    # 02:00 in Los Angeles and in Tokyo are 17 hours apart (8 in winter, 7 in summer... +9).
    gap = (instants["America/Los_Angeles"] - instants["Asia/Tokyo"]) % timedelta(days=1)
    assert gap in (timedelta(hours=16), timedelta(hours=17))
    # users.info was asked once per person: later commands reuse the zone.
    plan(stack, "rebuild -t shiny --at 03:00", count=3, user=ADMIN)
    asked = [c.params.get("user") for c in slack.calls_to("users.info")]
    assert asked.count(ADMIN) == 1
    # An unknown zone: refused with an example, nothing planned.
    stack.requests.command("rebuild --at 02:00", user_id=VIEWER)
    text = wait_ephemeral(slack, "don't know your time zone", user=VIEWER)
    assert "--in 30m" in text and "Usage:" in text


def test_schedule_follows_starts_rules_then_lists_and_cancels() -> None:
    with start_stack(build_seconds=0.1, bot_two_person_rule=True) as stack:
        slack, db = stack.slack, stack.runtime.db
        card = plan(stack, "rebuild -t shiny --in 30m")
        assert card.button_labels()[1:] == ["Schedule…", "Discard"]
        assert card.find_element("rebuild_schedule")[1]["style"] == "primary"
        assert ":alarm_clock: Starts <!date^" in card.all_text()
        rebuild_id = rebuild_id_of(card)
        # A viewer may not; the requester may not either (two-person rule): nothing changes.
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule", user_id=VIEWER)
        wait_ephemeral(slack, "administrator", user=VIEWER)
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule")
        wait_ephemeral(slack, "Two-person rule")
        assert rebuild_row(db, rebuild_id).state == "planned"
        # Another administrator schedules it: the card says when, by whom, with Cancel.
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule", user_id=SECOND_ADMIN)
        assert slack.wait_for(lambda _: rebuild_row(db, rebuild_id).state == "scheduled", 5)
        row = rebuild_row(db, rebuild_id)
        assert row.scheduled_by == SECOND_ADMIN and row.criteria is not None
        assert timedelta(minutes=29) < row.scheduled_for - utcnow() <= timedelta(minutes=30)
        assert slack.wait_for(
            lambda s: "Scheduled for" in s.message(OPS_CHANNEL, card.ts).all_text(), 5
        )
        shown = slack.message(OPS_CHANNEL, card.ts)
        assert shown.button_labels() == ["Cancel"]
        assert f"<@{SECOND_ADMIN}>" in shown.all_text()
        assert [(a.actor, a.outcome) for a in audits(stack, "rebuild_schedule")][-1] == (
            SECOND_ADMIN,
            "scheduled",
        )
        # Single use: a stale click on the old button changes nothing.
        pending_id = _pending_id(stack, rebuild_id)
        stale_click(stack, card.ts, "rebuild_schedule", pending_id, user=SECOND_ADMIN)
        wait_ephemeral(slack, "already handled", user=SECOND_ADMIN)
        # This process set its timer at once.
        timer = stack.runtime.scheduler.get_job(f"scheduled-start-{rebuild_id}")
        assert timer is not None and timer.next_run_time == row.scheduled_for
        assert stack.runtime.scheduler.get_job(f"scheduled-reminder-{rebuild_id}") is not None

        # Listed, with the reader's own time.
        stack.requests.command("rebuild scheduled")
        listed = wait_ephemeral(slack, "Scheduled rebuilds: 1")
        assert f"*#{rebuild_id}* <!date^{int(row.scheduled_for.timestamp())}^" in listed
        assert f"<@{SECOND_ADMIN}>" in listed

        # An expired plan cannot be scheduled.
        second = plan(stack, "rebuild -t quarto-static --in 2h", count=2)
        with db.session() as session:
            session.execute(
                update(PendingAction)
                .where(PendingAction.id == _pending_id(stack, rebuild_id_of(second)))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        stack.requests.click(OPS_CHANNEL, second.ts, "rebuild_schedule", user_id=SECOND_ADMIN)
        wait_ephemeral(slack, "expired", user=SECOND_ADMIN)
        assert rebuild_row(db, rebuild_id_of(second)).state == "expired"

        # A viewer cannot cancel it; an administrator can, with the command.
        stack.requests.command(f"rebuild cancel {rebuild_id}", user_id=VIEWER)
        assert slack.wait_for(lambda _: len(audits(stack, "rebuild_cancel")) == 1, 5)
        assert rebuild_row(db, rebuild_id).state == "scheduled"
        stack.requests.command(f"rebuild cancel {rebuild_id}")
        wait_ephemeral(slack, f"Cancelled rebuild #{rebuild_id}")
        assert rebuild_row(db, rebuild_id).state == "cancelled"
        assert slack.wait_for(
            lambda s: any("cancelled" in m.all_text() for m in s.thread(OPS_CHANNEL, card.ts)), 5
        )
        assert "Cancelled by" in slack.message(OPS_CHANNEL, card.ts).all_text()
        assert stack.runtime.scheduler.get_job(f"scheduled-start-{rebuild_id}") is None
        cancels = audits(stack, "rebuild_cancel")
        assert [(a.actor, a.outcome) for a in cancels] == [(VIEWER, "denied"), (ADMIN, "cancelled")]
        stack.requests.command("rebuild scheduled")
        wait_ephemeral(slack, "No rebuild is scheduled")
        assert stack.connect.builds_started() == []


def _pending_id(stack: Stack, rebuild_id: int) -> str:
    with stack.runtime.db.session() as session:
        for row in session.scalars(select(PendingAction)).all():
            if row.payload.get("rebuild_id") == rebuild_id:
                return row.id
    raise AssertionError("no pending request")


def test_reminder_once_then_the_start_asks_connect_again(stack: Stack) -> None:
    connect, slack = stack.connect, stack.slack
    shiny = [i for i in published(connect) if i["app_mode"] == "shiny"]
    rebuild_id = schedule_card(stack, "rebuild -t shiny --in 30m")
    scheduled = item(stack, rebuild_id)
    assert scheduled.total == len(shiny) and not scheduled.reminded
    # Between the plan and the start: one new shiny app, one locked (not built any more).
    added = connect.add_content(title="Brand new dashboard", app_mode="shiny")
    connect.set_locked(shiny[0]["guid"], "frozen for audit")
    clock = Clock(scheduled.scheduled_for - timedelta(minutes=15))
    a, b = clocked(stack, clock, "replica-a"), clocked(stack, clock, "replica-b")

    assert [a.remind(rebuild_id), b.remind(rebuild_id)].count(True) == 1
    assert a.remind(rebuild_id) is False
    thread_ts = scheduled.thread_ts
    assert thread_ts is not None
    reminders = [m for m in slack.thread(OPS_CHANNEL, thread_ts) if "starts" in m.text]
    assert len(reminders) == 1 and reminders[0].button_labels() == ["Cancel"]
    assert a.fire(rebuild_id) == "not-due"

    clock.now = scheduled.scheduled_for + timedelta(seconds=2)
    outcomes: list[str] = []
    racers = [
        threading.Thread(target=lambda s=s: outcomes.append(s.fire(rebuild_id))) for s in (a, b)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(outcomes)[-1] == "started" and outcomes.count("started") == 1

    wait_final(slack, thread_ts, timeout=20)
    texts = [m.all_text() for m in slack.thread(OPS_CHANNEL, thread_ts)]
    (diff,) = [t for t in texts if "Starting scheduled rebuild" in t]
    assert f"Planned {len(shiny)} item(s); {len(shiny)} match now." in diff
    assert "1 new: Brand new dashboard" in diff and "1 no longer match" in diff
    assert "min late" not in diff
    assert sum("started by" in t for t in texts) == 1
    built = set(connect.builds_started())
    assert added["guid"] in built and shiny[0]["guid"] not in built
    assert built == {i["guid"] for i in shiny[1:]} | {added["guid"]}
    (start,) = [a for a in audits(stack, "rebuild_start") if a.target == f"rebuild #{rebuild_id}"]
    assert start.outcome == "started" and "scheduled start" in start.detail
    assert start.actor == ADMIN


def test_late_inside_the_grace_starts_and_outside_is_missed(stack: Stack) -> None:
    slack, db = stack.slack, stack.runtime.db
    late_id = schedule_card(stack, "rebuild -t shiny --in 30m")
    missed_id = schedule_card(stack, "rebuild -t quarto-static --in 30m", count=2)
    late, missed = item(stack, late_id), item(stack, missed_id)
    clock = Clock(missed.scheduled_for + timedelta(hours=1, seconds=1))
    schedules = clocked(stack, clock, grace=timedelta(hours=1))
    assert schedules.fire(missed_id) == "missed"
    assert schedules.fire(missed_id) == "not-scheduled"  # once
    assert rebuild_row(db, missed_id).state == "missed"
    assert missed.thread_ts is not None
    assert slack.wait_for(
        lambda s: any(
            "was not started" in m.all_text() for m in s.thread(OPS_CHANNEL, missed.thread_ts or "")
        ),
        5,
    )
    assert "Missed its start" in slack.message(OPS_CHANNEL, missed.thread_ts).all_text()
    (record,) = [a for a in audits(stack, "rebuild_start") if a.outcome == "missed"]
    assert record.target == f"rebuild #{missed_id}" and "grace 3600 s" in record.detail

    clock.now = late.scheduled_for + timedelta(minutes=59)
    assert schedules.fire(late_id) == "started"
    assert late.thread_ts is not None
    wait_final(slack, late.thread_ts, timeout=20)
    texts = [m.all_text() for m in slack.thread(OPS_CHANNEL, late.thread_ts)]
    assert any("59 min late: the bot was not running" in t for t in texts)
    assert all(guid for guid in stack.connect.builds_started())


def test_schedule_modal_validates_and_schedules(stack: Stack) -> None:
    slack, db = stack.slack, stack.runtime.db
    card = plan(stack, "rebuild -t shiny")
    assert card.button_labels() == ["Start", "Schedule…", "Discard"]
    rebuild_id = rebuild_id_of(card)
    stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule_open", user_id=VIEWER)
    wait_ephemeral(slack, "administrator", user=VIEWER)
    assert slack.modals.opened() == []

    stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_schedule_open")
    modal = slack.modals.wait_modal()
    picker = modal.element("when")
    assert picker["type"] == "datetimepicker" and picker["initial_date_time"] > utcnow().timestamp()
    past = int((utcnow() - timedelta(minutes=5)).timestamp())
    answer = stack.requests.submit_view(modal, {"when": {"at": past}})
    assert answer.status_code == 200
    assert answer.json() == {
        "response_action": "errors",
        "errors": {"when": "That time has passed."},
    }
    far = int((utcnow() + timedelta(days=31)).timestamp())
    errors = stack.requests.submit_view(modal, {"when": {"at": far}}).json()["errors"]
    assert "more than 30 days" in errors["when"]
    assert rebuild_row(db, rebuild_id).state == "planned"

    at = (utcnow() + timedelta(hours=3)).replace(second=0, microsecond=0)
    closed = stack.requests.submit_view(modal, {"when": {"at": int(at.timestamp())}})
    assert closed.status_code == 200 and not closed.content
    assert slack.wait_for(lambda _: rebuild_row(db, rebuild_id).state == "scheduled", 5)
    assert rebuild_row(db, rebuild_id).scheduled_for == at
    assert slack.wait_for(
        lambda s: f"<!date^{int(at.timestamp())}^" in s.message(OPS_CHANNEL, card.ts).all_text(), 5
    )
    # The same modal again: the plan is used, said privately in the channel.
    stack.requests.submit_view(modal, {"when": {"at": int(at.timestamp())}})
    wait_ephemeral(slack, "already handled")


def test_app_home_lists_the_scheduled_rebuilds(stack: Stack) -> None:
    rebuild_id = schedule_card(stack, "rebuild -t shiny --in 2h")
    at = item(stack, rebuild_id).scheduled_for
    stack.requests.app_home_opened(VIEWER)
    home = stack.slack.views.wait_home(VIEWER, lambda v: "Scheduled: 1" in v.all_text())
    text = home.all_text()
    assert f"#{rebuild_id} <!date^{int(at.timestamp())}^" in text
    assert f"by <@{ADMIN}>" in text


def test_a_start_whose_process_died_after_its_claim_is_taken_over(stack: Stack) -> None:
    rebuild_id = schedule_card(stack, "rebuild -t shiny --in 30m")
    scheduled = item(stack, rebuild_id)
    clock = Clock(scheduled.scheduled_for + timedelta(seconds=1))
    dead, alive = clocked(stack, clock, "replica-dead"), clocked(stack, clock, "replica-alive")
    assert dead.store.claim_start(rebuild_id, dead.instance_id, clock())  # ... then it was killed
    assert alive.fire(rebuild_id) == "not-scheduled"  # the claim is taken: not started twice
    assert alive.reconcile() == 1
    assert alive.reconcile() == 0
    assert scheduled.thread_ts is not None
    wait_final(stack.slack, scheduled.thread_ts, timeout=20)
    assert rebuild_row(stack.runtime.db, rebuild_id).claimed_by == "replica-alive"
    texts = [m.all_text() for m in stack.slack.thread(OPS_CHANNEL, scheduled.thread_ts)]
    assert sum("Starting scheduled rebuild" in t for t in texts) == 1


def test_uses_package_is_resolved_again_at_the_start(stack: Stack) -> None:
    connect = stack.connect
    shiny = [i for i in published(connect) if i["app_mode"] == "shiny"]
    connect.add_package(shiny[0]["guid"], "tinypkg")
    rebuild_id = schedule_card(stack, "rebuild --uses-package tinypkg --in 30m")
    assert item(stack, rebuild_id).total == 1
    criteria = rebuild_row(stack.runtime.db, rebuild_id).criteria
    assert criteria is not None and criteria["packages"] == ["tinypkg"]
    assert criteria["filter"]["guids"] == []  # the names are kept, not what they matched
    connect.add_package(shiny[1]["guid"], "tinypkg")  # a second app starts using it
    scheduled = item(stack, rebuild_id)
    schedules = clocked(stack, Clock(scheduled.scheduled_for + timedelta(seconds=1)))
    assert schedules.fire(rebuild_id) == "started"
    assert scheduled.thread_ts is not None
    wait_final(stack.slack, scheduled.thread_ts, timeout=20)
    assert set(connect.builds_started()) == {shiny[0]["guid"], shiny[1]["guid"]}
    texts = [m.all_text() for m in stack.slack.thread(OPS_CHANNEL, scheduled.thread_ts)]
    assert any("Planned 1 item(s); 2 match now." in t for t in texts)


def thread_texts(stack: Stack, ts: str | None) -> list[str]:
    assert ts is not None
    return [m.all_text() for m in stack.slack.thread(OPS_CHANNEL, ts)]


def test_a_start_that_raises_is_scheduled_again_says_why_and_is_retried(stack: Stack) -> None:
    connect, db = stack.connect, stack.runtime.db
    rebuild_id = schedule_card(stack, "rebuild -t shiny --in 30m")
    scheduled = item(stack, rebuild_id)
    planned = sorted(row.guid for row in items(db, rebuild_id))
    # Connect lists one item twice: the items' unique (rebuild_id, guid) refuses the swap.
    connect.odd_listing(lambda listed: listed + [i for i in listed if i["app_mode"] == "shiny"])
    clock = Clock(scheduled.scheduled_for + timedelta(seconds=1))
    schedules = clocked(stack, clock)
    assert schedules.fire(rebuild_id) == "failed"
    row = rebuild_row(db, rebuild_id)
    assert (row.state, row.claimed_by, row.claimed_at) == ("scheduled", None, None)
    assert sorted(r.guid for r in items(db, rebuild_id)) == planned  # one transaction: kept
    assert stack.slack.wait_for(
        lambda _: any("could not start" in t for t in thread_texts(stack, scheduled.thread_ts)), 5
    )
    [told] = [t for t in thread_texts(stack, scheduled.thread_ts) if "could not start" in t]
    assert "IntegrityError" in told and "scheduled again" in told
    # Listed again for the timers (a sweep re-arms them); failing the same way says nothing new.
    assert rebuild_id in [i.rebuild_id for i in schedules.scheduled()]
    clock.now += timedelta(minutes=1)
    assert schedules.fire(rebuild_id) == "failed"

    connect.odd_listing(None)
    clock.now += timedelta(minutes=1)
    assert schedules.fire(rebuild_id) == "started"
    wait_final(stack.slack, scheduled.thread_ts or "", timeout=20)
    texts = thread_texts(stack, scheduled.thread_ts)
    assert sum("could not start" in t for t in texts) == 1
    assert sum("Starting scheduled rebuild" in t for t in texts) == 1
    assert sorted(set(connect.builds_started())) == planned


def test_rebuild_scheduled_lists_a_start_under_way(stack: Stack) -> None:
    rebuild_id = schedule_card(stack, "rebuild -t shiny --in 30m")
    s = stack.runtime.services.schedules
    assert s is not None
    assert s.store.claim_start(rebuild_id, "replica-elsewhere", utcnow())
    stack.requests.command("rebuild scheduled")
    listed = wait_ephemeral(stack.slack, "Scheduled rebuilds: 1")
    assert f"*#{rebuild_id}*" in listed and "starting now" in listed


def test_a_claim_held_too_long_is_retaken_even_from_a_live_process(stack: Stack) -> None:
    rebuild_id = schedule_card(stack, "rebuild -t shiny --in 30m")
    scheduled = item(stack, rebuild_id)
    clock = Clock(scheduled.scheduled_for + timedelta(seconds=1))
    hung = clocked(stack, clock, "replica-hung")
    alive = clocked(stack, clock, "replica-alive", others_alive=True)
    assert hung.store.claim_start(rebuild_id, hung.instance_id, clock())  # ... and then it hangs
    clock.now += timedelta(minutes=1)
    assert alive.reconcile() == 0  # alive, and claimed a minute ago: still its to do
    clock.now += timedelta(minutes=5)
    assert alive.reconcile() == 1
    wait_final(stack.slack, scheduled.thread_ts or "", timeout=20)
    assert rebuild_row(stack.runtime.db, rebuild_id).claimed_by == "replica-alive"
    texts = thread_texts(stack, scheduled.thread_ts)
    assert sum("Starting scheduled rebuild" in t for t in texts) == 1
