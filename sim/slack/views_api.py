"""App Home in the fake Slack: `views.publish` as Slack checks and stores it, the Home each
person sees, and what Slack sends the bot about Home: the `app_home_opened` event (an Events
API `event_callback`) and `block_actions` for a click on a Home view.

views.publish (reference slack-platform-2.md section 3): `user_id`, `view` (JSON; `type` must
be `home`, 1-100 blocks checked like message blocks, `private_metadata` <= 3000 characters,
`callback_id` <= 255, no `submit`/`close`), optional `hash`, which must match the hash of the
view the person has now (`hash_conflict` otherwise). The answer is the stored view with a new
`hash`. Errors: `invalid_arguments` (with `response_metadata.messages`), `not_enabled` (Home
tab off: `home_tab_enabled = False`), `view_too_large` (> 250 kB), `hash_conflict`.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.slack.blocks import (
    MAX_BLOCKS,
    TEXT_TYPES,
    interactive_elements,
    normalize_blocks,
    validate_blocks,
)
from sim.slack.common import TEAM_DOMAIN, VERIFICATION_TOKEN, ApiError, JsonDict
from sim.slack.interactions import _action_for
from sim.slack.model import Interaction

if TYPE_CHECKING:
    from sim.slack.server import FakeSlack

MAX_VIEW_BLOCKS = 100
MAX_VIEW_BYTES = 250_000
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
_MESSAGE_LIMIT = f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"


@dataclass
class PublishedView:
    """The Home view one person sees (the latest views.publish for them)."""

    user: str
    id: str
    hash: str
    view: JsonDict  # as Slack answers it: blocks with their ids, state, hash, ...
    publishes: int = 1
    versions: list[JsonDict] = field(default_factory=list)  # earlier views, oldest first
    published_at: float = field(default_factory=time.time)

    @property
    def blocks(self) -> list[JsonDict]:
        return list(self.view.get("blocks") or [])

    def elements(self) -> list[tuple[JsonDict, JsonDict]]:
        return list(interactive_elements(self.blocks))

    def button_labels(self) -> list[str]:
        return [el["text"]["text"] for _, el in self.elements() if el.get("type") == "button"]

    def find_element(
        self, action_id: str, *, value: str | None = None
    ) -> tuple[JsonDict, JsonDict]:
        for block, el in self.elements():
            if el.get("action_id") == action_id and (value is None or el.get("value") == value):
                return block, el
        found = [(el.get("action_id"), el.get("value")) for _, el in self.elements()]
        raise LookupError(
            f"no element action_id={action_id!r} value={value!r} on {self.user}'s Home: {found}"
        )

    def all_text(self) -> str:
        """Every text object in the view, newline-joined."""
        parts: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in TEXT_TYPES and isinstance(node.get("text"), str):
                    parts.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.blocks)
        return "\n".join(p for p in parts if p)


def _invalid(*messages: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": list(messages)})


def check_view(view: Any) -> None:
    """Raise what Slack answers for a Home view it would refuse."""
    if not isinstance(view, dict):
        raise _invalid("[ERROR] must provide an object [json-pointer:/view]")
    errors: list[str] = []
    if view.get("type") != "home":
        errors.append("[ERROR] must be home [json-pointer:/view/type]")
    for key in ("submit", "close"):
        if key in view and view[key] is not None:
            errors.append(f"[ERROR] not allowed in a home view [json-pointer:/view/{key}]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        errors.append("[ERROR] must provide an array [json-pointer:/view/blocks]")
    else:
        if not 1 <= len(blocks) <= MAX_VIEW_BLOCKS:
            errors.append(
                f"[ERROR] must provide between 1 and {MAX_VIEW_BLOCKS} items"
                " [json-pointer:/view/blocks]"
            )
        errors += [
            "[ERROR] " + e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
            for e in validate_blocks(blocks)
            if e != _MESSAGE_LIMIT  # a message has 50; a view 100, checked above
        ]
    metadata = view.get("private_metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > 3000):
        errors.append(
            f"[ERROR] must be less than {MAX_PRIVATE_METADATA + 1} characters"
            " [json-pointer:/view/private_metadata]"
        )
    callback_id = view.get("callback_id")
    if callback_id is not None and (
        not isinstance(callback_id, str) or len(callback_id) > MAX_CALLBACK_ID
    ):
        errors.append(
            f"[ERROR] must be less than {MAX_CALLBACK_ID + 1} characters"
            " [json-pointer:/view/callback_id]"
        )
    if errors:
        raise _invalid(*errors)
    if len(json.dumps(view)) > MAX_VIEW_BYTES:
        raise ApiError("view_too_large")


class ViewsApi:
    """views.publish for a FakeSlack, the Home views it keeps, and Home's payloads."""

    def __init__(self, fake: FakeSlack) -> None:
        self._fake = fake
        self.home_tab_enabled = True
        self._homes: dict[str, PublishedView] = {}
        self._ids = 0
        fake.register_method("views.publish", self._views_publish)

    # ---- the Web API method ---------------------------------------------------------------

    def _views_publish(self, params: JsonDict) -> JsonDict:
        fake = self._fake
        user = str(params.get("user_id") or "")
        if not user or user not in fake._users:
            raise _invalid("[ERROR] invalid `user_id`")
        view = params.get("view")
        if isinstance(view, str):  # a form body carries the view as JSON text
            try:
                view = json.loads(view)
            except ValueError:
                raise _invalid("[ERROR] invalid JSON [json-pointer:/view]") from None
        if not self.home_tab_enabled:
            raise ApiError("not_enabled")
        check_view(view)
        assert isinstance(view, dict)
        with fake._lock:
            current = self._homes.get(user)
            sent_hash = params.get("hash")
            if sent_hash and (current is None or sent_hash != current.hash):
                raise ApiError("hash_conflict")
            if current is None:
                self._ids += 1
                view_id = f"VH{self._ids:07d}"
            else:
                view_id = current.id
            new_hash = f"{int(time.time())}.{secrets.token_hex(4)}"
            stored = self._stored(view, view_id, new_hash)
            if current is None:
                self._homes[user] = PublishedView(user, view_id, new_hash, stored)
            else:
                current.versions.append(current.view)
                current.view, current.hash = stored, new_hash
                current.publishes += 1
                current.published_at = time.time()
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _stored(self, view: JsonDict, view_id: str, view_hash: str) -> JsonDict:
        fake = self._fake
        return {
            "id": view_id,
            "team_id": fake.team_id,
            "type": "home",
            "blocks": normalize_blocks(list(view.get("blocks") or []), view_hash),
            "private_metadata": str(view.get("private_metadata") or ""),
            "callback_id": str(view.get("callback_id") or ""),
            "state": {"values": {}},
            "hash": view_hash,
            "title": {"type": "plain_text", "text": "View Title", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": fake.app_id,
            "external_id": str(view.get("external_id") or ""),
            "app_installed_team_id": fake.team_id,
            "bot_id": fake.bot_id,
        }

    # ---- what tests ask -------------------------------------------------------------------

    def home(self, user: str) -> PublishedView | None:
        """The Home `user` sees now (None: nothing was ever published for them)."""
        with self._fake._lock:
            return self._homes.get(user)

    def homes(self) -> dict[str, PublishedView]:
        with self._fake._lock:
            return dict(self._homes)

    def publish_calls(self, user: str | None = None, *, ok: bool | None = None) -> list[Any]:
        """views.publish calls (ApiCall), for `user` if given; `ok` filters on the answer."""
        return [
            c
            for c in self._fake.calls_to("views.publish")
            if (user is None or c.params.get("user_id") == user) and (ok is None or c.ok == ok)
        ]

    def wait_home(self, user: str, predicate: Any = None, timeout: float = 5.0) -> PublishedView:
        """`user`'s Home once it exists and `predicate(view)` holds."""
        found: list[PublishedView] = []

        def check(_fake: Any) -> bool:
            view = self.home(user)
            if view is not None and (predicate is None or predicate(view)):
                found.append(view)
                return True
            return False

        if not self._fake.wait_for(check, timeout):
            current = self.home(user)
            shown = current.all_text()[:2000] if current else "nothing"
            raise TimeoutError(f"{user}'s Home did not match within {timeout}s; it shows {shown}")
        return found[0]

    # ---- what Slack sends the bot ---------------------------------------------------------

    def dm_channel(self, user: str) -> str:
        """The app's DM with `user` (the App Home's Messages tab): `D` + the user's id."""
        return "D" + user[1:] if len(user) > 1 else f"D{user}"

    def home_opened_event(
        self, user: str, *, tab: str = "home", team_id: str | None = None
    ) -> JsonDict:
        """The Events API body Slack sends when `user` opens the App Home (reference part 2,
        1.1 and 2): the current view (with its hash) is included once one was published."""
        fake = self._fake
        team = team_id or fake.team_id
        now = time.time()
        event: JsonDict = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.dm_channel(user),
            "tab": tab,
            "event_ts": f"{now:.6f}",
        }
        current = self.home(user)
        if current is not None:
            event["view"] = copy.deepcopy(current.view)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team,
            "context_team_id": team,
            "context_enterprise_id": None,
            "api_app_id": fake.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team,
                    "user_id": fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    def home_click_payload(
        self, user: str, action_id: str, *, value: str | None = None
    ) -> JsonDict:
        """block_actions for clicking `action_id` (with `value`) on `user`'s Home as it is
        now: `container.type` is `view`, the view comes along, and there is no channel, no
        message and no response_url (reference 2.1 for messages; Home has none of those)."""
        fake = self._fake
        current = self.home(user)
        if current is None:
            raise LookupError(f"{user} has no Home view to click on")
        block, element = current.find_element(action_id, value=value)
        action = _action_for(block, element, None, fake._clock.next())
        name = fake.user_name(user)
        return {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": fake.team_id},
            "api_app_id": fake.app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "view", "view_id": current.id},
            "trigger_id": fake._trigger_id(),
            "team": {"id": fake.team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": copy.deepcopy(current.view),
            "actions": [action],
        }

    def record_click(self, payload: JsonDict, *, transport: str) -> Interaction:
        """Log a Home click like other interactions (no channel, no response_url)."""
        fake = self._fake
        action = payload["actions"][0]
        label = f"[ {action.get('text', {}).get('text', action.get('action_id'))} ] (Home)"
        item = Interaction(
            "click", fake._clock.next(), "", payload["user"]["id"], label, transport, payload, ""
        )
        with fake._lock:
            fake.interactions.append(item)
        return item
