"""Table tests of the pure Block Kit views: escaping, time shown at a given `now`, the deletion
card's buttons in each state, and Slack's size limits for large inputs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.connect import ContentItem, RuntimeCache
from bot.services.audit import AuditRecord
from bot.services.caches import (
    CacheTarget,
    DeletionResult,
    DeletionState,
    PlannedDeletion,
    Rejection,
)
from bot.services.rebuilds import ItemView, PlanCard, PlanSummary, Progress
from bot.slack import views as v
from bot.slack.parser import ParseError
from bot.slack.views import MAX_BLOCKS, Actions, Message
from sim.slack import validate_blocks

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SERVER = "https://connect.example/"
ADMIN, REQUESTER, CHANNEL = "UADMIN1", "UREQ1", "COPS1"
HOSTILE = "<!channel> @here & <https://evil.example|click> `rm -rf` <@U999> <!subteam^S1>"
HOSTILE_URL = "https://connect.example/x|<!channel>"

DONE = {"state": "done", "counts": {"succeeded": 6}}
_TOKEN = re.compile(r"<([^<>|]*)(?:\|[^<>]*)?>")


# --- builders --------------------------------------------------------------------------------


def progress(**changes: Any) -> Progress:
    base = Progress(
        rebuild_id=7,
        state="running",
        description="R 4.3 upgrade",
        requested_by=REQUESTER,
        started_by=ADMIN,
        channel=CHANNEL,
        thread_ts="1714564800.000100",
        parallelism=2,
        total=6,
        skipped=0,
        counts={"succeeded": 3, "queued": 3},
        warmup_total=0,
        warmup_open=0,
        created_at=NOW - timedelta(seconds=300),
        started_at=NOW - timedelta(seconds=90),
        finished_at=None,
    )
    return replace(base, **changes)


def plan(**changes: Any) -> PlanSummary:
    base = PlanSummary(
        rebuild_id=7,
        state="planned",
        description="R 4.3 upgrade",
        requested_by=REQUESTER,
        channel=CHANNEL,
        parallelism=2,
        total=6,
        skipped=0,
        by_type=[("shiny", 4), ("quarto-static", 2)],
        by_runtime=[("R 4.3.1", 6)],
        waves={0: 1, 1: 3, 2: 2},
        warmup=[("R 4.3.1", "Sales")],
        skipped_titles=[],
    )
    return replace(base, **changes)


def item(i: int = 1, **changes: Any) -> ItemView:
    url, error = f"{SERVER}connect/#/apps/guid-{i}", "package 'sf' failed to compile"
    base = ItemView(i, f"guid-{i}", f"App {i}", "shiny", "R 4.3.1", 1, "failed", error, url, None)
    return replace(base, **changes)


def content(i: int = 1, url: str = "", **fields: Any) -> ContentItem:
    url = url or f"{SERVER}connect/#/apps/guid-{i}"
    base = {"guid": f"guid-{i}", "title": f"App {i}", "bundle_id": "1", "dashboard_url": url}
    return ContentItem.from_json({**base, "app_mode": "shiny", "r_version": "4.3.1", **fields})


def audit(i: int = 1, **changes: Any) -> AuditRecord:
    at, target = NOW - timedelta(minutes=i), f"R 4.3.{i} (Local)"
    base = AuditRecord(at, ADMIN, "cache_delete", "succeeded", target, CHANNEL, None, "")
    return replace(base, **changes)


def cache(i: int = 1, image: str = "Local") -> RuntimeCache:
    return RuntimeCache("R", f"4.3.{i}", image)


def planned(c: RuntimeCache) -> PlannedDeletion:
    return PlannedDeletion(cache=c, published_items=3, interactive_items=1)


def card(state: str, deletions: list[PlannedDeletion] | None = None, **kw: Any) -> DeletionState:
    deletions = deletions or [planned(cache())]
    if state == "done" and "results" not in kw:
        kw["results"] = [DeletionResult(d.cache, True, "t1", "removed") for d in deletions]
    decided = None if state in ("pending", "expired") else ADMIN
    return DeletionState(
        id="p1",
        server="main",
        requested_by=REQUESTER,
        channel=CHANNEL,
        message_ts=None,
        deletions=tuple(deletions),
        state=state,
        decided_by=decided,
        expires_at=NOW + timedelta(minutes=10),
        **kw,
    )


def plan_card(summary: PlanSummary, **kw: Any) -> Message:
    card = PlanCard(summary, pending_id="p1", server="main", channel=CHANNEL, message_ts=None, **kw)
    return v.plan_card_view(card)


def no_links(channel: str, ts: str | None) -> str | None:
    return None


def to_link(channel: str, ts: str | None) -> str | None:
    return f"https://example.slack.com/archives/{channel}/p{(ts or '').replace('.', '')}"


# --- inspecting a message --------------------------------------------------------------------


def mrkdwn_texts(message: Message) -> Iterator[str]:
    """The fallback text and every text Slack parses as mrkdwn (where tokens are live)."""
    data = message.to_dict()
    yield data["text"]
    for block in data["blocks"]:
        objects = [block.get("text"), *(block.get("fields") or [])]
        if block["type"] == "context":
            objects = block["elements"]
        for obj in objects:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                yield obj["text"]


def tokens(message: Message) -> list[str]:
    return [m.group(1) for text in mrkdwn_texts(message) for m in _TOKEN.finditer(text)]


def action_ids(message: Message) -> list[str]:
    found = []
    for block in message.to_dict()["blocks"]:
        if block["type"] == "actions":
            found += [el["action_id"] for el in block["elements"]]
        elif isinstance(block.get("accessory"), dict):
            found.append(block["accessory"]["action_id"])
    return found


def all_text(message: Message) -> str:
    return "\n".join(mrkdwn_texts(message))


# --- escaping --------------------------------------------------------------------------------

hostile_cache = RuntimeCache(HOSTILE, HOSTILE, HOSTILE)
hostile_item = item(
    title=HOSTILE, error=HOSTILE, app_mode=HOSTILE, runtime=HOSTILE, dashboard_url=HOSTILE_URL
)
hostile_progress = progress(description=HOSTILE, flags={"cancelled_by": HOSTILE})
hostile_content = content(title=HOSTILE, app_mode=HOSTILE, image_name=HOSTILE, url=HOSTILE_URL)
hostile_plan = plan(description=HOSTILE, by_type=[(HOSTILE, 2)], by_runtime=[(HOSTILE, 2)])
hostile_plan = replace(hostile_plan, warmup=[(HOSTILE,) * 2], skipped=1, skipped_titles=[HOSTILE])
STATES = ("pending", "running", "done", "cancelled", "expired")


def hostile_card(state: str) -> Message:
    results = [DeletionResult(hostile_cache, False, None, HOSTILE)]
    return v.deletion_card_view(card(state, [planned(hostile_cache)], results=results))


HOSTILE_VIEWS: dict[str, Callable[[], Message]] = {
    "caches list, rows": lambda: v.caches_list_view([hostile_cache, cache()], SERVER),
    "caches list, compact": lambda: v.caches_list_view(
        [hostile_cache, *(cache(i) for i in range(60))], SERVER
    ),
    **{f"deletion card {state}": partial(hostile_card, state) for state in STATES},
    "rejections": lambda: v.rejections_view(
        [Rejection(CacheTarget(HOSTILE, HOSTILE, HOSTILE), HOSTILE)], planned_any=False
    ),
    "content search": lambda: v.content_search_view(
        [hostile_content], page=1, args=HOSTILE, description=HOSTILE
    ),
    "content search, javascript url": lambda: v.content_search_view(
        [content(title=HOSTILE, url="javascript:alert(1)")], page=1, args="", description=""
    ),
    "plan card": lambda: plan_card(hostile_plan, expires_at=NOW),
    "plan card discarded": lambda: plan_card(
        plan(description=HOSTILE), state="discarded", decided_by=HOSTILE
    ),
    "progress": lambda: v.progress_view(hostile_progress, now=NOW),
    "start reply": lambda: v.start_reply(hostile_progress, plan(description=HOSTILE)),
    "warm-up reply": lambda: v.warmup_reply(hostile_progress, [hostile_item], now=NOW),
    "failures reply": lambda: v.failures_reply(7, [hostile_item]),
    "summary done": lambda: v.summary_reply(
        replace(hostile_progress, state="done", counts={"failed": 1}), now=NOW
    ),
    "summary cancelled": lambda: v.summary_reply(
        replace(hostile_progress, state="cancelled"), now=NOW
    ),
    "status": lambda: v.status_view(replace(hostile_progress, channel=HOSTILE), None, now=NOW),
    "history": lambda: v.history_view([hostile_progress], no_links, now=NOW),
    "error": lambda: v.error_view(HOSTILE, HOSTILE),
    "notice": lambda: v.notice_view(HOSTILE),
    "usage error": lambda: v.usage_error_view(ParseError(HOSTILE, HOSTILE)),
    "audit": lambda: v.audit_view(
        [audit(actor=HOSTILE, action=HOSTILE, outcome=HOSTILE, target=HOSTILE)]
    ),
    "audit notice": lambda: v.audit_notice_view(
        audit(actor=HOSTILE, action=HOSTILE, target=HOSTILE, channel=HOSTILE, detail=HOSTILE)
    ),
}


@pytest.mark.parametrize("build", HOSTILE_VIEWS.values(), ids=HOSTILE_VIEWS.keys())
def test_hostile_strings_never_become_live_mentions_or_links(build: Callable[[], Message]):
    message = build()
    for token in tokens(message):
        if token.startswith("!"):
            assert token.startswith("!date^"), token  # no <!channel>, <!here>, <!subteam^…>
        elif token.startswith("@"):
            assert token[1:] in {ADMIN, REQUESTER}, token  # only mentions we put there
        elif token.startswith("#"):
            assert token[1:] == CHANNEL, token
        else:
            assert token.startswith(SERVER), token  # links only to Connect itself
    assert validate_blocks(message.to_dict()["blocks"]) == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a & b", "a &amp; b"),
        ("<https://x|y>", "&lt;https://x|y&gt;"),
        ("@here", "@\u2060here"),  # a word joiner after @: never a ping, whatever `parse` is
        ("x` <!here> `y", "x' &lt;!here&gt; 'y"),  # no way out of the code span
    ],
)
def test_cache_image_is_shown_escaped_inside_a_code_span(value: str, shown: str):
    message = v.caches_list_view([RuntimeCache("R", "4.3.1", value)], SERVER)
    assert f"`{shown}`" in all_text(message)


def test_build_error_is_quoted_escaped():
    message = v.failures_reply(7, [item(error="<!channel> `boom` & <https://x|y>")])
    assert "> &lt;!channel&gt; `boom` &amp; &lt;https://x|y&gt;" in all_text(message)


# --- time: elapsed and time left at a given `now` --------------------------------------------


@pytest.mark.parametrize(
    ("changes", "elapsed", "eta"),
    [
        ({}, 90.0, 90.0),  # 3 of 6 in 90 s
        ({"counts": {"succeeded": 2, "failed": 1, "building": 2, "queued": 1}}, 90.0, 90.0),
        ({"counts": {"succeeded": 1, "queued": 5}}, 90.0, 450.0),
        ({"counts": {"building": 2, "queued": 4}}, 90.0, None),  # nothing finished yet
        ({"started_at": None, "state": "planned"}, None, None),
        ({"started_at": NOW + timedelta(seconds=5)}, 0.0, None),  # clock skew: never negative
        ({**DONE, "finished_at": NOW - timedelta(seconds=10)}, 80.0, None),  # stops at the end
    ],
)
def test_progress_elapsed_and_eta_at_now(changes: dict[str, Any], elapsed, eta):
    p = progress(**changes)
    assert p.elapsed(NOW) == elapsed
    assert p.eta(NOW) == eta


@pytest.mark.parametrize(
    ("changes", "now", "timing"),
    [
        ({}, NOW, "Elapsed 1:30 · about 1:30 left"),
        ({}, NOW + timedelta(seconds=30), "Elapsed 2:00 · about 2:00 left"),
        ({"counts": {"building": 2, "queued": 4}}, NOW, "Elapsed 1:30 · estimating time left"),
        (
            {"started_at": NOW - timedelta(hours=2), "counts": {"succeeded": 1, "queued": 4}},
            NOW,
            "Elapsed 2:00:00 · about 8:00:00 left",
        ),
        (
            {**DONE, "finished_at": NOW - timedelta(seconds=15)},
            NOW + timedelta(1),
            "Elapsed 1:15 ·",
        ),
    ],
)
def test_progress_view_shows_time_at_the_given_now(changes, now: datetime, timing: str):
    message = v.progress_view(progress(**changes), now=now)
    assert timing in all_text(message)
    assert v.progress_view(progress(**changes), now=now).to_dict() == message.to_dict()


@pytest.mark.parametrize(
    ("build", "shown"),
    [
        (lambda p: v.status_view(p, None, now=NOW), "Elapsed 1:30 · about 1:30 left"),
        (lambda p: v.history_view([p], no_links, now=NOW), " · 1:30 · "),
        (lambda p: v.warmup_reply(p, [item(state="succeeded")], now=NOW), "after 1:30"),
        (lambda p: v.summary_reply(replace(p, state="done"), now=NOW), "finished in 1:30"),
        (lambda p: v.summary_reply(replace(p, state="cancelled"), now=NOW), "after 1:30"),
    ],
    ids=["status", "history", "warm-up", "summary", "cancelled summary"],
)
def test_views_with_elapsed_time_use_now(build: Callable[[Progress], Message], shown: str):
    assert shown in all_text(build(progress()))


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0, "0:00"), (59.6, "1:00"), (90, "1:30"), (3600, "1:00:00"), (3725, "1:02:05")],
)
def test_duration(seconds: float | None, shown: str):
    assert v.duration(seconds) == shown


def test_no_view_reads_the_clock():
    package = Path(v.__file__).parent
    for module in package.glob("*.py"):
        source = module.read_text()
        for reader in ("utcnow", "datetime.now", "time.time", "monotonic", "date.today"):
            assert reader not in source, f"{module.name} reads the clock via {reader}"


# --- the deletion card in each state ---------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "extra", "buttons", "says"),
    [
        ("pending", {}, [Actions.CACHE_DELETE_CONFIRM, Actions.CACHE_DELETE_CANCEL], "Expires"),
        ("running", {}, [], f"Confirmed by <@{ADMIN}>"),
        ("done", {}, [], ":white_check_mark: All 1 deleted"),
        ("done", {"rebuild_candidates": 4}, [Actions.REBUILD_AFFECTED], "All 1 deleted"),
        (
            "done",
            {"results": [DeletionResult(cache(), False, None, "busy")]},
            [],
            ":x: 1 of 1 failed",
        ),
        ("cancelled", {}, [], f"Cancelled by <@{ADMIN}>. Nothing was deleted."),
        ("expired", {}, [], "Nobody confirmed in time"),
    ],
)
def test_deletion_card_buttons_per_state(state: str, extra: dict, buttons: list[str], says: str):
    message = v.deletion_card_view(card(state, **extra))
    assert action_ids(message) == buttons
    assert says in all_text(message)
    assert validate_blocks(message.to_dict()["blocks"]) == []


def test_pending_deletion_card_confirms_and_shows_expiry_in_local_time():
    message = v.deletion_card_view(card("pending", two_person=True))
    buttons = [
        el for b in message.to_dict()["blocks"] if b["type"] == "actions" for el in b["elements"]
    ]
    assert buttons[0]["style"] == "danger" and buttons[0]["confirm"]["confirm"]["text"] == "Delete"
    assert [b["value"] for b in buttons] == ["p1", "p1"]
    stamp = int((NOW + timedelta(minutes=10)).timestamp())
    assert f"Expires <!date^{stamp}^{{time}}|soon>. Another administrator" in all_text(message)


# --- Slack's limits for large inputs ---------------------------------------------------------

many_caches = [cache(i, image=f"ghcr.io/org/image-{i}:{'x' * 40}") for i in range(500)]
many_items = [content(i, title="C" * 500) for i in range(500)]
pairs = [(f"R 4.{i}", i) for i in range(500)]
big_plan = plan(description="D" * 5000, skipped=500, skipped_titles=["S" * 100] * 50)
big_plan = replace(big_plan, by_type=pairs, by_runtime=pairs, warmup=[(r, "t") for r, _ in pairs])
LARGE_VIEWS: dict[str, Callable[[], Message]] = {
    "500 caches": lambda: v.caches_list_view(many_caches, SERVER),
    "40 caches (rows)": lambda: v.caches_list_view(many_caches[:40], SERVER),
    "41 caches (compact)": lambda: v.caches_list_view(many_caches[:41], SERVER),
    "huge cache name": lambda: v.caches_list_view([RuntimeCache("R", "4", "x" * 5000)], SERVER),
    "deletion card, 500 caches": lambda: v.deletion_card_view(
        card("pending", [planned(c) for c in many_caches])
    ),
    "deletion card done, 500 results": lambda: v.deletion_card_view(
        card(
            "done",
            [planned(c) for c in many_caches],
            results=[DeletionResult(c, False, None, "e" * 600) for c in many_caches],
            rebuild_candidates=900,
        )
    ),
    "200 rejections": lambda: v.rejections_view(
        [Rejection(CacheTarget("R", f"9.{i}"), "no such cache " * 5) for i in range(200)], True
    ),
    "200 failures": lambda: v.failures_reply(
        7, [item(i, title="T" * 500, error="E" * 2000) for i in range(200)]
    ),
    "warm-up of 200": lambda: v.warmup_reply(
        progress(warmup_total=200), [item(i, title="W" * 300) for i in range(200)], now=NOW
    ),
    "500 content items": lambda: v.content_search_view(
        many_items, page=3, args="q" * 3000, description="d" * 5000
    ),
    "plan of 500 types": lambda: plan_card(big_plan, expires_at=NOW, two_person=True),
    "progress, long description": lambda: v.progress_view(
        progress(description="D" * 5000, total=100_000), now=NOW
    ),
    "status": lambda: v.status_view(progress(), to_link(CHANNEL, "1.2"), now=NOW),
    "history of 200": lambda: v.history_view(
        [progress(rebuild_id=i, description="D" * 300) for i in range(200)], to_link, now=NOW
    ),
    "500 audit entries": lambda: v.audit_view(
        [audit(i, target="T" * 300, detail="x" * 600) for i in range(500)]
    ),
    "audit notice, long": lambda: v.audit_notice_view(audit(target="T" * 5000, detail="x" * 5000)),
    "help": v.help_view,
    "long error": lambda: v.error_view("Rebuild", "r" * 10_000),
    "long notice": lambda: v.notice_view("n" * 10_000),
}


@pytest.mark.parametrize("build", LARGE_VIEWS.values(), ids=LARGE_VIEWS.keys())
def test_large_inputs_stay_within_slack_limits(build: Callable[[], Message]):
    data = build().to_dict()
    blocks = data["blocks"]
    assert 1 <= len(blocks) <= MAX_BLOCKS
    assert len(data["text"]) <= 3000
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        elif block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(el["text"]) <= 3000 for el in block["elements"])
        elif block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert validate_blocks(blocks) == []


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("running", " · running · "),
        ("done", " · finished · "),
        ("cancelled", " · cancelled · "),
        ("scheduled", " · scheduled · "),
        ("missed", " · missed its start · "),
        ("something-new", " · something-new · "),
    ],
)
def test_history_lines_name_the_state_in_words(state: str, shown: str):
    text = all_text(v.history_view([progress(state=state)], no_links, now=NOW))
    assert shown in text and ":warning:" not in text
