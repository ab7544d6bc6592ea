"""`connect-bot demo`: the seed's story end to end, played on loopback simulators (issue 19).

A GDAL upgrade breaks the R content that uses `sf`; `/connect health` finds it, `/connect impact
--package sf` shows where `sf` is used, the caches of those runtimes are deleted (dry run, then a
second administrator's confirmation), the affected content is rebuilt, and a second `health`
run proves that every item starts again.

A Posit Connect simulator, a fake Slack workspace and the real bot (its HTTP endpoint, reached
with Slack-signed requests) run in this process on 127.0.0.1; nothing needs credentials and
nothing leaves the machine. Each step acts as a person would in Slack, waits for the bot's
answer and prints what appeared in the channel since the previous step, rendered as a person
sees it (`sim.slack_render`).
"""

from __future__ import annotations

import re
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any, TextIO

import httpx

from bot.slack.views import Actions, ImpactActions
from sim.connect_seed import demo_seed
from sim.demo.narration import Demo, DemoFailed
from sim.slack import FakeSlack, Message
from sim.slack_render import render_blocks, render_channel, text_of
from sim.stack import ADMIN, AUDIT_CHANNEL, OPS_CHANNEL, SECOND_ADMIN, Stack, start_stack

# The system change of the story: the hosts' GDAL goes from 3.4 to 3.8. R packages compiled
# against the old library (`sf`, `terra`) can no longer load it.
CHANGE = "gdal"
BREAKS = {"R": ["sf", "terra"]}
PACKAGE = "sf"
STEP_TIMEOUT = 15.0
HEALTH_TIMEOUT = 20.0
REBUILD_TIMEOUT = 40.0
README_HINT = (
    'Next: run it in your own workspace. README.md, "Run it in your workspace": install,'
    " create the Slack app from manifest.yml, set CONNECT_SERVER, CONNECT_API_KEY,"
    " SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode) and"
    " BOT_ADMIN_USERS, then `connect-bot check` and `connect-bot serve`."
)


# --- setup -----------------------------------------------------------------------------------


def start_demo_stack(fast: bool) -> Stack:
    """The simulator's demo seed: 16 items, R `sf` used by three published ones."""
    return start_stack(
        seed=demo_seed(),
        build_seconds=0.2 if fast else 0.6,
        cache_delete_seconds=0.1 if fast else 0.3,
        bot_audit_channel=AUDIT_CHANNEL,
    )


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


def step_upgrade(demo: Demo) -> Message:
    demo.heading(1, "GDAL is upgraded; Ada lists the runtime caches")
    demo.narrate(
        "Overnight, the platform team upgrades GDAL from 3.4 to 3.8 on the Connect hosts"
        ' (in the simulator: `system_change("gdal", breaks={"R": ["sf", "terra"]})`).'
        " Every running process ends. The runtime caches still hold R packages compiled"
        " against the old libgdal.so.30; nothing in Connect says so."
    )
    demo.stack.connect.system_change(CHANGE, breaks=BREAKS)
    demo.say()
    demo.narrate(f"{mention(demo, ADMIN)} types `/connect caches list` in #connect-ops.")
    command(demo, "caches list", ADMIN)
    listing = wait_message(demo, "the caches list", lambda m: "Runtime caches" in m.text)
    demo.show(viewer=ADMIN)
    return listing


def step_health(demo: Demo, number: int, title: str, text: str, user: str) -> Message:
    """`/connect health`: the new card (not one of an earlier check), once it shows the counts."""
    demo.heading(number, title)
    demo.narrate(text)
    before = {m.ts for m in demo.slack.messages(OPS_CHANNEL, include_broadcasts=False)}
    command(demo, "health", user)
    card = wait_message(
        demo,
        "the health card's counts",
        lambda m: m.ts not in before and " checked: " in m.text,
        HEALTH_TIMEOUT,
    )
    demo.show(viewer=user)
    return card


def step_impact(demo: Demo) -> Message:
    demo.heading(3, f"Ada asks where `{PACKAGE}` is used")
    demo.narrate(
        f"Both failures share `{PACKAGE}`. {mention(demo, ADMIN)} types `/connect impact"
        f" --package {PACKAGE}`: every published item whose active bundle uses it, on which"
        " runtimes, and those runtimes' caches (rendered documents included: they keep"
        " serving their last good output, but their next render fails too)."
    )
    command(demo, f"impact --package {PACKAGE}", ADMIN)
    answer = wait_message(demo, "the impact answer", lambda m: m.text.startswith("3 published"))
    demo.show(viewer=ADMIN)
    return answer


def step_request_deletion(demo: Demo, impact: Message) -> Message:
    demo.heading(4, "Ada asks to delete those caches: dry run, then a confirmation card")
    demo.narrate(
        f"A rebuild over the old caches would re-use the broken `{PACKAGE}` and still fail to"
        f" start. {mention(demo, ADMIN)} clicks Delete these caches…. The bot has Connect"
        " dry-run the deletion first; nothing is deleted until an administrator confirms."
    )
    click(demo, impact, ImpactActions.DELETE_CACHES, ADMIN)
    card = wait_message(demo, "the confirmation card", lambda m: "Confirm" in m.button_labels())
    demo.show(viewer=ADMIN)
    return card


def step_confirm_deletion(demo: Demo, card: Message) -> Message:
    demo.heading(5, "Grace confirms; the card becomes the result")
    demo.narrate(
        f"{mention(demo, SECOND_ADMIN)}, another administrator, clicks Confirm and accepts"
        " Slack's dialog. The bot deletes the caches and updates the same card in place."
    )
    click(demo, card, Actions.CACHE_DELETE_CONFIRM, SECOND_ADMIN)

    def finished(fake: FakeSlack) -> bool:
        return "deletion finished" in fake.message(OPS_CHANNEL, card.ts).text

    wait_until(demo, "the deletion result on the card", finished, STEP_TIMEOUT)
    demo.show(viewer=SECOND_ADMIN)
    return demo.slack.message(OPS_CHANNEL, card.ts)


def step_plan_rebuild(demo: Demo, result_card: Message) -> Message:
    demo.heading(6, "Ada plans a rebuild of the affected content")
    demo.narrate(
        "Everything published on the deleted caches must be rebuilt: the first build on each"
        f" runtime creates its cache fresh, with `{PACKAGE}` compiled against the new GDAL."
        f" {mention(demo, ADMIN)} clicks Rebuild affected content. The bot plans the rebuild"
        " (what, in which order, how many at a time) and builds nothing yet."
    )
    click(demo, result_card, Actions.REBUILD_AFFECTED, ADMIN)
    plan = wait_message(demo, "the rebuild plan card", lambda m: m.text.startswith("Rebuild plan"))
    demo.show(viewer=ADMIN)
    return plan


def step_run_rebuild(demo: Demo, plan: Message) -> None:
    demo.heading(7, "Grace starts it: progress, thread replies, summary")
    demo.narrate(
        f"{mention(demo, SECOND_ADMIN)} clicks Start. The plan card becomes the progress"
        " message; the thread tells the story and the final summary is also sent to the"
        " channel."
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
    demo.heading(9, "Ada reads the audit log")
    demo.narrate(f"{mention(demo, ADMIN)} types `/connect audit 10`; only she sees the answer.")
    command(demo, "audit 10", ADMIN)

    def answered(fake: FakeSlack) -> bool:
        return any("Audit log" in e.all_text() for e in fake.ephemerals(OPS_CHANNEL, ADMIN))

    wait_until(demo, "the audit log answer", answered, STEP_TIMEOUT)
    demo.show(viewer=ADMIN)


def health_counts(card: Message) -> str:
    """ "N checked: A start, B fail to start, …" from a health card's fallback text."""
    found = re.search(r"\d+ checked: [^.]*", card.text)
    return found.group(0) if found else "?"


def summary(demo: Demo, started: float, before: Message, after: Message) -> str:
    stack = demo.stack
    records = stack.runtime.services.audit.recent(100)
    deleted = sum(1 for r in records if r.action == "cache_delete" and r.outcome == "succeeded")
    # The audit channel copies arrive asynchronously; a short wait lets the count settle.
    demo.slack.wait_for(lambda fake: len(fake.messages(AUDIT_CHANNEL)) >= len(records), 2.0)
    progress = stack.runtime.services.rebuild_store.latest()
    counts = progress.counts if progress is not None else {}
    return (
        f"Done in {time.monotonic() - started:.1f} s. Health before: {health_counts(before)};"
        f" after: {health_counts(after)}. {deleted} cache(s) deleted,"
        f" {counts.get('succeeded', 0)} item(s) rebuilt, {counts.get('failed', 0)} failed,"
        f" {len(demo.slack.messages(AUDIT_CHANNEL))} audit record(s) in #connect-audit."
        f" The bot made {len(stack.slack.calls)} Slack Web API calls"
        f" (+{len(stack.slack.response_url_posts)} response_url replies)"
        f" and {len(stack.connect.requests)} Connect API requests."
    )


def play(demo: Demo, started: float) -> None:
    intro(demo)
    step_upgrade(demo)
    before = step_health(
        demo,
        2,
        "Ada checks the content's health",
        f"Users report that two dashboards are down. {mention(demo, ADMIN)} types"
        " `/connect health`: the bot requests each interactive item's URL (at most 4 at a"
        " time) and reads the job that started, so it knows which items fail to start and"
        " why. Static and unpublished content is skipped, and rendered documents are not"
        " rendered again without `--render`.",
        ADMIN,
    )
    impact = step_impact(demo)
    card = step_request_deletion(demo, impact)
    result_card = step_confirm_deletion(demo, card)
    plan = step_plan_rebuild(demo, result_card)
    step_run_rebuild(demo, plan)
    after = step_health(
        demo,
        8,
        "Grace checks again: every item starts",
        "A build that ends with code 0 does not prove that the content starts. "
        f"{mention(demo, SECOND_ADMIN)} runs `/connect health` again: each interactive item"
        " is requested once more, and its new process must start.",
        SECOND_ADMIN,
    )
    if " 0 fail to start" not in after.text:
        raise DemoFailed(f"items still fail to start after the rebuild: {after.text!r}")
    step_audit(demo)
    demo.heading(10, "summary")
    demo.narrate(summary(demo, started, before, after))
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
