"""`connect-bot demo`: the bot's main job, played end to end on loopback simulators.

A Posit Connect simulator, a fake Slack workspace and the real bot (its HTTP endpoint, reached
with Slack-signed requests) run in this process on 127.0.0.1; nothing needs credentials and
nothing leaves the machine. Each step acts as a person would in Slack, waits for the bot's
answer and prints what appeared in the channel since the previous step, rendered as a person
sees it (`sim.slack_render`).
"""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

import httpx

from bot.connect import RuntimeCache
from bot.slack.views import Actions, cache_value
from sim.connect_seed import (
    OFF_HOST_IMAGE,
    QUARTO_VERSION,
    Seed,
    demo_seed,
    make_content_item,
)
from sim.demo.narration import Demo, DemoFailed
from sim.slack import FakeSlack, Message
from sim.slack_render import render_blocks, render_channel, text_of
from sim.stack import ADMIN, AUDIT_CHANNEL, OPS_CHANNEL, SECOND_ADMIN, Stack, start_stack

# The documented off-host example: Python 3.9.5 on the jammy content image.
TARGET = RuntimeCache("Python", "3.9.5", OFF_HOST_IMAGE)
# The demo seed has one published item on that cache; a few more make the rebuild worth
# watching (warm-up, then interactive content, then rendered content). One of them fails.
EXTRA_ITEMS: list[tuple[str, str]] = [
    ("Legacy Pricing API", "python-fastapi"),
    ("Legacy Forecast Notebook", "jupyter-static"),
    ("Legacy Ops Digest", "quarto-static"),
]
FAILING_TITLE = "Legacy Forecast Notebook"
FAILING_ERROR = (
    "ERROR: Could not find a version that satisfies the requirement scikit-learn==0.22.2"
    " (from -r requirements.txt)"
)
STEP_TIMEOUT = 15.0
REBUILD_TIMEOUT = 40.0
README_HINT = (
    'Next: run it in your own workspace. README.md, "Run it in your workspace": install,'
    " create the Slack app from manifest.yml, set CONNECT_SERVER, CONNECT_API_KEY,"
    " SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode) and"
    " BOT_ADMIN_USERS, then `connect-bot check` and `connect-bot serve`."
)


# --- setup -----------------------------------------------------------------------------------


def demo_connect_seed() -> Seed:
    """The simulator's demo seed plus a few published items on the off-host example image."""
    base = demo_seed()
    extras = [
        make_content_item(
            guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"connect-bot-demo/{title}")),
            title=title,
            description=f"Demo content item: {title}",
            app_mode=mode,
            py_version=TARGET.version,
            quarto_version=QUARTO_VERSION if mode.startswith("quarto") else None,
            image_name=TARGET.image_name,
            cluster_name="Kubernetes",
            created_time="2024-05-02T10:00:00Z",
            last_deployed_time=f"2024-06-0{index + 1}T10:00:00Z",
            bundle_id=str(400 + index),
            id=str(8400 + index),
        )
        for index, (title, mode) in enumerate(EXTRA_ITEMS)
    ]
    return Seed(caches=base.caches, content=[*base.content, *extras], owners=base.owners)


def start_demo_stack(fast: bool) -> Stack:
    stack = start_stack(
        seed=demo_connect_seed(),
        build_seconds=0.2 if fast else 0.6,
        cache_delete_seconds=0.1 if fast else 0.3,
        bot_audit_channel=AUDIT_CHANNEL,
    )
    failing = [item["guid"] for item in stack.connect.content() if item["title"] == FAILING_TITLE]
    stack.connect.fail_builds(failing, error=FAILING_ERROR)
    return stack


# --- helpers ---------------------------------------------------------------------------------


def wait_until(demo: Demo, what: str, check: Callable[[FakeSlack], bool], timeout: float) -> None:
    if not demo.slack.wait_for(check, timeout, interval=0.02):
        raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_message(
    demo: Demo, what: str, match: Callable[[Message], bool], timeout: float = STEP_TIMEOUT
) -> Message:
    """The first top-level message in #connect-ops that matches, once it is there."""
    found: list[Message] = []

    def check(fake: FakeSlack) -> bool:
        found[:] = [m for m in fake.messages(OPS_CHANNEL, include_broadcasts=False) if match(m)]
        return bool(found)

    wait_until(demo, what, check, timeout)
    return found[0]


def expect_ok(response: httpx.Response, what: str) -> None:
    if response.status_code != 200:
        raise DemoFailed(f"{what}: the bot answered HTTP {response.status_code}")


def command(demo: Demo, text: str, user: str) -> None:
    response = demo.stack.requests.command(text, user_id=user, channel_id=OPS_CHANNEL)
    demo.acted()
    expect_ok(response, f"/connect {text}")


def click(
    demo: Demo,
    message: Message,
    action_id: str,
    user: str,
    *,
    value: str | None = None,
    detail: str = "",
) -> None:
    """Click a button on a channel message; its confirmation dialog, if any, is accepted."""
    try:
        _, element = message.find_element(action_id, value=value)
    except LookupError:
        raise DemoFailed(f"no {action_id} button on the message {message.text!r}") from None
    response = demo.stack.requests.click(
        OPS_CHANNEL, message.ts, action_id, value=element.get("value"), user_id=user
    )
    demo.acted(detail)
    dialog = element.get("confirm")
    if isinstance(dialog, dict):
        demo.gutter(confirm_dialog(dialog))
    expect_ok(response, f"clicking {text_of(element.get('text'))}")


def confirm_dialog(dialog: dict[str, Any]) -> list[str]:
    """Slack's confirmation dialog as a box, with its confirm button chosen."""
    title, body = text_of(dialog.get("title")), text_of(dialog.get("text"))
    buttons = f"[ {text_of(dialog.get('deny'))} ]  [ {text_of(dialog.get('confirm'))} ] ← clicked"
    lines = [title, *textwrap.wrap(body, 60), "", buttons]
    width = max(len(line) for line in lines)
    rule = "─" * (width + 2)
    return [f"  ┌{rule}┐", *(f"  │ {line:<{width}} │" for line in lines), f"  └{rule}┘"]


def running_snapshot(demo: Demo, message: Message) -> list[str]:
    """The progress message as it read while the rebuild ran (its first running version)."""
    names = demo.slack.display_names()
    for text, blocks in message.versions:
        if text.startswith("Rebuild #") and "(running)" in text:
            return render_blocks(blocks, names)
    return []


def mention(demo: Demo, user: str) -> str:
    return "@" + demo.slack.display_names().get(user, user)


# --- the steps -------------------------------------------------------------------------------


def intro(demo: Demo) -> None:
    demo.say("connect-bot demo")
    demo.say("================")
    demo.narrate(
        "Everything here is simulated on 127.0.0.1: a Posit Connect simulator, a fake Slack"
        " workspace, and the real bot talking to both over HTTP (Slack-signed requests,"
        " Connect's REST API). No credentials; nothing leaves this machine. Builds take a"
        " fraction of a second here instead of minutes."
    )
    demo.say()
    demo.narrate(
        f"Cast: {mention(demo, ADMIN)} and {mention(demo, SECOND_ADMIN)} are connect-bot"
        f" administrators, working in #{demo.slack.channel_name(OPS_CHANNEL)}. Every destructive"
        f" act is audited, and copied to #{demo.slack.channel_name(AUDIT_CHANNEL)}."
    )
    demo.since = demo.slack.mark()


def step_list(demo: Demo) -> Message:
    demo.heading(1, "Ada lists the runtime caches")
    demo.narrate(f"{mention(demo, ADMIN)} types `/connect caches list` in #connect-ops.")
    command(demo, "caches list", ADMIN)
    listing = wait_message(demo, "the caches list", lambda m: "Runtime caches" in m.text)
    demo.show(viewer=ADMIN)
    return listing


def step_request_deletion(demo: Demo, listing: Message) -> Message:
    demo.heading(2, "Ada asks to delete a cache: dry run, then a confirmation card")
    demo.narrate(
        f"{mention(demo, ADMIN)} clicks Delete… next to {TARGET.language} {TARGET.version} on"
        f" the {TARGET.image_name} image. The bot has Connect dry-run the deletion first;"
        " nothing is deleted until an administrator confirms the card."
    )
    click(
        demo,
        listing,
        Actions.CACHE_DELETE_START,
        ADMIN,
        value=cache_value(TARGET),
        detail=f" next to {TARGET.label}",
    )
    card = wait_message(demo, "the confirmation card", lambda m: "Confirm" in m.button_labels())
    demo.show(viewer=ADMIN)
    return card


def step_confirm_deletion(demo: Demo, card: Message) -> Message:
    demo.heading(3, "Grace confirms; the card becomes the result")
    demo.narrate(
        f"{mention(demo, SECOND_ADMIN)}, another administrator, clicks Confirm and accepts"
        " Slack's dialog. The bot deletes the cache and updates the same card in place."
    )
    click(demo, card, Actions.CACHE_DELETE_CONFIRM, SECOND_ADMIN)

    def finished(fake: FakeSlack) -> bool:
        return "deletion finished" in fake.message(OPS_CHANNEL, card.ts).text

    wait_until(demo, "the deletion result on the card", finished, STEP_TIMEOUT)
    demo.show(viewer=SECOND_ADMIN)
    return demo.slack.message(OPS_CHANNEL, card.ts)


def step_plan_rebuild(demo: Demo, result_card: Message) -> Message:
    demo.heading(4, "Ada plans a rebuild of the affected content")
    demo.narrate(
        f"Content on the deleted cache must be rebuilt before visitors hit a slow first load."
        f" {mention(demo, ADMIN)} clicks Rebuild affected content. The bot plans the rebuild"
        " (what, in which order, how many at a time) and builds nothing yet."
    )
    click(demo, result_card, Actions.REBUILD_AFFECTED, ADMIN)
    plan = wait_message(demo, "the rebuild plan card", lambda m: m.text.startswith("Rebuild plan"))
    demo.show(viewer=ADMIN)
    return plan


def step_run_rebuild(demo: Demo, plan: Message) -> None:
    demo.heading(5, "Grace starts it: progress, thread replies, summary")
    demo.narrate(
        f"{mention(demo, SECOND_ADMIN)} clicks Start. The plan card becomes the progress"
        " message; the thread tells the story and the final summary is also sent to the"
        f" channel. ({FAILING_TITLE} is rigged to fail, to show how a failure is reported.)"
    )
    click(demo, plan, Actions.REBUILD_START, SECOND_ADMIN)

    def summarised(fake: FakeSlack) -> bool:
        return any(reply.reply_broadcast for reply in fake.thread(OPS_CHANNEL, plan.ts))

    wait_until(demo, "the rebuild's final summary", summarised, REBUILD_TIMEOUT)
    progress = demo.slack.message(OPS_CHANNEL, plan.ts)
    snapshot = running_snapshot(demo, progress)
    if snapshot:
        demo.say()
        demo.narrate(
            "While the builds ran, the progress message read (the bot edited it"
            f" {progress.updated} time(s) in all):"
        )
        demo.gutter(["", *snapshot])
        demo.say()
        demo.narrate("When the rebuild finished, #connect-ops showed:")
    demo.show(viewer=SECOND_ADMIN)


def step_audit(demo: Demo) -> None:
    demo.heading(6, "Ada reads the audit log")
    demo.narrate(f"{mention(demo, ADMIN)} types `/connect audit 10`; only she sees the answer.")
    command(demo, "audit 10", ADMIN)

    def answered(fake: FakeSlack) -> bool:
        return any("Audit log" in e.all_text() for e in fake.ephemerals(OPS_CHANNEL, ADMIN))

    wait_until(demo, "the audit log answer", answered, STEP_TIMEOUT)
    demo.show(viewer=ADMIN)


def summary(demo: Demo, started: float) -> str:
    stack = demo.stack
    records = stack.runtime.services.audit.recent(100)
    deleted = sum(1 for r in records if r.action == "cache_delete" and r.outcome == "succeeded")
    # The audit channel copies arrive asynchronously; a short wait lets the count settle.
    demo.slack.wait_for(lambda fake: len(fake.messages(AUDIT_CHANNEL)) >= len(records), 2.0)
    progress = stack.runtime.services.rebuild_store.latest()
    counts = progress.counts if progress is not None else {}
    return (
        f"Done in {time.monotonic() - started:.1f} s: {deleted} cache(s) deleted,"
        f" {counts.get('succeeded', 0)} item(s) rebuilt, {counts.get('failed', 0)} failed,"
        f" {len(demo.slack.messages(AUDIT_CHANNEL))} audit record(s) in #connect-audit."
        f" The bot made {len(stack.slack.calls)} Slack Web API calls"
        f" (+{len(stack.slack.response_url_posts)} response_url replies)"
        f" and {len(stack.connect.requests)} Connect API requests."
    )


def play(demo: Demo, started: float) -> None:
    intro(demo)
    listing = step_list(demo)
    card = step_request_deletion(demo, listing)
    result_card = step_confirm_deletion(demo, card)
    plan = step_plan_rebuild(demo, result_card)
    step_run_rebuild(demo, plan)
    step_audit(demo)
    demo.heading(7, "summary")
    demo.narrate(summary(demo, started))
    demo.say()
    demo.narrate(README_HINT)


def explain_failure(demo: Demo, error: Exception) -> None:
    """What went wrong, and what the channel showed since the last step (to see why)."""
    print(f"\ndemo failed: {error}", file=sys.stderr)
    recent = render_channel(demo.slack, OPS_CHANNEL, since=demo.since or None)
    if recent:
        print("#connect-ops since the last step:", file=sys.stderr)
        print(textwrap.indent(recent, "    "), file=sys.stderr)


def utf8_safe(stream: TextIO) -> TextIO:
    """Box drawing and emoji on a terminal that can't show them: replaced, not a crash."""
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    reconfigure = getattr(stream, "reconfigure", None)
    if "utf" not in encoding and callable(reconfigure):
        reconfigure(errors="replace")
    return stream


def run_demo(fast: bool = False, out: TextIO | None = None) -> int:
    """Play the demo, printing the conversation to `out` (stdout). 0 on success, else 1."""
    stream = utf8_safe(out or sys.stdout)
    return play_on_new_stack(fast, stream)


def play_on_new_stack(fast: bool, stream: TextIO) -> int:
    started = time.monotonic()
    try:
        stack = start_demo_stack(fast)
    except Exception as exc:  # a port, the database: one clear line, not a traceback
        print(f"demo failed: could not start the simulators: {exc}", file=sys.stderr)
        return 1
    demo = Demo(stack, stream)
    try:
        play(demo, started)
    except (DemoFailed, httpx.HTTPError) as exc:
        explain_failure(demo, exc)
        return 1
    finally:
        stack.stop()
    return 0
