"""Render FakeSlack state as the text a person would see in the channel (demo transcripts).

Pure: reads the fake's state, never talks to the network. Conventions:

* ``connect-bot  12:01`` header per message; ``(only visible to you)`` marks ephemerals;
* Block Kit as text: headers underlined, sections/fields/context as text, ``[ Confirm ]`` for
  buttons, ``[ Pick one ▾ ]`` for selects, a rule for dividers;
* mrkdwn is shown as typed (``*bold*`` stays), but tokens are resolved the way Slack displays
  them (``<@U1>`` -> ``@alice``, ``<!here>`` -> ``@here``, ``<url|label>`` -> ``label``) and
  ``&lt; &gt; &amp;`` are decoded; common ``:emoji:`` codes become glyphs. plain_text is
  shown literally apart from emoji;
* thread replies are indented under their parent with ``  ↳ ``;
* with ``show_interactions``, what people did is shown as ``» alice ran /connect ...``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sim.slack import (
    Ephemeral,
    FakeSlack,
    Interaction,
    JsonDict,
    Message,
    ts_key,
)

RULE = "─" * 40
REPLY_PREFIX = "  ↳ "
REPLY_INDENT = "    "
EPHEMERAL_MARK = "(only visible to you)"

_TOKEN = re.compile(r"<([^<>]+)>")
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
# Common shortcodes shown as the glyph a person sees; unknown codes stay as typed.
EMOJI = {
    "white_check_mark": "✅",
    "checkered_flag": "🏁",
    "hammer": "🔨",
    "fire": "🔥",
    "fast_forward": "⏩",
    "octagonal_sign": "🛑",
    "scroll": "📜",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "stopwatch": "⏱️",
    "rocket": "🚀",
    "wastebasket": "🗑️",
    "hammer_and_wrench": "🛠️",
    "arrows_counterclockwise": "🔄",
    "information_source": "\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}",
    "lock": "🔒",
    "construction": "🚧",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "tada": "🎉",
    "eyes": "👀",
    "package": "📦",
    "gear": "⚙️",
    "memo": "📝",
    "mag": "🔍",
}
_SPECIAL_MENTIONS = {"here", "channel", "everyone"}

Posted = Message | Ephemeral


def format_time(ts: str) -> str:
    """Local HH:MM of a Slack ts."""
    return time.strftime("%H:%M", time.localtime(int(str(ts).partition(".")[0])))


def emojize(text: str) -> str:
    return _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def unescape(text: str) -> str:
    """Decode Slack's three entities (&amp; last, so "&amp;lt;" shows as "&lt;")."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_to_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """mrkdwn as displayed: control tokens resolved, entities decoded, formatting kept."""
    names = names or {}

    def token(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        sigil, ident = target[:1], target[1:]
        if sigil in "@#":
            return label if label.startswith(sigil) else sigil + (label or names.get(ident, ident))
        if sigil == "!":
            return _special(ident, label, names)
        return label or target  # a link shows its label

    return emojize(unescape(_TOKEN.sub(token, text)))


def _special(command: str, label: str, names: Mapping[str, str]) -> str:
    if command in _SPECIAL_MENTIONS:
        return f"@{command}"
    kind, _, arg = command.partition("^")
    if kind == "subteam":
        return label or f"@{names.get(arg, arg)}"
    return label or f"@{kind}"  # <!date^...|fallback> shows the fallback


def text_of(obj: Any, names: Mapping[str, str] | None = None) -> str:
    """A text object as displayed."""
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_text(text, names)
    return emojize(text) if obj.get("emoji", True) else text


def element_label(element: JsonDict) -> str:
    """How an interactive element looks: ``[ Confirm ]``, ``[ Pick one ▾ ]``, ``[ ⋯ ]``."""
    kind = element.get("type")
    if kind == "button":
        label = text_of(element.get("text"))
        return f"[ {label} ↗ ]" if element.get("url") else f"[ {label} ]"
    if kind == "overflow":
        return "[ ⋯ ]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    initial = element.get("initial_option")
    if isinstance(initial, dict):
        return f"[ {text_of(initial.get('text'))} ▾ ]"
    if isinstance(element.get("placeholder"), dict):
        return f"[ {text_of(element['placeholder'])} ▾ ]"
    return f"[ {kind} ]"


def _fields(fields: list[Any], names: Mapping[str, str]) -> list[str]:
    """Section fields as Slack's two-column grid."""
    texts = [text_of(f, names) for f in fields]
    lines: list[str] = []
    for left, right in zip(texts[::2], [*texts[1::2], ""], strict=False):
        if "\n" in left or "\n" in right:
            lines += [*left.splitlines(), *right.splitlines()]
        else:
            lines.append(f"{left:<30}  {right}".rstrip())
    return lines


def _section(block: JsonDict, names: Mapping[str, str]) -> list[str]:
    lines = text_of(block.get("text"), names).splitlines() if block.get("text") else []
    lines += _fields(block.get("fields") or [], names)
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        label = element_label(accessory)
        if lines:
            lines[-1] = f"{lines[-1]}   {label}"
        else:
            lines.append(label)
    return lines


def _header(block: JsonDict, names: Mapping[str, str]) -> list[str]:
    text = text_of(block.get("text"), names)
    return [text, "━" * min(len(text), 60)]


def _context(block: JsonDict, names: Mapping[str, str]) -> list[str]:
    parts = [
        element_label(el) if el.get("type") == "image" else text_of(el, names)
        for el in block.get("elements") or []
        if isinstance(el, dict)
    ]
    return "  ".join(parts).splitlines()


def _actions(block: JsonDict, names: Mapping[str, str]) -> list[str]:
    return [" ".join(element_label(el) for el in block.get("elements") or [])]


def _rich_text(block: JsonDict, names: Mapping[str, str]) -> list[str]:
    def flatten(node: Any) -> str:
        if isinstance(node, list):
            return "".join(flatten(n) for n in node)
        if not isinstance(node, dict):
            return ""
        kind = node.get("type")
        if kind == "text":
            return str(node.get("text", ""))
        if kind == "link":
            return str(node.get("text") or node.get("url", ""))
        if kind == "user":
            return "@" + names.get(node.get("user_id", ""), node.get("user_id", ""))
        if kind == "emoji":
            return f":{node.get('name', '')}:"
        suffix = "\n" if kind in ("rich_text_section", "rich_text_preformatted") else ""
        return flatten(node.get("elements", [])) + suffix

    return flatten(block.get("elements", [])).splitlines()


_BLOCKS: dict[str, Callable[[JsonDict, Mapping[str, str]], list[str]]] = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "divider": lambda block, names: [RULE],
    "image": lambda block, names: [element_label({**block, "type": "image"})],
    "markdown": lambda block, names: mrkdwn_to_text(str(block.get("text", "")), names).splitlines(),
    "rich_text": _rich_text,
    "input": lambda block, names: [f"{text_of(block.get('label'), names)}: [ input ]"],
}


def render_blocks(blocks: Iterable[JsonDict], names: Mapping[str, str] | None = None) -> list[str]:
    """Block Kit blocks as display lines."""
    names = names or {}
    lines: list[str] = []
    for block in blocks:
        render = _BLOCKS.get(str(block.get("type")))
        lines += render(block, names) if render else [f"[{block.get('type')} block]"]
    return lines


def _body(msg: Posted, names: Mapping[str, str]) -> list[str]:
    # With blocks, Slack shows the blocks; `text` is only the notification fallback.
    if msg.blocks:
        lines = render_blocks(msg.blocks, names)
    else:
        lines = mrkdwn_to_text(msg.text, names).splitlines()
    for attachment in msg.attachments:
        text = str(attachment.get("text") or attachment.get("fallback") or "")
        lines += [f"┃ {line}" for line in mrkdwn_to_text(text, names).splitlines()]
    return lines


def _author(msg: Posted, names: Mapping[str, str], bot_name: str) -> str:
    if msg.bot_id:
        return getattr(msg, "username", None) or bot_name
    if isinstance(msg, Ephemeral):
        return "Slackbot"  # Slack's own notices (operation_timeout, dispatch_failed)
    return names.get(msg.user or "", msg.user or "someone")


def render_message(
    msg: Posted,
    *,
    names: Mapping[str, str] | None = None,
    bot_name: str = "connect-bot",
    prefix: str = "",
    indent: str = "",
    marks: Iterable[str] = (),
) -> str:
    """One message: a ``author  HH:MM  (marks)`` header line, then its content."""
    names = names or {}
    all_marks = list(marks)
    if isinstance(msg, Ephemeral):
        all_marks.append(EPHEMERAL_MARK)
    header = "  ".join(
        [f"{prefix}{_author(msg, names, bot_name)}", format_time(msg.ts), *all_marks]
    )
    return "\n".join([header, *(f"{indent}{line}" for line in _body(msg, names))])


def render_interaction(item: Interaction, names: Mapping[str, str] | None = None) -> str:
    who = (names or {}).get(item.user, item.user)
    verb = "ran" if item.kind == "command" else "clicked"
    return f"» {who} {verb} {item.label}"


def _since_key(since: str | float | None) -> tuple[int, int] | None:
    if since is None:
        return None
    return ts_key(f"{since:.6f}" if isinstance(since, float | int) else since)


def render_channel(
    fake: FakeSlack,
    channel: str,
    *,
    since: str | float | None = None,
    viewer: str | None = None,
    bot_name: str = "connect-bot",
    show_interactions: bool = True,
    title: bool = False,
) -> str:
    """The channel as a transcript, oldest first.

    since: a ts (e.g. from ``fake.mark()``) or epoch; only what appeared or changed after it is
    shown (edited messages marked ``(edited)``, threads show only new replies).
    viewer: show only that user's ephemerals and actions (what they see); None shows all.
    """
    names = fake.display_names()
    start = _since_key(since)

    def after(ts: str) -> bool:
        return start is None or ts_key(ts) > start

    items: list[tuple[tuple[int, int], str]] = []
    for msg in fake.messages(channel, include_broadcasts=False):
        rendered = _render_thread(msg, after, names, bot_name)
        if rendered:
            items.append((ts_key(msg.ts), rendered))
        for reply in msg.replies:
            if reply.reply_broadcast and not reply.deleted and after(reply.ts):
                marks = ["(replied to a thread)"]
                text = render_message(reply, names=names, bot_name=bot_name, marks=marks)
                items.append((ts_key(reply.ts), text))
    for eph in fake.ephemerals(channel, viewer):
        if after(eph.ts) or after(eph.modified):
            items.append((ts_key(eph.ts), render_message(eph, names=names, bot_name=bot_name)))
    if show_interactions:
        for item in list(fake.interactions):
            visible = viewer is None or item.user == viewer
            if item.channel == channel and visible and after(item.ts):
                items.append((ts_key(item.ts), render_interaction(item, names)))
    items.sort(key=lambda pair: pair[0])
    lines = [f"#{fake.channel_name(channel)}"] if title else []
    return "\n\n".join([*lines, *(text for _, text in items)])


def _render_thread(
    msg: Message, after: Callable[[str], bool], names: Mapping[str, str], bot_name: str
) -> str | None:
    replies = [r for r in msg.replies if not r.deleted and after(r.ts)]
    if not (after(msg.ts) or after(msg.modified) or replies):
        return None
    marks = ["(edited)"] if not after(msg.ts) and after(msg.modified) else []
    parts = [render_message(msg, names=names, bot_name=bot_name, marks=marks)]
    parts += [
        render_message(
            reply, names=names, bot_name=bot_name, prefix=REPLY_PREFIX, indent=REPLY_INDENT
        )
        for reply in replies
    ]
    return "\n".join(parts)
