"""`connect-bot demo`: the bot's main job, played end to end on loopback simulators.

A Posit Connect simulator, a fake Slack workspace and the real bot (its HTTP endpoint, reached
with Slack-signed requests) run in this process on 127.0.0.1; nothing needs credentials and
nothing leaves the machine. Each step acts as a person would in Slack, waits for the bot's
answer and prints what appeared in the channel since the previous step, rendered as a person
sees it (`bot.sim.slack_render`).
"""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from bot.connect import RuntimeCache
from bot.sim.connect_seed import OFF_HOST_IMAGE, Seed, demo_seed, make_content_item
from bot.sim.slack_render import render_channel, text_of
from bot.sim.slack_server import FakeSlack, Message
from bot.sim.stack import ADMIN, AUDIT_CHANNEL, OPS_CHANNEL, SECOND_ADMIN, Stack, start_stack
from bot.slack.views import Actions, cache_value

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
GUTTER = "  │ "
README_HINT = (
    "Next: run it in your own workspace. README.md explains it: create the Slack app from"
    " manifest.yml, set CONNECT_SERVER, CONNECT_API_KEY, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET"
    " (or SLACK_APP_TOKEN for Socket Mode) and BOT_ADMIN_USERS, then `connect-bot check` and"
    " `connect-bot serve`."
)


class DemoFailed(Exception):
    """A step did not produce what a person would expect to see; the message says which."""


@dataclass
class Demo:
    """The running stack, where to print, and the last point of the conversation printed."""

    stack: Stack
    out: TextIO
    since: str = ""

    @property
    def slack(self) -> FakeSlack:
        return self.stack.slack

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def heading(self, number: int, title: str) -> None:
        head = f"── Step {number}: {title} "
        self.say()
        self.say(head + "─" * max(4, 78 - len(head)))

    def narrate(self, text: str) -> None:
        self.say(textwrap.fill(text, width=96))

    def show(self, *, viewer: str | None = None) -> None:
        """What is new in #connect-ops since the last `show`, as `viewer` sees it."""
        transcript = render_channel(
            self.slack, OPS_CHANNEL, since=self.since or None, viewer=viewer, title=True
        )
        self.since = self.slack.mark()
        self.say()
        for line in transcript.splitlines():
            self.say((GUTTER + line).rstrip())
        self.say()


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
            quarto_version="1.4.550" if mode.startswith("quarto") else None,
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


def stop_demo_stack(stack: Stack) -> None:
    # Closing the client's keep-alive connection first lets the bot's HTTP server stop at once.
    stack.requests.close()
    stack.stop()


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


def wait_ephemeral(demo: Demo, what: str, user: str, needle: str) -> None:
    def check(fake: FakeSlack) -> bool:
        return any(needle in e.all_text() for e in fake.ephemerals(OPS_CHANNEL, user))

    wait_until(demo, what, check, STEP_TIMEOUT)


def expect_ok(response: httpx.Response, what: str) -> None:
    if response.status_code != 200:
        raise DemoFailed(f"{what}: the bot answered HTTP {response.status_code}")


def command(demo: Demo, text: str, user: str) -> None:
    response = demo.stack.requests.command(text, user_id=user, channel_id=OPS_CHANNEL)
    expect_ok(response, f"/connect {text}")


def click(
    demo: Demo, message: Message, action_id: str, user: str, value: str | None = None
) -> None:
    """Click a button on a channel message; a confirmation dialog is shown, then accepted."""
    try:
        _, element = message.find_element(action_id, value=value)
    except LookupError:
        raise DemoFailed(f"no {action_id} button on the message {message.text!r}") from None
    dialog = element.get("confirm")
    if isinstance(dialog, dict):
        demo.say(confirm_dialog(dialog))
    response = demo.stack.requests.click(
        OPS_CHANNEL, message.ts, action_id, value=element.get("value"), user_id=user
    )
    expect_ok(response, f"clicking {text_of(element.get('text'))}")


def confirm_dialog(dialog: dict[str, Any]) -> str:
    """Slack's confirmation dialog, drawn as a box, with the confirm button chosen."""
    title, body = text_of(dialog.get("title")), text_of(dialog.get("text"))
    buttons = f"[ {text_of(dialog.get('deny'))} ]  [ {text_of(dialog.get('confirm'))} ] ← clicked"
    lines = [title, *textwrap.wrap(body, 60), "", buttons]
    width = max(len(line) for line in lines)
    box = [f"┌{'─' * (width + 2)}┐", *(f"│ {line:<{width}} │" for line in lines)]
    return "\n".join(f"{GUTTER}    {row}" for row in [*box, f"└{'─' * (width + 2)}┘"])


def name(demo: Demo, user: str) -> str:
    return "@" + demo.slack.display_names().get(user, user)


# --- the steps -------------------------------------------------------------------------------


def intro(demo: Demo) -> None:
    demo.say("connect-bot demo")
    demo.say("================")
    demo.narrate(
        "Everything here is simulated on 127.0.0.1: a Posit Connect simulator, a fake Slack"
        " workspace, and the real bot talking to both over HTTP (Slack-signed requests, Connect's"
        " REST API). No credentials; nothing leaves this machine."
    )
    demo.narrate(
        f"Cast: {name(demo, ADMIN)} and {name(demo, SECOND_ADMIN)} are connect-bot administrators,"
        f" working in #{demo.slack.channel_name(OPS_CHANNEL)}; every destructive act is also"
        f" recorded in #{demo.slack.channel_name(AUDIT_CHANNEL)}."
    )
    demo.since = demo.slack.mark()


def step_list(demo: Demo) -> Message:
    demo.heading(1, "list the runtime caches")
    demo.narrate(f"{name(demo, ADMIN)} runs `/connect caches list` in #connect-ops.")
    command(demo, "caches list", ADMIN)
    listing = wait_message(demo, "the caches list", lambda m: "Runtime caches" in m.text)
    demo.show(viewer=ADMIN)
    return listing


def step_request_deletion(demo: Demo, listing: Message) -> Message:
    demo.heading(2, f"delete {TARGET.label}: dry run, then a confirmation card")
    demo.narrate(
        f"{name(demo, ADMIN)} clicks Delete… next to {TARGET.language} {TARGET.version} on the"
        f" {TARGET.image_name} image. The bot asks Connect for a dry run first; nothing is"
        " deleted until an administrator confirms the card."
    )
    click(demo, listing, Actions.CACHE_DELETE_START, ADMIN, value=cache_value(TARGET))
    card = wait_message(
        demo, "the confirmation card", lambda m: "Confirm" in m.button_labels(), STEP_TIMEOUT
    )
    demo.show(viewer=ADMIN)
    return card


def step_confirm_deletion(demo: Demo, card: Message) -> Message:
    demo.heading(3, "a second administrator confirms")
    demo.narrate(
        f"{name(demo, SECOND_ADMIN)} clicks Confirm. The card turns into the result in place."
    )
    click(demo, card, Actions.CACHE_DELETE_CONFIRM, SECOND_ADMIN)

    def finished(fake: FakeSlack) -> bool:
        return "deletion finished" in fake.message(OPS_CHANNEL, card.ts).text

    wait_until(demo, "the deletion result on the card", finished, STEP_TIMEOUT)
    demo.show(viewer=SECOND_ADMIN)
    return demo.slack.message(OPS_CHANNEL, card.ts)


def step_rebuild(demo: Demo, result_card: Message) -> None:
    demo.heading(4, "rebuild the affected content")
    demo.narrate(
        f"Content on the deleted cache now needs a rebuild. {name(demo, ADMIN)} clicks"
        " Rebuild affected content: the bot plans it (what, in which order, how many at a time)"
        " and builds nothing yet."
    )
    click(demo, result_card, Actions.REBUILD_AFFECTED, ADMIN)
    plan = wait_message(demo, "the rebuild plan card", lambda m: m.text.startswith("Rebuild plan"))
    demo.show(viewer=ADMIN)

    demo.narrate(
        f"{name(demo, SECOND_ADMIN)} clicks Start. The plan card becomes the progress message;"
        " the story is told in its thread, and the final summary is also sent to the channel."
        f" ({FAILING_TITLE} is set up to fail, to show how a failure is reported.)"
    )
    click(demo, plan, Actions.REBUILD_START, SECOND_ADMIN)

    def summarised(fake: FakeSlack) -> bool:
        return any(reply.reply_broadcast for reply in fake.thread(OPS_CHANNEL, plan.ts))

    wait_until(demo, "the rebuild's final summary", summarised, REBUILD_TIMEOUT)
    demo.show()


def step_audit(demo: Demo) -> None:
    demo.heading(5, "the audit log")
    demo.narrate(f"{name(demo, ADMIN)} runs `/connect audit 10`; only she sees the answer.")
    command(demo, "audit 10", ADMIN)
    wait_ephemeral(demo, "the audit log answer", ADMIN, "Audit log")
    demo.show(viewer=ADMIN)


def summary(demo: Demo, started: float) -> str:
    stack = demo.stack
    audit = stack.runtime.deps.audit.recent(100)
    deleted = sum(1 for r in audit if r.action == "cache_delete" and r.outcome == "succeeded")
    service = stack.runtime.deps.rebuilds
    progress = service.latest() if service is not None else None
    counts = progress.counts if progress is not None else {}
    return (
        f"Done in {time.monotonic() - started:.1f} s: {deleted} cache(s) deleted,"
        f" {counts.get('succeeded', 0)} item(s) rebuilt, {counts.get('failed', 0)} failed;"
        f" the bot made {len(stack.slack.calls)} Slack Web API calls"
        f" (+{len(stack.slack.response_url_posts)} response_url replies)"
        f" and {len(stack.connect.requests)} Connect API requests."
    )


def play(demo: Demo, started: float) -> None:
    intro(demo)
    listing = step_list(demo)
    card = step_request_deletion(demo, listing)
    result_card = step_confirm_deletion(demo, card)
    step_rebuild(demo, result_card)
    step_audit(demo)
    demo.heading(6, "summary")
    demo.narrate(summary(demo, started))
    demo.narrate(README_HINT)


def run_demo(fast: bool = False, out: TextIO | None = None) -> int:
    """Play the demo, printing the conversation to `out` (stdout). 0 on success."""
    stream = out or sys.stdout
    started = time.monotonic()
    try:
        stack = start_demo_stack(fast)
    except Exception as exc:  # a port, the database: say what, not a traceback
        print(f"demo failed: could not start the simulators: {exc}", file=sys.stderr)
        return 1
    try:
        play(Demo(stack, stream), started)
    except (DemoFailed, httpx.HTTPError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_demo_stack(stack)
    return 0
