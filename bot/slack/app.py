"""The Bolt app: created once per process, listeners registered by surface."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.deps import Deps
from bot.slack.listeners import register

log = logging.getLogger(__name__)


def create_app(client: WebClient, deps: Deps, *, signing_secret: str | None) -> App:
    """`signing_secret=None` means Socket Mode: requests arrive over the socket, unsigned.

    `process_before_response=True` makes the HTTP answer go out as soon as the listener returns;
    listeners only parse and ack (work runs on `deps.executor`), so this costs nothing and
    avoids Bolt's 10 ms ack polling and its lost-ack race (slack-platform.md section 4.1).
    Bolt calls auth.test once here and caches the result, so requests make no Slack call.
    """
    app = App(
        client=client,
        signing_secret=signing_secret or "socket-mode-unused",
        request_verification_enabled=signing_secret is not None,
        process_before_response=True,
        logger=logging.getLogger("slack_bolt.App"),
    )
    register(app, deps)
    return app
