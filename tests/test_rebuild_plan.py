"""Planning: selection, order, duplicates across rebuilds, and the button after a deletion."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rebuild_support import (
    items,
    plan,
    rebuild_id_of,
    wait_card,
    wait_ephemeral,
    wait_final,
)

from bot.connect import ConnectClient, ContentFilter, ContentItem, RuntimeCache
from bot.services.rebuilds import RebuildStore
from bot.store import Database, Rebuild
from sim.connect_seed import (
    LOCKED_DEMO_MESSAGE,
    LOCKED_DEMO_TITLE,
    OFF_HOST_IMAGE,
    demo_seed,
    generated_seed,
)
from sim.connect_server import FakeConnect
from sim.stack import OPS_CHANNEL, start_stack


def _service(tmp_path: Path) -> RebuildStore:
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    db.migrate()
    return RebuildStore(db)


def _plan_titles(service: RebuildStore, connect: ConnectClient, **kwargs: object) -> dict[str, int]:
    summary = service.plan(
        connect, server=None, requested_by="U1", channel="C1", description="test", **kwargs
    )  # type: ignore[arg-type]
    return {row.title: row.wave for row in service.items(summary.rebuild_id)}


def test_affected_content_matches_language_version_and_image(
    tmp_path: Path, connect: ConnectClient, fake_connect: FakeConnect
) -> None:
    service = _service(tmp_path)
    local = _plan_titles(service, connect, caches=[RuntimeCache("python", "3.9.5")])
    assert set(local) == {"Forecast Explorer", "Notebook: Cohort Analysis"}
    off_host = _plan_titles(
        service, connect, caches=[RuntimeCache("Python", "3.9.5", OFF_HOST_IMAGE)]
    )
    assert set(off_host) == {"Legacy Model Dashboard"}
    both = _plan_titles(
        service,
        connect,
        caches=[RuntimeCache("R", "4.2.1"), RuntimeCache("R", "3.6.3", OFF_HOST_IMAGE)],
    )
    assert set(both) == {"Plumber Scoring API", "Inventory Explorer", "Legacy Finance Report"}
    # One GET of the content list per plan, nothing else.
    assert fake_connect.count("GET", r"/v1/content$") == 3
    assert fake_connect.count("POST") == 0


def test_order_is_warmup_then_interactive_then_the_rest(
    tmp_path: Path, connect: ConnectClient
) -> None:
    service = _service(tmp_path)
    waves = _plan_titles(service, connect, content_filter=ContentFilter(published=True))
    assert len(waves) == 14  # the two unpublished items are left out
    # R 4.3.0 has two interactive apps and a report: the newest-deployed app warms it up.
    assert waves["Executive KPIs"] == 0
    assert waves["Sales Dashboard"] == 1
    assert waves["Quarterly Report"] == 2
    # R 3.6.3 on the image has only a report: it warms its runtime up anyway.
    assert waves["Legacy Finance Report"] == 0
    # Static content has no runtime cache to warm.
    assert waves["Team Landing Page"] == 2
    assert Counter(waves.values()) == {0: 6, 1: 4, 2: 4}


def test_a_second_rebuild_skips_what_a_running_one_will_build() -> None:
    with start_stack(seed=generated_seed(20), build_seconds=0.3) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        first = plan(stack, "rebuild --r-version 4.3.0 --parallelism 1")
        in_first = {row.guid for row in items(db, rebuild_id_of(first))}
        # Long enough that none of them is built before the second plan is made, even on a
        # loaded machine (an item built by then is no longer skipped).
        connect.set_build_durations({guid: 2.0 for guid in in_first})
        stack.requests.click(OPS_CHANNEL, first.ts, "rebuild_start")
        assert slack.wait_for(lambda s: connect.builds_started(), timeout=5)

        second = plan(stack, "rebuild --parallelism 3", count=2)
        connect.set_build_durations({guid: 0.3 for guid in in_first})  # the ones not yet started
        text = second.all_text()
        assert second.text.startswith(f"Rebuild plan #2: {20 - len(in_first)} item(s)")
        assert f"Skipped {len(in_first)} item(s) already queued or building" in text
        stack.requests.click(OPS_CHANNEL, second.ts, "rebuild_start")
        wait_final(slack, second.ts, timeout=30)
        wait_final(slack, first.ts, timeout=30)
        assert set(Counter(connect.builds_started()).values()) == {1}
        assert len(connect.builds_started()) == 20
        skipped = [row for row in items(db, rebuild_id_of(second)) if row.state == "skipped"]
        assert {row.guid for row in skipped} == in_first
        assert "skipped" in slack.thread(OPS_CHANNEL, second.ts)[-1].all_text()

        stack.requests.command("rebuild --content-type python-gradio")
        wait_ephemeral(slack, "Nothing to rebuild: no published content matches")
        assert len(slack.messages(OPS_CHANNEL, include_broadcasts=False)) == 2  # no new card


def test_rebuild_affected_content_after_a_cache_deletion() -> None:
    with start_stack(build_seconds=0.1) as stack:
        connect, slack = stack.connect, stack.slack
        stack.requests.command("caches delete --language Python --version 3.9.5")
        assert slack.wait_for(
            lambda s: any("cache_delete_confirm" in str(m.blocks) for m in s.messages(OPS_CHANNEL)),
            timeout=5,
        )
        deletion = next(
            m for m in slack.messages(OPS_CHANNEL) if "cache_delete_confirm" in str(m.blocks)
        )
        stack.requests.click(OPS_CHANNEL, deletion.ts, "cache_delete_confirm")
        assert slack.wait_for(
            lambda s: "rebuild_affected" in str(s.message(OPS_CHANNEL, deletion.ts).blocks),
            timeout=10,
        )
        stack.requests.click(OPS_CHANNEL, deletion.ts, "rebuild_affected")
        card = wait_card(slack)
        assert card.text.startswith("Rebuild plan #1: 2 item(s)")
        assert "content using the deleted caches: Python 3.9.5 (Local)" in card.all_text()
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts)
        titles = {item["guid"]: item["title"] for item in connect.content()}
        assert sorted(titles[g] for g in connect.builds_started()) == [
            "Forecast Explorer",
            "Notebook: Cohort Analysis",
        ]
        # The rebuild repopulated the deleted cache.
        assert {"language": "Python", "version": "3.9.5", "image_name": "Local"} in connect.caches()


def test_locked_content_is_skipped_with_its_message_and_shown_on_the_card() -> None:
    with start_stack(seed=demo_seed(locked=True), build_seconds=0.05) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        locked = next(i for i in connect.content() if i["title"] == LOCKED_DEMO_TITLE)
        assert locked["locked"] is True and locked["bundle_id"] is not None
        card = plan(stack, "rebuild --parallelism 4")
        assert card.text.startswith("Rebuild plan #1: 14 item(s)")  # the locked one left out
        text = card.all_text()
        assert "Skipped 1 locked item(s)" in text
        assert LOCKED_DEMO_TITLE in text and "Archived for the audit." in text
        assert "already queued or building" not in text  # no duplicate was skipped
        rows = {row.guid: row for row in items(db, rebuild_id_of(card))}
        assert rows[locked["guid"]].state == "skipped"
        assert rows[locked["guid"]].error == LOCKED_DEMO_MESSAGE
        assert rows[locked["guid"]].wave != 0  # it warms nothing up
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        wait_final(slack, card.ts, timeout=15)
        assert locked["guid"] not in connect.builds_started()
        assert len(connect.builds_started()) == 14


def test_content_locked_after_the_plan_is_refused_by_connect_and_reported_failed() -> None:
    with start_stack(build_seconds=0.05) as stack:
        connect, slack, db = stack.connect, stack.slack, stack.runtime.db
        card = plan(stack, "rebuild --parallelism 4")
        sales = next(i["guid"] for i in connect.content() if i["title"] == "Sales Dashboard")
        connect.set_locked(sales, "Frozen for the audit")  # locked between plan and Start
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        summary = wait_final(slack, card.ts, timeout=15)
        rows = {row.guid: row for row in items(db, rebuild_id_of(card))}
        assert rows[sales].state == "failed"
        assert rows[sales].error == "The content is locked and cannot be built."
        assert sales not in connect.builds_started()
        assert {row.state for guid, row in rows.items() if guid != sales} == {"succeeded"}
        assert "Sales Dashboard" in "\n".join(
            r.all_text() for r in slack.thread(OPS_CHANNEL, card.ts)
        )
        assert "1 failed" in summary.all_text()


def test_a_locked_guid_is_refused_with_its_message_and_nothing_is_planned() -> None:
    with start_stack(seed=demo_seed(locked=True), build_seconds=0.05) as stack:
        connect, slack = stack.connect, stack.slack
        by_title = {i["title"]: i["guid"] for i in connect.content()}
        guids = f"{by_title[LOCKED_DEMO_TITLE]},{by_title['Sales Dashboard']}"
        stack.requests.command(f"rebuild --guid {guids}")
        text = wait_ephemeral(slack, "locked in Connect")
        assert "Not planned" in text and LOCKED_DEMO_TITLE in text
        assert "Archived for the audit." in text
        assert slack.messages(OPS_CHANNEL, include_broadcasts=False) == []  # no card
        assert connect.builds_started() == []
        with stack.runtime.db.session() as session:
            states = {row.state for row in session.query(Rebuild).all()}
        assert states <= {"discarded"}
        # Locked without a message: still refused, and said so.
        connect.set_locked(by_title["Sales Dashboard"], "")
        stack.requests.command(f"rebuild --guid {by_title['Sales Dashboard']}")
        assert "Not planned" in wait_ephemeral(slack, "Sales Dashboard*: locked in Connect")
        assert slack.messages(OPS_CHANNEL, include_broadcasts=False) == []


def test_content_item_reads_locked_and_its_message() -> None:
    item = ContentItem.from_json(
        {"guid": "g1", "locked": True, "locked_message": "Frozen for *Q4*", "bundle_id": "1"}
    )
    assert item.locked and item.locked_message == "Frozen for *Q4*"
    plain = ContentItem.from_json({"guid": "g2", "locked": False, "locked_message": ""})
    assert not plain.locked and plain.locked_message == ""
    assert not ContentItem.from_json({"guid": "g3"}).locked  # servers before 2024.08
