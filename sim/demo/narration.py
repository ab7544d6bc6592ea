"""The demo's narration: steps, the channel as a person sees it, set off by a gutter."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TextIO

from sim.slack import FakeSlack
from sim.slack_render import render_channel, render_interaction
from sim.stack import OPS_CHANNEL, Stack

GUTTER = "  │ "
WIDTH = 96  # transcript width after the gutter
LINE = len(GUTTER) + WIDTH


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
        self.say(head + "─" * max(4, LINE - len(head)))

    def narrate(self, text: str) -> None:
        self.say(textwrap.fill(text, width=LINE))

    def gutter(self, lines: list[str]) -> None:
        """Slack content, set off by a gutter and wrapped for a terminal."""
        for line in lines:
            for part in wrap_line(line):
                self.say((GUTTER + part).rstrip())

    def show(self, *, viewer: str | None = None) -> None:
        """What is new in #connect-ops since the last `show`, as `viewer` sees it."""
        transcript = render_channel(
            self.slack,
            OPS_CHANNEL,
            since=self.since or None,
            viewer=viewer,
            show_interactions=False,  # printed by `command`/`click`, before the answer
        )
        self.since = self.slack.mark()
        self.gutter(["", *transcript.splitlines()])
        self.say()

    def acted(self, detail: str = "") -> None:
        """The command or click just sent, as ``» ada clicked [ Confirm ]``."""
        interaction = self.stack.requests.last_interaction
        if interaction is not None:
            self.say()
            line = render_interaction(interaction, self.slack.display_names())
            self.gutter([f"{line}{detail}"])


def wrap_line(line: str, width: int = WIDTH) -> list[str]:
    """Long transcript lines wrapped as Slack would, keeping their indent (bullets hang)."""
    if len(line) <= width:
        return [line]
    body = line.lstrip()
    indent = line[: len(line) - len(body)]
    hang = indent + ("  " if body.startswith(("• ", "> ")) else "")
    return textwrap.wrap(
        line, width, subsequent_indent=hang, break_long_words=False, break_on_hyphens=False
    ) or [line]
