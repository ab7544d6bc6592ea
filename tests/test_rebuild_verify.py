"""Every rebuild verifies (issue 19): after an interactive item built, the bot probes it, over
real HTTP against the Connect simulator; `--no-verify` turns it off."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.connect import RuntimeCache
from bot.connect.models import INTERACTIVE_MODES
from bot.services.rebuilds import ItemView, Progress
from bot.slack import parser
from bot.slack.views.rebuilds import progress_view as view_progress_message
from bot.slack.views.rebuilds import summary_reply
from bot.store import Rebuild, RebuildItem, utcnow
from sim.stack import ADMIN, OPS_CHANNEL, Stack, start_stack
from tests.rebuild_support import items, plan, rebuild_id_of, wait_final
from tests.slack_helpers import card as confirmation_card
from tests.slack_helpers import real_deletes
from tests.test_escaping import HOSTILE, SERVER, assert_safe_message
from tests.test_views import NOW
from tests.test_views import progress as view_progress

BROKEN = ("Sales Dashboard", "Executive KPIs")  # the seed's interactive items using `sf`
# Those two, and a rendered document using `sf` (built, never probed).
LOAD_ERROR = "libgdal.so.30: cannot open shared object file"
CONTENT_URL = "^/content/"  # the probe's request of an item's content URL


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack(build_seconds=0.1) as running:
        running.connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
        yield running


def _rebuild(stack: Stack, text: str, count: int = 1) -> tuple[str, int, str]:
    """Plan, Start, and wait for the final summary: (card ts, rebuild id, summary text)."""
    card = plan(stack, text, count=count)
    stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
    summary = wait_final(stack.slack, card.ts, timeout=30)
    return card.ts, rebuild_id_of(card), summary.all_text()


def test_a_rebuild_over_the_old_cache_is_built_but_fails_to_start(stack: Stack) -> None:
    ts, rebuild_id, text = _rebuild(stack, "rebuild --uses-package sf")

    # Built (the cache was re-used), but the items still fail to start: counted apart from
    # failures to build, each named with its error.
    assert "3 built (2 of them built but fail to start), 0 failed to build" in text
    assert "Verified: 0 start, 2 built but fail to start." in text
    for title in BROKEN:
        assert title in text
    assert text.count(LOAD_ERROR) == 2
    assert ":white_check_mark:" not in text and "All " not in text  # never "all succeeded"
    # The cache was not deleted: the hint and the health card's delete button.
    assert "probably still holds packages built for the old system" in text
    assert "R 4.3.0 (Local)" in text
    rows = items(stack.runtime.db, rebuild_id)
    assert {row.state for row in rows} == {"succeeded"}
    probed = {row.title: row for row in rows if row.verified is not None}
    assert sorted(probed) == sorted(BROKEN) and len(rows) == 3
    assert all(row.verified == "fails" for row in probed.values())
    assert all(LOAD_ERROR in (row.verify_error or "") for row in probed.values())
    # The progress message counts them too.
    progress = stack.slack.message(OPS_CHANNEL, ts).all_text()
    assert "2 built but fail to start" in progress

    # The button: the usual dry run and confirmation card for exactly that cache.
    summary = next(r for r in stack.slack.thread(OPS_CHANNEL, ts) if r.reply_broadcast)
    label = "Delete the caches of these runtimes…"
    assert label in summary.button_labels()
    value = summary.find_element("rebuild_delete_caches")[1]["value"]
    stack.requests.click(OPS_CHANNEL, summary.ts, "rebuild_delete_caches", value=value)
    deletion = confirmation_card(stack)
    assert "R 4.3.0" in deletion.all_text()
    confirm = deletion.find_element("cache_delete_confirm")[1]["value"]
    stack.requests.click(OPS_CHANNEL, deletion.ts, "cache_delete_confirm", value=confirm)
    assert stack.slack.wait_for(
        lambda fake: "deletion finished" in fake.message(OPS_CHANNEL, deletion.ts).all_text(),
        timeout=10,
    )
    assert real_deletes(stack) == [
        {"language": "R", "version": "4.3.0", "image_name": "Local", "dry_run": False}
    ]

    # Delete, then rebuild: the build creates the cache fresh, and every item starts.
    _, second, text = _rebuild(stack, "rebuild --uses-package sf", count=2)
    assert "3 succeeded, 0 failed" in text
    assert "All 2 interactive item(s) that built were verified to start." in text
    assert "fail to start" not in text and "old system" not in text
    assert sorted(row.verified or "-" for row in items(stack.runtime.db, second)) == [
        "-",
        "starts",
        "starts",
    ]


def test_no_verify_probes_nothing_and_says_so(stack: Stack) -> None:
    stack.connect.clear_requests()
    _, rebuild_id, text = _rebuild(stack, "rebuild --uses-package sf --no-verify")

    assert stack.connect.count("GET", CONTENT_URL) == 0  # no content URL was requested
    assert "3 succeeded, 0 failed" in text
    assert "Verification was off (`--no-verify`)" in text
    assert ":white_check_mark:" in text  # the builds did succeed; nothing claims they start
    assert {row.verified for row in items(stack.runtime.db, rebuild_id)} == {None}


def test_each_built_interactive_item_is_probed_once(stack: Stack) -> None:
    stack.connect.clear_requests()
    _, rebuild_id, _ = _rebuild(stack, "rebuild --uses-package sf")
    assert stack.connect.count("GET", CONTENT_URL) == 2
    assert len(items(stack.runtime.db, rebuild_id)) == 3  # the rendered one is not probed


@pytest.mark.parametrize(
    ("text", "verify"),
    [
        ("rebuild", True),
        ("rebuild --no-verify", False),
        ("rebuild --NO-VERIFY --parallelism 2", False),
        ("rebuild --content-type shiny --no-verify -n prod", False),
        ("rebuild --uses-package sf --no-verify --in 30m", False),
    ],
)
def test_no_verify_parses(text: str, verify: bool) -> None:
    command = parser.parse(text)
    assert isinstance(command, parser.RebuildPlan)
    assert command.verify is verify
    assert "--no-verify" not in command.description


def test_no_verify_is_only_for_rebuild() -> None:
    assert isinstance(parser.parse("health --no-verify"), parser.ParseError)
    assert isinstance(parser.parse("rebuild status --no-verify"), parser.ParseError)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "--guid abc",
                "--content-type shiny",
                "--r-version 4.3.0",
                "--parallelism 3",
                "--uses-package sf",
                "-n prod",
                "--in 30m",
                "--image-name x",
            ]
        ),
        max_size=4,
    ),
    st.integers(0, 4),
)
def test_no_verify_anywhere_changes_only_verify(words: list[str], at: int) -> None:
    """`--no-verify` anywhere among the options: the same command, not verified."""
    plain = parser.parse(" ".join(["rebuild", *words]))
    with_flag = parser.parse(" ".join(["rebuild", *words[:at], "--no-verify", *words[at:]]))
    if isinstance(plain, parser.RebuildPlan):
        assert with_flag == dataclasses.replace(plain, verify=False)
    else:
        assert isinstance(with_flag, parser.ParseError)


def test_a_driver_taking_over_verifies_what_was_built_but_not_verified(stack: Stack) -> None:
    """Crash safety: the builds ended (`succeeded`, `verified = pending`) and the process died
    before probing. The next driver probes those items again, builds nothing, and reports."""
    card = plan(stack, "rebuild --uses-package sf")
    rebuild_id = rebuild_id_of(card)
    db = stack.runtime.db
    with db.session() as session:
        session.execute(
            update(Rebuild)
            .where(Rebuild.id == rebuild_id)
            .values(state="running", started_by=ADMIN, started_at=utcnow())
        )
        for row in session.scalars(select(RebuildItem).where(RebuildItem.rebuild_id == rebuild_id)):
            row.state, row.attempts, row.finished_at = "succeeded", 1, utcnow()
            row.verified = "pending" if row.app_mode in INTERACTIVE_MODES else None
    stack.connect.clear_requests()

    stack.runtime.services.engine.tick(rebuild_id)

    text = wait_final(stack.slack, card.ts, timeout=30).all_text()
    assert stack.connect.builds_started() == []  # nothing built again
    assert stack.connect.count("GET", CONTENT_URL) == 2  # each pending item probed once
    assert "3 built (2 of them built but fail to start), 0 failed to build" in text
    assert {row.verified for row in items(db, rebuild_id)} == {"fails", None}


# --- the summary's view, pure ----------------------------------------------------------------


def _unverified(value: str, verified: str = "fails") -> ItemView:
    return ItemView(
        id=1,
        guid="g1",
        title=value,
        app_mode="shiny",
        runtime=value,
        wave=1,
        state="succeeded",
        error=None,
        dashboard_url=f"{SERVER}/connect/#/apps/g1",
        task_id="t1",
        verified=verified,
        verify_error=value,
    )


def _finished(**changes: Any) -> Progress:
    fields: dict[str, Any] = {
        "state": "done",
        "finished_at": NOW,
        "counts": {"succeeded": 3},
        "description": "x",
    }
    return view_progress(**(fields | changes))


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_strings_are_inert_in_the_verified_summary(value: str) -> None:
    p = _finished(verify={"fails": 1, "starts": 1, "unchecked": 1})
    items_ = [_unverified(value), _unverified(value, "unchecked")]
    stale = [RuntimeCache("R", value, value)]
    message = summary_reply(p, now=NOW, server=value, unverified=items_, stale=stale)
    assert_safe_message(message)
    assert_safe_message(view_progress_message(p, now=NOW, server=value))


@pytest.mark.parametrize(
    "verify",
    [{"fails": 1}, {"starts": 2, "fails": 1}, {"unchecked": 1}, {"pending": 1}],
)
@pytest.mark.parametrize("state", ["done", "cancelled"])
def test_a_summary_never_claims_success_when_something_fails_to_start(
    verify: dict[str, int], state: str
) -> None:
    p = _finished(verify=verify, state=state)
    text = summary_reply(p, now=NOW, unverified=[_unverified("Sales")]).to_dict()
    everything = text["text"] + str(text["blocks"])
    assert ":white_check_mark:" not in everything
    assert "All " not in everything
    if verify.get("fails"):
        assert "built but fail to start" in text["text"]


def test_a_summary_says_all_started_only_when_all_did() -> None:
    text = summary_reply(_finished(verify={"starts": 3}), now=NOW).to_dict()["blocks"]
    assert "All 3 interactive item(s) that built were verified to start." in str(text)
    assert ":white_check_mark:" in str(text)
