"""The views of scheduled rebuilds (pure): the plan card's buttons and states, the thread's
notices, the list, and the modal as the fake Slack checks it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.services.rebuilds import PlanCard, PlanSummary
from bot.services.schedules import (
    CancelledBeforeStart,
    MissedStart,
    NothingMatches,
    Reevaluated,
    Reminder,
    Scheduled,
    ScheduleForm,
)
from bot.slack.views import plan_card_view
from bot.slack.views.schedules import (
    modal_values,
    schedule_modal,
    schedule_notice_view,
    scheduled_list_view,
)
from sim.slack.blocks import validate_blocks
from sim.slack.modals import check_modal

AT = datetime(2026, 12, 24, 1, 0, tzinfo=UTC)
TOKEN = f"<!date^{int(AT.timestamp())}^{{date_short_pretty}} {{time}}|2026-12-24 01:00 UTC>"
EVIL = "<!channel> *bold* & <https://evil.example|click>"


def summary(**changes: Any) -> PlanSummary:
    base = PlanSummary(
        rebuild_id=7,
        state="planned",
        description=EVIL,
        requested_by="U0REQ",
        channel="C0OPS",
        parallelism=2,
        total=120,
        skipped=0,
        by_type=[("shiny", 120)],
        by_runtime=[("R 4.3.1", 120)],
        waves={0: 1, 1: 119},
        warmup=[("R 4.3.1", "Sales")],
        skipped_titles=[],
    )
    return replace(base, **changes)


def card(**changes: Any) -> dict[str, Any]:
    plan = PlanCard(summary(), pending_id="p1", server="main", channel="C0OPS", message_ts="1.2")
    return plan_card_view(replace(plan, **changes)).to_dict()


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (el["text"]["text"], el["action_id"])
        for block in message["blocks"]
        if block["type"] == "actions"
        for el in block["elements"]
    ]


def scheduled(**changes: Any) -> Scheduled:
    base = Scheduled(
        rebuild_id=7,
        state="scheduled",
        description=EVIL,
        server="staging",
        channel="C0OPS",
        thread_ts="1.2",
        requested_by="U0REQ",
        scheduled_by="U0ADMIN",
        scheduled_for=AT,
        reminded=False,
        total=120,
        criteria=None,
        claimed_by=None,
    )
    return replace(base, **changes)


def test_the_plan_card_offers_start_or_the_time_given_and_schedule() -> None:
    assert buttons(card()) == [
        ("Start", "rebuild_start"),
        ("Schedule…", "rebuild_schedule_open"),
        ("Discard", "rebuild_discard"),
    ]
    timed = card(proposed_for=AT, proposed_label="Thu 24 Dec 02:00 Europe/Paris")
    assert buttons(timed) == [
        ("Schedule for Thu 24 Dec 02:00 Europe/Paris", "rebuild_schedule"),
        ("Schedule…", "rebuild_schedule_open"),
        ("Discard", "rebuild_discard"),
    ]
    assert TOKEN in str(timed)
    assert validate_blocks(timed["blocks"]) == []


@pytest.mark.parametrize(
    ("state", "said", "labels"),
    [
        ("scheduled", "Scheduled for", ["Cancel"]),
        ("unscheduled", "before its start", []),
        ("missed", "Missed its start", []),
        ("unmatched", "no published content matched", []),
    ],
)
def test_the_card_once_scheduled(state: str, said: str, labels: list[str]) -> None:
    message = card(state=state, scheduled_for=AT, scheduled_by="U0ADMIN", decided_by="U0ADMIN")
    text = str(message)
    assert said in text and TOKEN in text
    assert [label for label, _ in buttons(message)] == labels
    assert "<!channel>" not in text
    assert validate_blocks(message["blocks"]) == []


def test_thread_notices_escape_connect_text_and_fit() -> None:
    titles = [f"{EVIL} app {n}" for n in range(500)]
    notices = [
        Reminder(scheduled(), timedelta(minutes=15)),
        MissedStart(scheduled(), timedelta(hours=2), timedelta(hours=1)),
        CancelledBeforeStart(scheduled(), "U0ADMIN"),
        NothingMatches(scheduled()),
        Reevaluated(scheduled(), 120, 122, titles[:10], 500, titles[:10], 498),
        Reevaluated(scheduled(), 120, 120, error="Connect could not list its content: 502"),
        Reevaluated(scheduled(), 120, 120, late=timedelta(minutes=10)),
    ]
    for notice in notices:
        message = schedule_notice_view(notice).to_dict()
        text = str(message)
        assert "<!channel>" not in text and "<https://evil" not in text
        assert validate_blocks(message["blocks"]) == []
        assert TOKEN in text or isinstance(notice, Reevaluated | NothingMatches)
    reminder = schedule_notice_view(notices[0]).to_dict()
    assert buttons(reminder) == [("Cancel", "rebuild_cancel")]
    diff = str(schedule_notice_view(notices[4]).to_dict())
    assert "Planned 120 item(s); 122 match now." in diff
    assert "500 new:" in diff and "+490 more" in diff and "498 no longer match" in diff
    assert "building the 120 item(s) planned" in str(schedule_notice_view(notices[5]).to_dict())
    assert "10 min late" in str(schedule_notice_view(notices[6]).to_dict())


def test_the_list_names_when_who_and_the_server_when_several() -> None:
    items = [scheduled(rebuild_id=n, scheduled_for=AT + timedelta(hours=n)) for n in range(30)]
    several = scheduled_list_view(items, several_servers=True).to_dict()
    text = str(several)
    assert "Scheduled rebuilds: 30" in text and "+20 more." in text
    assert TOKEN in text and "on *staging*" in text and "<@U0ADMIN>" in text
    assert "*#9*" in text and "…" not in several["blocks"][1]["text"]["text"]  # none clipped
    assert "<!channel>" not in text
    assert "on *staging*" not in str(scheduled_list_view(items[:1]).to_dict())
    assert "No rebuild is scheduled" in str(scheduled_list_view([]).to_dict())


def test_the_modal_is_one_slack_accepts_and_its_values_are_read_back() -> None:
    form = ScheduleForm("p1", 7, EVIL, AT)
    view = schedule_modal(form, channel="C0OPS", message_ts="1.2")
    check_modal(view)  # raises what Slack would answer
    (picker,) = [b["element"] for b in view["blocks"] if b["type"] == "input"]
    assert picker == {
        "type": "datetimepicker",
        "action_id": "at",
        "initial_date_time": int(AT.timestamp()),
    }
    submitted = {**view, "state": {"values": {"when": {"at": {"selected_date_time": 1800000000}}}}}
    metadata, picked = modal_values(submitted)
    assert metadata == {"pending_id": "p1", "channel": "C0OPS", "message_ts": "1.2"}
    assert picked == 1800000000
    assert modal_values({"private_metadata": "not json"}) == ({}, None)
