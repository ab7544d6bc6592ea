"""Modals in the fake Slack: `views.open` as Slack checks it, the modals people have open, and
the `view_submission` payload Slack sends when one is submitted.

views.open (reference slack-platform-2.md section 7.1): `trigger_id` (one use, expires after
3 s: `expired_trigger_id`, `exchanged_trigger_id`, `invalid_trigger_id`) and `view` (JSON,
`type` `modal`, a plain_text `title` of at most 24 characters, 1-100 blocks; `input` blocks
need a `submit`). view_submission (7.2): values at `view.state.values[block_id][action_id]`;
a `datetimepicker` answers `selected_date_time` (int UNIX seconds, 7.3).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.slack.blocks import validate_blocks
from sim.slack.common import TEAM_DOMAIN, VERIFICATION_TOKEN, ApiError, JsonDict

if TYPE_CHECKING:
    from sim.slack.server import FakeSlack

TRIGGER_SECONDS = 3.0
MAX_TITLE = 24
_PICKED_KEY = {
    "datetimepicker": "selected_date_time",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "plain_text_input": "value",
}


@dataclass
class OpenModal:
    id: str
    trigger_id: str
    view: JsonDict  # as sent by the app
    opened_at: float

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id") or "")

    def element(self, block_id: str) -> JsonDict:
        for block in self.view.get("blocks") or []:
            if block.get("type") == "input" and block.get("block_id") == block_id:
                return dict(block["element"])
        raise LookupError(f"no input block {block_id!r} in modal {self.id}")


def _invalid(*messages: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": list(messages)})


def check_modal(view: Any) -> None:
    if not isinstance(view, dict):
        raise _invalid("[ERROR] must provide an object [json-pointer:/view]")
    errors: list[str] = []
    if view.get("type") != "modal":
        errors.append("[ERROR] must be modal [json-pointer:/view/type]")
    title = view.get("title")
    if not isinstance(title, dict) or title.get("type") != "plain_text":
        errors.append("[ERROR] must provide a plain_text title [json-pointer:/view/title]")
    elif not 0 < len(str(title.get("text") or "")) <= MAX_TITLE:
        errors.append(
            f"[ERROR] must be less than {MAX_TITLE + 1} characters [json-pointer:/view/title/text]"
        )
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 100:
        errors.append("[ERROR] must provide between 1 and 100 items [json-pointer:/view/blocks]")
    else:
        errors += ["[ERROR] " + e for e in validate_blocks(blocks) if "no more than" not in e]
        inputs = [b for b in blocks if isinstance(b, dict) and b.get("type") == "input"]
        if inputs and not view.get("submit"):
            errors.append("[ERROR] must define submit to use input block")
        for block in inputs:
            element = block.get("element")
            if not isinstance(element, dict) or element.get("type") not in _PICKED_KEY:
                errors.append("[ERROR] unsupported input element [json-pointer:/view/blocks]")
            elif element.get("type") == "datetimepicker":
                initial = element.get("initial_date_time")
                if initial is not None and not (isinstance(initial, int) and initial > 0):
                    errors.append(
                        "[ERROR] initial_date_time must be UNIX seconds [json-pointer:/view/blocks]"
                    )
    metadata = view.get("private_metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > 3000):
        errors.append(
            "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"
        )
    if errors:
        raise _invalid(*errors)


class ModalsApi:
    """views.open for a FakeSlack, the modals opened, and their view_submission payloads."""

    def __init__(self, fake: FakeSlack) -> None:
        self._fake = fake
        self._opened: list[OpenModal] = []
        self._used: set[str] = set()
        fake.register_method("views.open", self._views_open)

    def _views_open(self, params: JsonDict) -> JsonDict:
        trigger = str(params.get("trigger_id") or "")
        parts = trigger.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            raise ApiError("invalid_trigger_id")
        if trigger in self._used:
            raise ApiError("exchanged_trigger_id")
        if time.time() - int(parts[1]) > TRIGGER_SECONDS + 1:  # whole seconds in the id
            raise ApiError("expired_trigger_id")
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise _invalid("[ERROR] invalid JSON [json-pointer:/view]") from None
        check_modal(view)
        assert isinstance(view, dict)
        with self._fake._lock:
            self._used.add(trigger)
            modal = OpenModal(f"VM{len(self._opened) + 1:07d}", trigger, view, time.time())
            self._opened.append(modal)
        return {"ok": True, "view": {"id": modal.id, "type": "modal", **copy.deepcopy(view)}}

    # ---- what tests ask and do ------------------------------------------------------------

    def opened(self) -> list[OpenModal]:
        with self._fake._lock:
            return list(self._opened)

    def wait_modal(self, count: int = 1, timeout: float = 5.0) -> OpenModal:
        if not self._fake.wait_for(lambda _: len(self.opened()) >= count, timeout):
            raise TimeoutError(f"no modal #{count} was opened within {timeout}s")
        return self.opened()[count - 1]

    def submission_payload(
        self, modal: OpenModal, user: str, values: dict[str, dict[str, Any]]
    ) -> JsonDict:
        """view_submission for `modal` with `values[block_id][action_id]` = the value picked
        (UNIX seconds for a datetimepicker)."""
        fake = self._fake
        state: JsonDict = {}
        for block_id, actions in values.items():
            for action_id, value in actions.items():
                kind = modal.element(block_id).get("type", "plain_text_input")
                entry: JsonDict = {"type": kind, _PICKED_KEY.get(kind, "value"): value}
                state.setdefault(block_id, {})[action_id] = entry
        name = fake.user_name(user)
        view = {
            "id": modal.id,
            "team_id": fake.team_id,
            "type": "modal",
            "callback_id": modal.callback_id,
            "private_metadata": str(modal.view.get("private_metadata") or ""),
            "blocks": copy.deepcopy(modal.view.get("blocks") or []),
            "state": {"values": state},
            "hash": f"{int(time.time())}.{modal.id}",
            "root_view_id": modal.id,
            "previous_view_id": None,
            "app_id": fake.app_id,
            "bot_id": fake.bot_id,
        }
        return {
            "type": "view_submission",
            "team": {"id": fake.team_id, "domain": TEAM_DOMAIN},
            "user": {"id": user, "username": name, "name": name, "team_id": fake.team_id},
            "api_app_id": fake.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": fake._trigger_id(),
            "view": view,
            "response_urls": [],
        }
