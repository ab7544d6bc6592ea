"""Cache deletion end to end: command -> dry run -> card -> Confirm/Cancel -> Connect -> audit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sim.stack import (
    ADMIN,
    AUDIT_CHANNEL,
    OPS_CHANNEL,
    SECOND_ADMIN,
    VIEWER,
    Stack,
    start_stack,
)
from tests.conftest import needs_postgres
from tests.slack_helpers import (
    audit_rows,
    card,
    dry_runs,
    has_cache,
    is_marker_call,
    later_request_handled,
    pending_rows,
    real_deletes,
    stale_click,
    wait_audit,
    wait_ephemeral,
    wait_message,
)

PY = "caches delete -l python -V 3.11.3"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack(bot_audit_channel=AUDIT_CHANNEL) as running:
        yield running


def _confirm(stack: Stack, message, user: str = ADMIN):
    value = message.find_element("cache_delete_confirm")[1]["value"]
    return stack.requests.click(
        OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value, user_id=user
    )


def _finished(stack: Stack, ts: str, timeout: float = 10) -> str:
    ok = stack.slack.wait_for(
        lambda fake: "deletion finished" in fake.message(OPS_CHANNEL, ts).all_text(),
        timeout=timeout,
    )
    assert ok, stack.slack.message(OPS_CHANNEL, ts).all_text()
    return stack.slack.message(OPS_CHANNEL, ts).all_text()


def test_full_deletion_flow(stack: Stack):
    response = stack.requests.command(PY)
    assert response.status_code == 200
    assert "Dry-running" in response.json()["text"]

    message = card(stack)
    # The dry run happened first, with Connect's exact body.
    assert dry_runs(stack) == [
        {"language": "Python", "version": "3.11.3", "image_name": "Local", "dry_run": True}
    ]
    assert real_deletes(stack) == []
    text = message.all_text()
    assert "<@U0ADMIN>" in text and "Python 3.11.3" in text
    assert "published item(s) use it" in text
    assert "cannot run until" in text
    _, confirm = message.find_element("cache_delete_confirm")
    assert confirm["style"] == "danger" and confirm["confirm"]["style"] == "danger"
    assert "Cancel" in message.button_labels()
    # The button carries only the pending id; the targets live server-side.
    assert stack.slack.wait_for(lambda _: pending_rows(stack)[0].message_ts == message.ts)
    [row] = pending_rows(stack)
    assert confirm["value"] == row.id
    assert row.state == "pending" and row.requested_by == ADMIN and row.message_ts == message.ts
    assert row.payload["deletions"][0]["version"] == "3.11.3"

    assert _confirm(stack, message).status_code == 200
    final = _finished(stack, message.ts)
    assert ":white_check_mark: deleted" in final
    assert "Successfully deleted runtime cache" in final
    assert real_deletes(stack) == [
        {"language": "Python", "version": "3.11.3", "image_name": "Local", "dry_run": False}
    ]
    assert not has_cache(stack, "Python", "3.11.3")
    assert "Confirm" not in stack.slack.message(OPS_CHANNEL, message.ts).button_labels()
    updates = stack.slack.calls_to("chat.update")
    assert updates and all(call.params.get("parse") == "none" for call in updates)
    assert [(r.action, r.outcome) for r in audit_rows(stack)] == [
        ("cache_delete_request", "requested"),
        ("cache_delete_confirm", "confirmed"),
        ("cache_delete", "succeeded"),
    ]
    assert stack.slack.wait_for(lambda fake: len(fake.messages(AUDIT_CHANNEL)) == 3)
    assert stack.slack.wait_for(lambda _: pending_rows(stack)[0].state == "done")


def test_several_targets_with_one_missing(stack: Stack):
    stack.requests.command("caches delete -l R -V 4.3.0 -l python -V 9.9.9 -l R -V 4.2.1")
    eph = wait_ephemeral(stack, "dry run refused", user=ADMIN)
    assert "Python 9.9.9" in eph.all_text() and "no such cache" in eph.all_text()
    message = card(stack)
    assert "R 4.3.0" in message.all_text() and "R 4.2.1" in message.all_text()
    assert "9.9.9" not in message.all_text()
    _confirm(stack, message)
    _finished(stack, message.ts)
    assert not has_cache(stack, "R", "4.3.0") and not has_cache(stack, "R", "4.2.1")
    assert len(real_deletes(stack)) == 2


def test_missing_cache_gets_an_answer_and_no_card(stack: Stack):
    stack.requests.command("caches delete -l R -V 1.2.3")
    eph = wait_ephemeral(stack, "no such cache", user=ADMIN)
    assert "caches list" in eph.all_text()
    later_request_handled(stack)
    assert [c for c in stack.slack.calls_to("chat.postMessage") if not is_marker_call(c)] == []
    assert pending_rows(stack) == []


def test_unauthorised_requester_is_refused_before_any_dry_run(stack: Stack):
    stack.requests.command(PY, user_id=VIEWER)
    wait_ephemeral(stack, "Only connect-bot administrators", user=VIEWER)
    assert dry_runs(stack) == []
    assert stack.slack.wait_for(lambda _: len(audit_rows(stack)) == 1)
    row = audit_rows(stack)[0]
    assert (row.actor, row.action, row.outcome) == (VIEWER, "cache_delete_request", "denied")


def test_unauthorised_click_changes_nothing(stack: Stack):
    stack.requests.command(PY)
    message = card(stack)
    _confirm(stack, message, user=VIEWER)
    wait_ephemeral(stack, "Only connect-bot administrators", user=VIEWER)
    assert real_deletes(stack) == []
    assert has_cache(stack, "Python", "3.11.3")
    assert pending_rows(stack)[0].state == "pending"
    assert wait_audit(stack, "cache_delete_confirm", "denied")


def test_ten_concurrent_confirms_delete_exactly_once(stack: Stack):
    stack.requests.command("caches delete -l R -V 4.3.0 -l python -V 3.11.3")
    message = card(stack)
    value = message.find_element("cache_delete_confirm")[1]["value"]
    users = [ADMIN, SECOND_ADMIN] * 5
    statuses: list[int] = []
    barrier = threading.Barrier(len(users))

    def click(user: str) -> None:
        barrier.wait()
        response = stack.requests.click(
            OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value, user_id=user
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    _finished(stack, message.ts)
    later_request_handled(stack)  # every click's work has ended
    deletes = real_deletes(stack)
    assert sorted(d["version"] for d in deletes) == ["3.11.3", "4.3.0"]
    confirms = [r for r in audit_rows(stack) if r.outcome == "confirmed"]
    assert len(confirms) == 1
    assert stack.slack.wait_for(
        lambda fake: len([e for e in fake.ephemerals() if "already handled" in e.all_text()]) == 9
    )


def test_expired_card_answers_so_and_deletes_nothing():
    with start_stack(bot_confirm_ttl_seconds=1) as stack:
        stack.requests.command(PY)
        message = card(stack)
        time.sleep(1.2)
        _confirm(stack, message)
        wait_ephemeral(stack, "expired", user=ADMIN)
        assert stack.slack.wait_for(
            lambda fake: "expired" in fake.message(OPS_CHANNEL, message.ts).all_text()
        )
        assert real_deletes(stack) == []
        assert has_cache(stack, "Python", "3.11.3")
        assert pending_rows(stack)[0].state == "expired"
        assert ("cache_delete_confirm", "expired") in [
            (r.action, r.outcome) for r in audit_rows(stack)
        ]
        # A second click from a client still showing the old card: refused, not audited twice.
        stale_click(stack, message.ts, "cache_delete_confirm", pending_rows(stack)[0].id)
        later_request_handled(stack)
        assert real_deletes(stack) == []
        assert [r.outcome for r in audit_rows(stack)].count("expired") == 1


def test_two_person_rule():
    with start_stack(bot_two_person_rule=True) as stack:
        stack.requests.command(PY, user_id=ADMIN)
        message = card(stack)
        assert "Another administrator must confirm" in message.all_text()
        _confirm(stack, message, user=ADMIN)
        wait_ephemeral(stack, "Two-person rule", user=ADMIN)
        assert real_deletes(stack) == []
        _confirm(stack, message, user=SECOND_ADMIN)
        final = _finished(stack, message.ts)
        assert "<@U0ADMIN2>" in final
        assert len(real_deletes(stack)) == 1


def test_cancel_then_confirm_does_nothing(stack: Stack):
    stack.requests.command(PY)
    message = card(stack)
    value = message.find_element("cache_delete_cancel")[1]["value"]
    stack.requests.click(OPS_CHANNEL, message.ts, "cache_delete_cancel", value=value)
    assert stack.slack.wait_for(
        lambda fake: "cancelled" in fake.message(OPS_CHANNEL, message.ts).all_text()
    )
    assert pending_rows(stack)[0].state == "cancelled"
    # The old buttons may still be on a client that has not refreshed: a late click is refused.
    stale_click(stack, message.ts, "cache_delete_confirm", value)
    wait_ephemeral(stack, "already handled", user=ADMIN)
    assert real_deletes(stack) == []
    assert ("cache_delete_cancel", "cancelled") in [
        (r.action, r.outcome) for r in audit_rows(stack)
    ]


def test_failed_deletion_is_shown_as_a_failure(stack: Stack):
    stack.requests.command(PY)
    message = card(stack)
    # Someone removes the cache behind our back between the dry run and the click.
    stack.connect.caches()
    with stack.connect._lock:  # the simulator's own state, as a second admin would change it
        stack.connect._caches.pop(("python", "3.11.3", "Local"), None)
    _confirm(stack, message)
    final = _finished(stack, message.ts)
    assert ":x: *failed*" in final and "no such cache" in final
    assert ("cache_delete", "failed") in [(r.action, r.outcome) for r in audit_rows(stack)]
    # The card is updated first, then the request's final state is stored.
    assert stack.slack.wait_for(lambda _: pending_rows(stack)[0].state == "failed")


def test_delete_buttons_from_the_list_and_multi_select(stack: Stack):
    stack.requests.command("caches list")
    listing = wait_message(stack, lambda m: "Runtime caches" in m.all_text())
    _, element = listing.find_element("cache_delete_start", value='["R","4.2.1","Local"]')
    stack.requests.click(OPS_CHANNEL, listing.ts, "cache_delete_start", value=element["value"])
    first = card(stack)
    assert "R 4.2.1" in first.all_text()

    # Choosing in the menu is an interaction of its own; Slack sends the choice with the button.
    stack.requests.click(
        OPS_CHANNEL,
        listing.ts,
        "cache_select",
        selected_options=['["R","4.3.0","Local"]', '["Python","3.11.3","Local"]'],
    )
    stack.requests.click(OPS_CHANNEL, listing.ts, "cache_delete_selected")
    second = wait_message(
        stack, lambda m: "Delete 2 runtime caches?" in m.all_text() and m.ts != first.ts
    )
    assert "R 4.3.0" in second.all_text() and "Python 3.11.3" in second.all_text()
    assert len(dry_runs(stack)) == 3


def test_escaping_of_image_names_from_connect(stack: Stack):
    stack.connect.add_cache("R", "4.1.0", "evil/<!here>&<@U0ADMIN>:1")
    stack.requests.command("caches list")
    listing = wait_message(stack, lambda m: "Runtime caches" in m.all_text())
    assert listing.mentions() == []
    assert "&lt;!here&gt;&amp;&lt;@U0ADMIN&gt;" in listing.all_text()


@needs_postgres
def test_concurrent_confirms_on_postgres_delete_exactly_once(postgres_url: str):
    with start_stack(bot_database_url=postgres_url) as stack:
        assert stack.runtime.db.dialect == "postgresql"
        stack.requests.command(PY)
        message = card(stack)
        value = message.find_element("cache_delete_confirm")[1]["value"]
        barrier = threading.Barrier(10)

        def click(user: str) -> None:
            barrier.wait()
            stack.requests.click(
                OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value, user_id=user
            )

        threads = [threading.Thread(target=click, args=(u,)) for u in [ADMIN, SECOND_ADMIN] * 5]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _finished(stack, message.ts)
        later_request_handled(stack)  # every click's work has ended
        assert len(real_deletes(stack)) == 1
        assert [r.outcome for r in audit_rows(stack)].count("confirmed") == 1


def test_admin_groups_are_resolved_after_the_ack_and_cached():
    with start_stack(bot_admin_users=[], bot_admin_groups=["S0OPS"]) as stack:
        stack.slack.add_usergroup("S0OPS", "connect-admins", [VIEWER])
        stack.requests.command(PY, user_id=VIEWER)
        first = card(stack)
        assert "<@U0VIEWER>" in first.all_text()
        stack.requests.command(PY, user_id=ADMIN)  # not in the group
        wait_ephemeral(stack, "Only connect-bot administrators", user=ADMIN)
        calls = stack.slack.calls_to("usergroups.users.list")
        assert len(calls) == 1 and calls[0].params["usergroup"] == "S0OPS"


def test_no_admins_configured_refuses_and_says_what_to_set():
    with start_stack(bot_admin_users=[]) as stack:
        stack.requests.command(PY)
        eph = wait_ephemeral(stack, "BOT_ADMIN_USERS", user=ADMIN)
        assert "BOT_ADMIN_GROUPS" in eph.all_text()
        assert dry_runs(stack) == []


def test_unclicked_cards_are_expired_by_the_scheduler_job():
    from bot import jobs

    with start_stack(bot_confirm_ttl_seconds=1) as stack:
        stack.requests.command(PY)
        message = card(stack)
        assert stack.runtime.scheduler.get_job("expire-pending") is not None
        time.sleep(1.2)
        jobs.expire_pending(stack.runtime.services)  # what the scheduler runs every 30 s
        assert stack.slack.wait_for(
            lambda fake: "expired" in fake.message(OPS_CHANNEL, message.ts).all_text()
        )
        assert "Confirm" not in stack.slack.message(OPS_CHANNEL, message.ts).button_labels()
        assert pending_rows(stack)[0].state == "expired"
        assert wait_audit(stack, "cache_delete_request", "expired")
        assert real_deletes(stack) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),  # an empty 200
        (b"<html><body>OK</body></html>", "text/html"),  # a proxy's page
        (b'["accepted"]', "application/json"),  # another shape
        (b'{"language": "Python", "version": "3.11.3", "image_name": "Local"}', "application/json"),
    ],
    ids=["empty", "html", "shape", "no-task"],
)
def test_an_odd_200_to_the_delete_settles_against_the_cache_list(
    stack: Stack, body: bytes, content_type: str
):
    """Connect acts on the DELETE but its answer is not the API's: the bot asks the cache list
    what happened, and the card ends (never stuck on "Deleting…")."""
    stack.requests.command(PY)
    message = card(stack)
    stack.connect.serve_raw(
        "DELETE", r"/caches/runtime$", body=body, content_type=content_type, limit=1
    )
    _confirm(stack, message)
    final = _finished(stack, message.ts, timeout=20)
    assert ":white_check_mark: deleted" in final and "no longer lists it" in final
    assert real_deletes(stack) == [
        {"language": "Python", "version": "3.11.3", "image_name": "Local", "dry_run": False}
    ]
    assert not has_cache(stack, "Python", "3.11.3")
    assert ("cache_delete", "succeeded") in [(r.action, r.outcome) for r in audit_rows(stack)]
    assert stack.slack.wait_for(lambda _: pending_rows(stack)[0].state == "done")
