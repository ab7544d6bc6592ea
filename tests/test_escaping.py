"""Hostile Connect titles, build errors and names, fed to every view that shows them: nothing
becomes a live mention or a foreign link, every mrkdwn object is verbatim, nothing exceeds
Slack's limits and clipping never splits an entity, a `<…>` token or an emoji. Plus table
tests of `esc`, `clip` and friends, and of what the poster sends to (a fake) Slack."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from bot.connect import RuntimeCache
from bot.services.caches import CacheTarget, DeletionResult, Rejection
from bot.services.servers import ServerStatus
from bot.slack import views as v
from bot.slack.parser import ParseError
from bot.slack.poster import SlackPoster, make_web_client
from bot.slack.text import WORD_JOINER, clip, code, esc, link, mute, plain
from bot.slack.views import Message
from sim.slack import FakeSlack, validate_blocks
from tests.test_views import (
    ADMIN,
    CHANNEL,
    NOW,
    REQUESTER,
    SERVER,
    audit,
    cache,
    card,
    content,
    item,
    plan,
    plan_card,
    planned,
    progress,
    to_link,
)

WJ = WORD_JOINER
FAMILY = "👩‍💻 🇫🇷🇩🇪 👍🏽 👋🏿 ❤️ 1️⃣ 🏴󠁧󠁢󠁳󠁣󠁴󠁿 e\u0301"
HOSTILE: dict[str, str] = {
    "<!channel>": "Q3 <!channel> report",
    "<!here>": "<!here|here> now",
    "<!everyone>": "<!everyone>",
    "@here": "@here look",
    "@channel": "ping @channel!",
    "@everyone": "@everyone",
    "@HERE": "@HERE @Channel",
    "user and group mentions": "<@U999> <@W1|boss> <!subteam^S1|admins> <#C999|secret>",
    "date token": "<!date^1^{date}|x>",
    "&": "R & D &amp; &lt;",
    "<": "a < b",
    ">": "> quoted > b",
    "link": "<https://evil.example|click> <http://evil.example> <mailto:a@evil.example|mail>",
    "markup": "*bold* _it_ ~strike~ `code` ```block``` > quote",
    "3000 characters": "T" * 3000,
    "3000 ampersands": "&" * 3000,
    "3000 mixed": (("<!channel> & @here " + FAMILY + " ") * 80)[:3000],
    "emoji": FAMILY,
    "3000 emoji": "👩🏽‍💻🇫🇷" * 1000,
    "rtl override": "abc\u202edcba\u2066x\u2069",
    "control characters": "a\x00b\x07c\x1bd\x7fe\x85f\r\n",
    "pipes and backslashes": "a|b \\ <x|y> ¦",
}
MENTION_OK = {"@" + ADMIN, "@" + REQUESTER, "#" + CHANNEL}
_TOKEN = re.compile(r"<([^<>]*)>")
_BARE = re.compile(r"@(here|channel|everyone)", re.IGNORECASE)
_HALF_ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)")
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LIMITS = {"header": 150, "section": 3000, "context": 3000}


# --- the views, each fed one hostile string everywhere Connect or a user can put text --------


def _caches(s: str) -> RuntimeCache:
    return RuntimeCache(s, s, s)


def _card(state: str, s: str, *, server: str | None = None) -> Message:
    results = [DeletionResult(_caches(s), False, None, s)]
    return v.deletion_card_view(
        card(state, [planned(_caches(s)), planned(cache())], results=results, rebuild_candidates=2),
        server=server,
    )


def _plan(s: str) -> Message:
    summary = plan(description=s, by_type=[(s, 2)], by_runtime=[(s, 2)], warmup=[(s, s)])
    summary = replace(summary, skipped=3, skipped_titles=[s, s])
    return plan_card(summary, expires_at=NOW, two_person=True)


def _progress(s: str, **changes: Any) -> Any:
    return progress(description=s, flags={"cancelled_by": s}, server=s, **changes)


def _failed_item(s: str) -> Any:
    return item(title=s, error=s, app_mode=s, runtime=s, dashboard_url=f"{SERVER}x/{s}")


VIEWS: dict[str, Callable[[str], Message]] = {
    "caches list, rows": lambda s: v.caches_list_view([_caches(s), cache()], SERVER, server=s),
    "caches list, compact": lambda s: v.caches_list_view(
        [_caches(s), *(cache(i) for i in range(60))], SERVER
    ),
    "caches list, empty": lambda s: v.caches_list_view([], SERVER, server=s),
    **{
        f"deletion card, {state}": lambda s, state=state: _card(state, s, server=s)
        for state in ("pending", "running", "done", "cancelled", "expired")
    },
    "rejections": lambda s: v.rejections_view(
        [Rejection(CacheTarget(s, s, s), s), Rejection(CacheTarget("R", "4.3.1"), s)], True
    ),
    "content search": lambda s: v.content_search_view(
        [content(title=s, app_mode=s, image_name=s, url=f"{SERVER}x/{s}"), content(2)] * 8,
        page=1,
        args=s,
        description=s,
        server=s,
        server_label=s,
    ),
    "content search, not a web url": lambda s: v.content_search_view(
        [content(title=s, url="javascript:alert(1)"), content(title=s, url="ftp://evil.example")],
        page=1,
        args="",
        description="",
    ),
    "plan card": _plan,
    "plan card, discarded": lambda s: plan_card(
        plan(description=s), state="discarded", decided_by=s
    ),
    "progress": lambda s: v.progress_view(_progress(s), now=NOW, server=s),
    "progress, odd state": lambda s: v.progress_view(_progress(s, state=s), now=NOW),
    "start reply": lambda s: v.start_reply(_progress(s), plan(description=s)),
    "warm-up reply": lambda s: v.warmup_reply(_progress(s), [_failed_item(s)] * 3, now=NOW),
    "failure reply": lambda s: v.failures_reply(7, [_failed_item(s), item(2)]),
    "summary, done": lambda s: v.summary_reply(
        _progress(s, state="done", counts={"failed": 1, "succeeded": 5}), now=NOW, server=s
    ),
    "summary, cancelled": lambda s: v.summary_reply(
        _progress(s, state="cancelled", counts={"cancelled": 2}), now=NOW, server=s
    ),
    "status": lambda s: v.status_view(_progress(s), to_link(CHANNEL, "1.2"), now=NOW, server=s),
    "status, odd channel": lambda s: v.status_view(_progress(s, channel=s), None, now=NOW),
    "history": lambda s: v.history_view(
        [_progress(s), _progress(s, state=s)], to_link, now=NOW, several_servers=True
    ),
    "audit": lambda s: v.audit_view(
        [audit(actor=s, action=s, outcome=s, target=s, server=s), audit(2)], several_servers=True
    ),
    "audit notice": lambda s: v.audit_notice_view(
        audit(actor=s, action=s, outcome=s, target=s, detail=s, server=s), several_servers=True
    ),
    "audit notice, odd channel": lambda s: v.audit_notice_view(audit(channel=s, detail=s)),
    "error": lambda s: v.error_view(s, s),
    "notice": lambda s: v.notice_view(s),
    "usage error": lambda s: v.usage_error_view(ParseError(s, s)),
    "unknown server": lambda s: v.unknown_server_view(s, [s, "main"]),
    "servers": lambda s: v.servers_view(
        [
            ServerStatus(s, f"{SERVER}{s}", True, False, s, s),
            ServerStatus(s, SERVER, False, True, s, None),
        ]
    ),
}


# --- inspecting a serialised message ---------------------------------------------------------


def text_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every text object (plain_text or mrkdwn) anywhere in the blocks: confirms, options too."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from text_objects(value)


def assert_safe_text(text: str, *, live: bool) -> None:
    """`live`: Slack parses `<…>` tokens and entities in it (mrkdwn, and the fallback)."""
    # No bare @here etc., whatever `parse` is (a Connect URL inside our link may have one).
    shown = _TOKEN.sub(lambda m: m.group(1).partition("|")[2], text) if live else text
    assert not _BARE.search(shown), text[:200]
    assert not _BAD_CHARS.search(text), text[:200]
    text.encode("utf-8")  # no lone surrogates
    assert "\u200d…" not in text  # no half-joined emoji sequence
    if not live:
        return
    for token in _TOKEN.findall(text):
        target = token.split("|", 1)[0]
        if target.startswith("!"):
            assert target.startswith("!date^"), token  # no <!channel>, <!here>, <!subteam^…>
        elif target.startswith(("@", "#")):
            assert target in MENTION_OK, token  # only the mentions and channel we put there
        else:
            assert target.startswith((SERVER, "https://example.slack.com/")), token
    rest = re.sub(r"(?m)^> ", "", _TOKEN.sub("", text))  # our quotes start a line with "> "
    assert "<" not in rest and ">" not in rest, text[:200]  # no token cut in half
    assert not _HALF_ENTITY.search(text), text[:200]  # no `&am…`


def assert_safe_message(message: Message) -> None:
    data = message.to_dict()
    assert validate_blocks(data["blocks"]) == []
    assert 0 < len(data["text"]) <= 3000
    assert_safe_text(data["text"], live=True)  # the fallback: notifications, screen readers
    for block in data["blocks"]:
        limit = LIMITS.get(block["type"], 3000)
        for obj in text_objects(block):
            assert len(obj["text"]) <= limit
            if obj["type"] == "mrkdwn":
                assert obj.get("verbatim") is True, obj
            assert_safe_text(obj["text"], live=obj["type"] == "mrkdwn")


CASES = [
    pytest.param(build, value, id=f"{view}-{name}")
    for view, build in VIEWS.items()
    for name, value in HOSTILE.items()
]


@pytest.mark.parametrize(("build", "value"), CASES)
def test_hostile_text_is_inert_in_every_view(build: Callable[[str], Message], value: str):
    assert_safe_message(build(value))


@pytest.mark.parametrize("view", [name for name in VIEWS if name != "start reply"])
def test_hostile_text_still_shows_escaped(view: str):
    """Escaping hides nothing: the title is there, as text."""
    message = VIEWS[view]("Q3 <!channel> & @here report")
    texts = [message.to_dict()["text"], *(o["text"] for o in text_objects(message.to_dict()))]
    joined = "\n".join(texts)
    assert "Q3 &lt;!channel&gt; &amp; @\u2060here report" in joined, joined[:500]


@pytest.mark.parametrize(
    ("build", "kept"),
    [
        (lambda: v.denied_view(f"Use it in <#{CHANNEL}> (BOT_ALLOWED_CHANNELS)."), f"<#{CHANNEL}>"),
        (lambda: v.status_view(progress(), None, now=NOW), f"<#{CHANNEL}>"),
        (lambda: v.audit_notice_view(audit()), f"<#{CHANNEL}>"),
        (lambda: v.deletion_card_view(card("pending")), "<!date^"),
        (lambda: v.deletion_card_view(card("running")), f"<@{ADMIN}>"),
        (lambda: v.failures_reply(7, [item()]), f"<{SERVER}connect/#/apps/guid-1|App 1>"),
        (lambda: v.not_in_channel_view("U0BOT"), "<@U0BOT>"),
    ],
    ids=["denied", "status", "audit notice", "expiry date", "mention", "link", "invite"],
)
def test_our_own_tokens_still_work_with_verbatim(build: Callable[[], Message], kept: str):
    message = build()
    data = message.to_dict()
    mrkdwn = [o for o in text_objects(data["blocks"]) if o["type"] == "mrkdwn"]
    assert any(kept in o["text"] for o in mrkdwn)
    assert all(o["verbatim"] is True for o in mrkdwn)
    assert validate_blocks(data["blocks"]) == []


def test_denied_view_fallback_keeps_channel_links_but_mutes_broadcasts():
    data = v.denied_view(f"Use <#{CHANNEL}>, @here.").to_dict()
    assert data["text"] == f"Use <#{CHANNEL}>, @{WJ}here."


# --- esc, code, link, plain, mute ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here|here>", "&lt;!here|here&gt;"),
        ("<@U999>", "&lt;@U999&gt;"),
        ("<https://evil|click>", "&lt;https://evil|click&gt;"),
        ("a & b", "a &amp; b"),
        ("&amp;", "&amp;amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ("@here", f"@{WJ}here"),
        ("@channel", f"@{WJ}channel"),
        ("@everyone", f"@{WJ}everyone"),
        ("@HERE and @Everyone", f"@{WJ}HERE and @{WJ}Everyone"),
        ("@@here", f"@@{WJ}here"),
        ("x@here.example", f"x@{WJ}here.example"),
        ("@hero @chan @bob", "@hero @chan @bob"),
        ("*bold* _it_ `x`", "*bold* _it_ `x`"),
        (FAMILY, FAMILY),
        ("abc\u202edcba", "abcdcba"),
        ("\u2066isolated\u2069 \u202aembedded\u202c", "isolated embedded"),
        ("a\x00b\x07c\x1bd\x7fe\x85f\r", "abcdef"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        (42, "42"),
    ],
)
def test_esc(value: object, escaped: str):
    assert esc(value) == escaped
    assert mute(esc(value)) == esc(value)  # idempotent safety net


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a`b", "`a'b`"),
        ("<!here>", "`&lt;!here&gt;`"),
        ("@channel", f"`@{WJ}channel`"),
        ("x` <!here> `y", "`x' &lt;!here&gt; 'y`"),
    ],
)
def test_code(value: str, shown: str):
    assert code(value) == shown


@pytest.mark.parametrize(
    ("url", "label", "shown"),
    [
        (f"{SERVER}a", "App", f"<{SERVER}a|App>"),
        (f"{SERVER}@here/x", "@here", f"<{SERVER}@here/x|@{WJ}here>"),  # the URL is untouched
        (f"{SERVER}a|<!channel>", "a|b", f"<{SERVER}a%7C&lt;!channel&gt;|a¦b>"),
        ("javascript:alert(1)", "<!here>", "&lt;!here&gt;"),
        (None, "App & co", "App &amp; co"),
    ],
)
def test_link(url: str | None, label: str, shown: str):
    assert link(url, label) == shown


@pytest.mark.parametrize(
    ("text", "muted"),
    [
        ("@here", f"@{WJ}here"),
        (f"<{SERVER}@here|x> @here", f"<{SERVER}@here|x> @{WJ}here"),  # not inside our tokens
        (f"@{WJ}here", f"@{WJ}here"),
        ("<@U1> @channel <#C1>", f"<@U1> @{WJ}channel <#C1>"),
        ("no at sign", "no at sign"),
        ("<@U1> @here\n> quote", f"<@U1> @{WJ}here\n> quote"),  # a quote is no token
        (f"<{SERVER}x|@here label>", f"<{SERVER}x|@{WJ}here label>"),
    ],
)
def test_mute(text: str, muted: str):
    assert mute(text) == muted


def test_plain_drops_controls_and_mutes():
    assert plain("@here\u202e\x00 x" * 3, 12) == f"@{WJ}here x@{WJ}h…"


# --- clip ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "clipped"),
    [
        ("abc", 3, "abc"),
        ("abc", 5, "abc"),
        ("abcdef", 4, "abc…"),
        ("abcdef", 1, "…"),
        ("abcdef", 0, ""),
        ("", 0, ""),
        ("a &amp; b", 5, "a …"),
        ("a &amp; b", 8, "a &amp;…"),
        ("&lt;!channel&gt;", 3, "…"),
        ("&lt;!channel&gt;", 6, "&lt;!…"),
        ("&lt;!channel&gt;", 14, "&lt;!channel…"),
        ("&amp;" * 4, 10, "&amp;…"),
        ("a & b & c", 4, "a &…"),  # a lone & (raw text) is no entity
        ("x <@U123> y", 6, "x …"),
        ("x <@U123> y", 10, "x <@U123>…"),
        (f"see <{SERVER}x|App> now", 20, "see …"),
        ("<!date^1^{time}|soon> later", 10, "…"),
        ("<#C123> ok", 5, "…"),
        ("a < b > c and more", 6, "a < b…"),  # raw comparison signs are no token
        ("ab👩‍💻", 4, "ab…"),
        ("ab👩‍💻cd", 5, "ab…"),
        ("ab👩‍💻cd", 6, "ab👩‍💻…"),
        ("🇫🇷🇩🇪x", 3, "🇫🇷…"),
        ("🇫🇷🇩🇪x", 4, "🇫🇷…"),
        ("🇫🇷🇩🇪x", 2, "…"),
        ("hi👍🏽", 3, "hi…"),
        ("👍🏽x", 2, "…"),
        ("❤️❤️x", 3, "❤️…"),
        ("1️⃣x", 3, "…"),
        ("e\u0301e\u0301e\u0301", 4, "e\u0301…"),
        ("🏴󠁧󠁢󠁳󠁣󠁴󠁿x", 5, "…"),
        (f"@{WJ}here now", 4, f"@{WJ}h…"),
    ],
)
def test_clip(text: str, limit: int, clipped: str):
    assert clip(text, limit) == clipped


_SAMPLES = {
    "escaped hostile": esc(HOSTILE["3000 mixed"][:400]) + " " + link(f"{SERVER}a", "App & co"),
    "tokens": f"<@{ADMIN}> <#{CHANNEL}> <!date^1^{{time}}|soon> <{SERVER}x|X> " * 8,
    "emoji": "👩🏽‍💻🇫🇷🇩🇪❤️1️⃣e\u0301🏴󠁧󠁢󠁳󠁣󠁴󠁿" * 10,
}


@pytest.mark.parametrize("sample", _SAMPLES.values(), ids=_SAMPLES.keys())
def test_clip_at_every_limit_never_splits_anything(sample: str):
    for limit in range(len(sample) + 2):
        clipped = clip(sample, limit)
        assert len(clipped) <= limit
        if len(sample) <= limit:
            assert clipped == sample
            continue
        if limit == 0:
            assert clipped == ""
            continue
        assert clipped.endswith("…") and sample.startswith(clipped[:-1])
        kept, dropped = clipped[:-1], sample[len(clipped) - 1 :]
        assert not _HALF_ENTITY.search(kept)
        assert kept.count("<") == kept.count(">")
        assert not kept.endswith("\u200d") and not re.match(
            "[\u0300-\u036f\u20e3\ufe00-\ufe0f\u200d\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]",
            dropped,
        )
        flags = re.search("[\U0001f1e6-\U0001f1ff]*$", kept)
        assert flags is not None and len(flags.group()) % 2 == 0


def test_clip_is_cheap_on_long_text():
    long = esc(HOSTILE["3000 mixed"] * 30)  # about 100,000 characters
    assert len(clip(long, 3000)) <= 3000
    assert clip(long, len(long)) is long


# --- what the poster sends: chat.update, postMessage, postEphemeral, response_url ------------


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_default_workspace()  # C0OPS, alice=U0ADMIN
        yield server


def test_poster_never_lets_slack_parse_untrusted_text(fake: FakeSlack):
    poster = SlackPoster(make_web_client(fake.bot_token, fake.api_url, rate_limit_retries=0))
    hostile = HOSTILE["3000 mixed"]
    ops, user = "C0OPS", "U0ADMIN"
    ts = poster.post(ops, v.failures_reply(7, [_failed_item(hostile)]))
    poster.post(ops, v.error_view(hostile, hostile), thread_ts=ts, reply_broadcast=True)
    poster.update(ops, ts, v.progress_view(_progress(hostile), now=NOW, server=hostile))
    poster.ephemeral(ops, user, v.notice_view(hostile))
    for in_channel in (False, True):
        url = fake.new_response_url(channel=ops, user=user)
        assert poster.respond(
            url, v.audit_notice_view(audit(detail=hostile)), in_channel=in_channel
        )

    updates = fake.calls_to("chat.update")
    assert updates and all(call.params.get("parse") == "none" for call in updates)
    for method in ("chat.postMessage", "chat.postEphemeral"):
        calls = fake.calls_to(method)
        assert calls, method
        for call in calls:  # Slack's default for these is parse=none; never full, no link_names
            assert call.params.get("parse") in (None, "none") and not call.params.get("link_names")
    posted = [*fake.messages(ops), *fake.thread(ops, ts), *fake.ephemerals()]
    assert len(posted) >= 5
    for message in posted:
        live = [m for m in message.mentions() if not m.startswith("!date^")]
        assert set(live) <= MENTION_OK, live
        assert not _BARE.search(message.all_text())
