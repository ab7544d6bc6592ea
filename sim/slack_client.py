"""The "Slack side" of inbound requests: signed slash commands, block_actions and Events API
requests (`app_home_opened`) to the bot.

Slack's servers POST form bodies to the bot's request URL (``/slack/events``), signed with the
app's signing secret (reference section 3). SlackRequests does the same against a real HTTP
bot, taking response_urls, the clicked message and its buttons from a FakeSlack, and shows the
bot's answer in the fake the way Slack would (a slash-command ack becomes a reply).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from sim.slack import FakeSlack, Interaction, JsonDict
from sim.slack.modals import OpenModal

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"


class SlackSigner:
    """Builds X-Slack-Signature / X-Slack-Request-Timestamp headers (v0 HMAC-SHA256)."""

    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self.signing_secret = signing_secret
        self.clock = clock

    def signature(self, body: bytes | str, timestamp: int) -> str:
        raw = body.encode() if isinstance(body, str) else body
        base = b"v0:" + str(timestamp).encode() + b":" + raw
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return f"v0={digest}"

    def sign(self, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
        """Signing headers for `body` (the exact bytes sent); `timestamp` defaults to now."""
        ts = int(self.clock()) if timestamp is None else int(timestamp)
        return {
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": self.signature(body, ts),
        }


class SlackRequests:
    """Sends what Slack sends when a person uses the bot: commands and clicks."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        fake: FakeSlack,
        *,
        team_id: str = "T0001",
        command: str = "/connect",
        http: httpx.Client | None = None,
    ) -> None:
        self.bot_url = bot_url  # the full request URL, e.g. http://127.0.0.1:3000/slack/events
        self.fake = fake
        self.team_id = team_id
        self.command_name = command
        self.signer = SlackSigner(signing_secret)
        # trust_env=False: proxy variables must not reroute loopback traffic.
        self._http = http or httpx.Client(trust_env=False)
        self.last_response_url: str | None = None
        self.last_payload: JsonDict | None = None
        self.last_interaction: Interaction | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackRequests:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(
        self,
        text: str,
        *,
        user_id: str = "U0ADMIN",
        channel_id: str = "C0OPS",
        timeout: float = 10,
        command: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Run `/connect <text>` as `user_id` in `channel_id`; returns the bot's HTTP answer.

        The ack body (or Slack's operation_timeout/dispatch_failed notice) is shown in the fake
        as an ephemeral/in_channel reply bound to the command's response_url.
        """
        fields = self.fake.command_payload(
            text, user_id=user_id, channel_id=channel_id, command=command or self.command_name
        )
        fields["team_id"] = self.team_id
        self.last_response_url = fields["response_url"]
        self.last_payload = dict(fields)
        interaction = self.fake.record_interaction("command", fields, transport="http")
        try:
            response = self._send(urlencode(fields), interaction, timeout, timestamp)
        except httpx.TimeoutException:
            # Slack gives up after 3 s; the person sees an operation_timeout notice.
            self.fake.deliver_ack(fields["response_url"], elapsed=float("inf"))
            raise
        self.fake.deliver_ack(
            fields["response_url"],
            status=response.status_code,
            body=response.content,
            content_type=response.headers.get("content-type", ""),
            elapsed=interaction.elapsed or 0.0,
        )
        return response

    def click(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        value: str | None = None,
        user_id: str = "U0ADMIN",
        timeout: float = 10,
        block_id: str | None = None,
        selected_options: Iterable[str | JsonDict] | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Click element `action_id` (matching `value`/`block_id` if given) on the stored
        message or ephemeral message `message_ts`; LookupError if it is not there."""
        payload = self.fake.action_payload(
            channel,
            message_ts,
            action_id,
            value=value,
            user_id=user_id,
            block_id=block_id,
            selected_options=selected_options,
        )
        return self.send_action(payload, timeout=timeout, timestamp=timestamp)

    def send_action(
        self, payload: JsonDict, *, timeout: float = 10, timestamp: int | None = None
    ) -> httpx.Response:
        """POST any interactivity payload (form field `payload=<json>`), signed."""
        payload = {**payload, "team": {**payload.get("team", {}), "id": self.team_id}}
        self.last_response_url = payload.get("response_url")
        self.last_payload = payload
        interaction = self.fake.record_interaction("click", payload, transport="http")
        body = urlencode({"payload": json.dumps(payload)})
        return self._send(body, interaction, timeout, timestamp)

    def event(
        self, payload: JsonDict, *, timeout: float = 10, timestamp: int | None = None
    ) -> httpx.Response:
        """POST an Events API request (a JSON `event_callback` body), signed as Slack does."""
        body = json.dumps(payload)
        headers = {"Content-Type": JSON_CONTENT_TYPE, **self.signer.sign(body, timestamp)}
        return self._http.post(
            self.bot_url, content=body.encode(), headers=headers, timeout=timeout
        )

    def app_home_opened(
        self, user_id: str = "U0ADMIN", *, tab: str = "home", timeout: float = 10
    ) -> httpx.Response:
        """`user_id` opens the App Home: the signed `app_home_opened` event (with the view
        Slack shows them now, and its hash, once one was published)."""
        payload = self.fake.views.home_opened_event(user_id, tab=tab, team_id=self.team_id)
        return self.event(payload, timeout=timeout)

    def home_click(
        self, user_id: str, action_id: str, *, value: str | None = None, timeout: float = 10
    ) -> httpx.Response:
        """Click a button on `user_id`'s Home as it is now (block_actions from a view: no
        channel, no response_url), signed."""
        payload = self.fake.views.home_click_payload(user_id, action_id, value=value)
        payload["team"] = {**payload.get("team", {}), "id": self.team_id}
        self.last_response_url, self.last_payload = None, payload
        interaction = self.fake.views.record_click(payload, transport="http")
        body = urlencode({"payload": json.dumps(payload)})
        return self._send(body, interaction, timeout, None)

    def submit_view(
        self,
        modal: OpenModal,
        values: dict[str, dict[str, Any]],
        *,
        user_id: str = "U0ADMIN",
        timeout: float = 10,
    ) -> httpx.Response:
        """Submit an open modal with `values[block_id][action_id]` (view_submission), signed;
        the bot's answer is the HTTP response (empty: closed; `response_action`: errors...)."""
        payload = self.fake.modals.submission_payload(modal, user_id, values)
        payload["team"] = {**payload.get("team", {}), "id": self.team_id}
        self.last_response_url, self.last_payload = None, payload
        interaction = Interaction(
            "submit",
            self.fake._clock.next(),
            "",
            user_id,
            "[ Submit ] (modal)",
            "http",
            payload,
            "",
        )
        with self.fake._lock:
            self.fake.interactions.append(interaction)
        body = urlencode({"payload": json.dumps(payload)})
        return self._send(body, interaction, timeout, None)

    def raw(
        self, body: bytes | str, headers: Mapping[str, str], *, timeout: float = 10
    ) -> httpx.Response:
        """POST `body` with exactly `headers` (forged or stale signatures)."""
        content = body.encode() if isinstance(body, str) else body
        return self._http.post(
            self.bot_url, content=content, headers=dict(headers), timeout=timeout
        )

    def signed_headers(self, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
        return {"Content-Type": FORM_CONTENT_TYPE, **self.signer.sign(body, timestamp)}

    def _send(
        self, body: str, interaction: Interaction, timeout: float, timestamp: int | None
    ) -> httpx.Response:
        self.last_interaction = interaction
        headers = self.signed_headers(body, timestamp)
        started = time.monotonic()
        try:
            response = self._http.post(
                self.bot_url, content=body.encode(), headers=headers, timeout=timeout
            )
        finally:
            interaction.elapsed = time.monotonic() - started
        interaction.status = response.status_code
        return response
