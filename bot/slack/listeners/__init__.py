"""Bolt listeners grouped by surface; each module has one `register(app, deps)`."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.deps import Deps
from bot.slack.listeners import actions, commands, events, views


def register(app: App, deps: Deps) -> None:
    commands.register(app, deps)
    actions.register(app, deps)
    events.register(app, deps)
    views.register(app, deps)
