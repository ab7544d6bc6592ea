"""What people do that Slack sends to the bot: slash-command and block_actions payloads for
elements really on a stored message, menu state, and the log of interactions."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterable

from sim.slack.blocks import MULTI_OPTION_ELEMENTS, SINGLE_OPTION_ELEMENTS, VALUE_ELEMENTS
from sim.slack.common import TEAM_DOMAIN, VERIFICATION_TOKEN, JsonDict
from sim.slack.model import Ephemeral, Interaction, Message
from sim.slack.response_urls import ResponseUrlsMixin


def _pick_options(element: JsonDict, wanted: Iterable[str | JsonDict] | None) -> list[JsonDict]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options", [])
    picked = []
    for item in wanted or []:
        value = item.get("value") if isinstance(item, dict) else item
        match = next((o for o in options if o.get("value") == value), None)
        if match is None:
            raise LookupError(f"option {value!r} not in {[o.get('value') for o in options]}")
        picked.append(copy.deepcopy(match))
    return picked


def _action_for(
    block: JsonDict, el: JsonDict, selected: Iterable[str | JsonDict] | None, action_ts: str
) -> JsonDict:
    """The `actions[0]` entry Slack sends for interacting with `el`."""
    kind = el["type"]
    action: JsonDict = {
        "action_id": el["action_id"],
        "block_id": block["block_id"],
        "type": kind,
        "action_ts": action_ts,
    }
    if kind == "button":
        action["text"] = copy.deepcopy(el["text"])
        for key in ("value", "style", "url"):
            if key in el:
                action[key] = el[key]
    elif kind in SINGLE_OPTION_ELEMENTS:
        picked = _pick_options(el, selected)
        if len(picked) != 1:
            raise LookupError(f"{kind} needs exactly one selected option")
        action["selected_option"] = picked[0]
    elif kind in MULTI_OPTION_ELEMENTS:
        action["selected_options"] = _pick_options(el, selected)
    elif kind in VALUE_ELEMENTS:
        values = list(selected or [])
        if len(values) != 1:
            raise LookupError(f"{kind} needs exactly one selected value")
        action[VALUE_ELEMENTS[kind]] = values[0]
    else:
        raise LookupError(f"clicking a {kind} element is not supported")
    if "placeholder" in el:
        action["placeholder"] = copy.deepcopy(el["placeholder"])
    return action


def _action_label(action: JsonDict) -> str:
    if action.get("type") == "button":
        return f"[ {action['text']['text']} ]"
    option = action.get("selected_option")
    if option:
        return f"[ {option['text']['text']} ]"
    return f"[ {action.get('action_id')} ]"


class InteractionsMixin(ResponseUrlsMixin):
    """Payloads FakeSlack sends to the bot, and the record of them."""

    def _init_interactions(self) -> None:
        self._selections: dict[tuple[str, str, str], JsonDict] = {}

    def command_payload(
        self,
        text: str,
        *,
        user_id: str = "U0ADMIN",
        channel_id: str = "C0OPS",
        command: str = "/connect",
    ) -> dict[str, str]:
        """Slash-command fields (reference 1.1) with a fresh response_url."""
        label = f"{command} {text}".strip()
        response_url = self.new_response_url(channel=channel_id, user=user_id, label=label)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": self.channel_name(channel_id),
            "user_id": user_id,
            "user_name": self.user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self._trigger_id(),
        }

    def action_payload(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        value: str | None = None,
        user_id: str = "U0ADMIN",
        block_id: str | None = None,
        selected_options: Iterable[str | JsonDict] | None = None,
    ) -> JsonDict:
        """A block_actions payload (reference 2.1) for clicking an element that is really on
        the stored message (or ephemeral message) `message_ts`."""
        target, is_ephemeral = self._click_target(channel, message_ts, user_id)
        block, element = target.find_element(action_id, value=value, block_id=block_id)
        action = _action_for(block, element, selected_options, self._clock.next())
        state = self._remember_selection(channel, message_ts, user_id, action)
        response_url = self.new_response_url(
            channel=channel, user=user_id, message_ts=message_ts, ephemeral=is_ephemeral
        )
        name = self.user_name(user_id)
        container: JsonDict = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        }
        payload: JsonDict = {
            "type": "block_actions",
            "user": {"id": user_id, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channel_name(channel)},
            "state": {"values": state},
            "response_url": response_url,
            "actions": [action],
        }
        if isinstance(target, Message):  # ephemeral clicks carry no "message" (reference 2.1)
            payload["message"] = target.to_api(self.team_id)
            if target.thread_ts:
                container["thread_ts"] = target.thread_ts
        return payload

    def _remember_selection(
        self, channel: str, message_ts: str, user_id: str, action: JsonDict
    ) -> JsonDict:
        """Slack sends the current choices of a message's menus (`state.values`) with every
        click on that message, per user; a menu change itself is also an interaction."""
        with self._lock:
            values = self._selections.setdefault((channel, message_ts, user_id), {})
            if "selected_options" in action or "selected_option" in action:
                entry = {k: v for k, v in action.items() if k not in ("action_id", "block_id")}
                entry.pop("action_ts", None)
                values.setdefault(action["block_id"], {})[action["action_id"]] = entry
            return copy.deepcopy(values)

    def record_interaction(
        self, kind: str, payload: JsonDict, *, transport: str, label: str | None = None
    ) -> Interaction:
        """Log a command/click (shown by the renderer); senders fill status/elapsed later."""
        if kind == "command":
            channel, user = payload["channel_id"], payload["user_id"]
            label = label or f"{payload['command']} {payload['text']}".strip()
        else:
            channel, user = payload["channel"]["id"], payload["user"]["id"]
            label = label or _action_label(payload["actions"][0])
        item = Interaction(
            kind,
            self._clock.next(),
            channel,
            user,
            label,
            transport,
            payload,
            payload["response_url"],
        )
        with self._lock:
            self.interactions.append(item)
        return item

    def _click_target(self, channel: str, ts: str, user: str) -> tuple[Message | Ephemeral, bool]:
        with self._lock:
            msg = self._by_ts.get((channel, ts))
            if msg is not None and not msg.deleted:
                return msg, False
            eph = self._find_ephemeral(channel, ts)
        if eph is None:
            raise LookupError(f"no message or ephemeral message {ts} in {channel}")
        if eph.user != user:
            raise LookupError(f"ephemeral message {ts} is only visible to {eph.user}, not {user}")
        return eph, True

    def _trigger_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"{self._counter}.{int(time.time())}.{uuid.uuid4().hex[:32]}"
