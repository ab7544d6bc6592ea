"""Block Kit as Slack sees it: validation of message `blocks` (limits from reference section
2.4 / slack_sdk.models.blocks), interactive elements, the ids Slack fills in, and the mrkdwn
texts where mentions are live."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sim.slack.common import JsonDict

MAX_BLOCKS = 50  # per message

TEXT_TYPES = {"plain_text", "mrkdwn"}
SINGLE_OPTION_ELEMENTS = {"static_select", "overflow", "radio_buttons"}
MULTI_OPTION_ELEMENTS = {"multi_static_select", "checkboxes"}
OPTION_ELEMENTS = SINGLE_OPTION_ELEMENTS | MULTI_OPTION_ELEMENTS
# Elements whose selection is a single raw value in block_actions payloads.
VALUE_ELEMENTS = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "external_select": "selected_option",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}
KNOWN_ELEMENTS = (
    {"button", "image", "workflow_button", "datetimepicker", "plain_text_input"}
    | {"number_input", "email_text_input", "url_text_input", "rich_text_input", "file_input"}
    | {"multi_external_select", "multi_users_select", "multi_conversations_select"}
    | {"multi_channels_select"}
    | OPTION_ELEMENTS
    | set(VALUE_ELEMENTS)
)


def _pointer(message: str, path: str) -> str:
    return f"{message} [json-pointer:{path}]"


def _check_len(value: Any, limit: int, path: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [_pointer(f"must be less than {limit + 1} characters", path)]
    return []


def _check_text(obj: Any, path: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [_pointer("must provide an object", path)]
    if obj.get("type") not in TEXT_TYPES or (plain_only and obj.get("type") != "plain_text"):
        allowed = "plain_text" if plain_only else "one of [plain_text, mrkdwn]"
        return [_pointer(f"must be {allowed}", f"{path}/type")]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [_pointer("must be more than 0 characters", f"{path}/text")]
    return _check_len(text, limit, f"{path}/text")


def _check_confirm(obj: Any, path: str) -> list[str]:
    if not isinstance(obj, dict):
        return [_pointer("must provide an object", path)]
    errors = _check_text(obj.get("title"), f"{path}/title", 100, plain_only=True)
    errors += _check_text(obj.get("text"), f"{path}/text", 300)
    errors += _check_text(obj.get("confirm"), f"{path}/confirm", 30, plain_only=True)
    errors += _check_text(obj.get("deny"), f"{path}/deny", 30, plain_only=True)
    if obj.get("style") not in (None, "primary", "danger"):
        errors.append(_pointer("must be one of [primary, danger]", f"{path}/style"))
    return errors


def _check_option(opt: Any, path: str) -> list[str]:
    if not isinstance(opt, dict):
        return [_pointer("must provide an object", path)]
    errors = _check_text(opt.get("text"), f"{path}/text", 75)
    value = opt.get("value")
    if not isinstance(value, str) or not value:
        errors.append(_pointer("must be more than 0 characters", f"{path}/value"))
    return errors + _check_len(value, 150, f"{path}/value")


def _check_options(el: JsonDict, path: str) -> list[str]:
    errors = []
    if "placeholder" in el:
        errors += _check_text(el["placeholder"], f"{path}/placeholder", 150, plain_only=True)
    options = el.get("options")
    if options is None:
        return errors
    if not isinstance(options, list) or not 1 <= len(options) <= 100:
        return [*errors, _pointer("must provide between 1 and 100 items", f"{path}/options")]
    for i, opt in enumerate(options):
        errors += _check_option(opt, f"{path}/options/{i}")
    return errors


def _check_button(el: JsonDict, path: str) -> list[str]:
    errors = _check_text(el.get("text"), f"{path}/text", 75, plain_only=True)
    errors += _check_len(el.get("value"), 2000, f"{path}/value")
    errors += _check_len(el.get("url"), 3000, f"{path}/url")
    errors += _check_len(el.get("accessibility_label"), 75, f"{path}/accessibility_label")
    if el.get("style") not in (None, "primary", "danger"):
        errors.append(_pointer("must be one of [primary, danger]", f"{path}/style"))
    return errors


def _check_element(el: Any, path: str) -> list[str]:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        return [_pointer("must provide an element object with a type", path)]
    kind = el["type"]
    errors = _check_len(el.get("action_id"), 255, f"{path}/action_id")
    if kind == "button":
        errors += _check_button(el, path)
    elif kind in OPTION_ELEMENTS:
        errors += _check_options(el, path)
    elif kind not in KNOWN_ELEMENTS:
        errors.append(_pointer(f"unsupported element type: {kind}", f"{path}/type"))
    if "confirm" in el:
        errors += _check_confirm(el["confirm"], f"{path}/confirm")
    return errors


def _check_image(obj: JsonDict, path: str) -> list[str]:
    errors = []
    if not obj.get("image_url") and not obj.get("slack_file"):
        errors.append(_pointer("must provide image_url or slack_file", path))
    errors += _check_len(obj.get("image_url"), 3000, f"{path}/image_url")
    alt = obj.get("alt_text")
    if not isinstance(alt, str) or not alt:
        errors.append(_pointer("must be more than 0 characters", f"{path}/alt_text"))
    return errors + _check_len(alt, 2000, f"{path}/alt_text")


def _check_section(block: JsonDict, path: str) -> list[str]:
    text, fields = block.get("text"), block.get("fields")
    errors = []
    if text is None and not fields:
        errors.append(_pointer("must provide text or fields", path))
    if text is not None:
        errors += _check_text(text, f"{path}/text", 3000)
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            errors.append(_pointer("must provide at most 10 items", f"{path}/fields"))
        else:
            for i, item in enumerate(fields):
                errors += _check_text(item, f"{path}/fields/{i}", 2000)
    if "accessory" in block:
        errors += _check_element(block["accessory"], f"{path}/accessory")
    return errors


def _check_header(block: JsonDict, path: str) -> list[str]:
    return _check_text(block.get("text"), f"{path}/text", 150, plain_only=True)


def _check_context(block: JsonDict, path: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
        return [_pointer("must provide between 1 and 10 items", f"{path}/elements")]
    errors: list[str] = []
    for i, el in enumerate(elements):
        sub = f"{path}/elements/{i}"
        is_image = isinstance(el, dict) and el.get("type") == "image"
        errors += _check_image(el, sub) if is_image else _check_text(el, sub, 3000)
    return errors


def _check_actions(block: JsonDict, path: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        return [_pointer("must provide between 1 and 25 items", f"{path}/elements")]
    errors: list[str] = []
    seen: set[str] = set()
    for i, el in enumerate(elements):
        errors += _check_element(el, f"{path}/elements/{i}")
        action_id = el.get("action_id") if isinstance(el, dict) else None
        if action_id and action_id in seen:
            errors.append(_pointer("action_id must be unique", f"{path}/elements/{i}/action_id"))
        seen.add(action_id or "")
    return errors


def _check_markdown(block: JsonDict, path: str) -> list[str]:
    text = block.get("text")
    if not isinstance(text, str) or not text:
        return [_pointer("must be more than 0 characters", f"{path}/text")]
    return _check_len(text, 12_000, f"{path}/text")


def _no_checks(block: JsonDict, path: str) -> list[str]:
    return []


_BLOCK_CHECKS: dict[str, Callable[[JsonDict, str], list[str]]] = {
    "section": _check_section,
    "header": _check_header,
    "divider": _no_checks,
    "context": _check_context,
    "actions": _check_actions,
    "image": _check_image,
    "markdown": _check_markdown,
    # Accepted without deep checks: rarely used by this bot.
    "rich_text": _no_checks,
    "input": _no_checks,
    "file": _no_checks,
    "video": _no_checks,
}


def validate_blocks(blocks: Any) -> list[str]:
    """Slack-style error strings for a message's `blocks` (empty list means valid)."""
    if not isinstance(blocks, list):
        return [_pointer("must provide an array", "/blocks")]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(_pointer(f"no more than {MAX_BLOCKS} items allowed", "/blocks"))
    block_ids: set[object] = set()  # as sent: any JSON value, None included
    for i, block in enumerate(blocks):
        path = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(_pointer("must provide an object with a type", path))
            continue
        block_id = block.get("block_id")
        errors += _check_len(block_id, 255, f"{path}/block_id")
        if block_id is not None and block_id in block_ids:
            errors.append(_pointer("block_id must be unique", f"{path}/block_id"))
        block_ids.add(block_id)
        check = _BLOCK_CHECKS.get(block["type"])
        if check is None:
            errors.append(_pointer(f"unsupported type: {block['type']}", f"{path}/type"))
        else:
            errors += check(block, path)
    return errors


def interactive_elements(blocks: Iterable[JsonDict]) -> Iterator[tuple[JsonDict, JsonDict]]:
    """(block, element) pairs a person can click: actions elements and section accessories."""
    for block in blocks:
        if block.get("type") == "actions":
            for el in block.get("elements", []):
                yield block, el
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]


def normalize_blocks(blocks: list[JsonDict], seed: str) -> list[JsonDict]:
    """Copy blocks and fill in the ids Slack generates (block_id, action_id) when missing."""
    out = copy.deepcopy(blocks)
    for i, block in enumerate(out):
        block.setdefault("block_id", hashlib.sha1(f"{seed}/{i}".encode()).hexdigest()[:5])
    for block, el in interactive_elements(out):
        el.setdefault(
            "action_id", hashlib.sha1(f"{seed}/{block['block_id']}/{el}".encode()).hexdigest()[:6]
        )
    return out


MENTION = re.compile(r"<([@#!][^>|]*)(?:\|[^>]*)?>")
BARE_BROADCAST = re.compile(r"(?<![\w<])@(here|channel|everyone)\b")


def mrkdwn_strings(blocks: Iterable[JsonDict]) -> Iterator[str]:
    """Texts in blocks that Slack parses as mrkdwn (where <!channel> etc. are live)."""

    def mrkdwn(obj: Any) -> Iterator[str]:
        if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
            yield str(obj.get("text", ""))

    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            yield from mrkdwn(block.get("text"))
            for item in block.get("fields") or []:
                yield from mrkdwn(item)
        elif kind == "context":
            for el in block.get("elements") or []:
                yield from mrkdwn(el)
        elif kind == "markdown":
            yield str(block.get("text", ""))
