"""This process, as the holder of the acts it carries out (a claimed deletion, a Start)."""

from __future__ import annotations

from typing import Protocol


class Instance(Protocol):
    """`bot.store.coordination.Coordinator` in the bot; anything with the same two members in
    a test. Liveness is the database's word (an advisory lock), never a pid or a hostname."""

    instance_id: str

    def is_alive(self, instance_id: str | None) -> bool:
        """Whether the process with that id still runs."""
