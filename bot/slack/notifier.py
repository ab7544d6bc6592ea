"""How the services tell people things, in Slack: card updates and the audit channel.

The services call these after the ack (scheduler jobs, clicks that run long); a Slack failure
is logged and never undoes what the service did.
"""

from __future__ import annotations

import logging

from bot.services.audit import AuditRecord
from bot.services.caches import DeletionState
from bot.services.rebuilds import PlanCard
from bot.services.schedules import Notice
from bot.slack.poster import SlackPoster, SlackUnavailable
from bot.slack.views import Message, audit_notice_view, deletion_card_view, plan_card_view
from bot.slack.views.schedules import schedule_notice_view

log = logging.getLogger(__name__)


class SlackNotifier:
    def __init__(
        self,
        poster: SlackPoster,
        *,
        audit_channel: str | None = None,
        several_servers: bool = False,
    ) -> None:
        self.poster = poster
        self.audit_channel = audit_channel
        self.several_servers = several_servers

    def _label(self, server: str | None) -> str | None:
        return server if self.several_servers else None

    def deletion_changed(self, state: DeletionState) -> None:
        view = deletion_card_view(state, server=self._label(state.server))
        self._update(state.channel, state.message_ts, view, "deletion card")

    def plan_changed(self, card: PlanCard) -> None:
        view = plan_card_view(card, server=self._label(card.server))
        self._update(card.channel, card.message_ts, view, "rebuild plan card")

    def schedule_told(self, notice: Notice) -> None:
        """A scheduled rebuild's news, in its thread (the plan card's)."""
        item = notice.item
        if not item.thread_ts:
            return
        try:
            self.poster.post(item.channel, schedule_notice_view(notice), thread_ts=item.thread_ts)
        except SlackUnavailable as exc:
            log.warning("could not post in rebuild %s's thread: %s", item.rebuild_id, exc.error)

    def audit_recorded(self, record: AuditRecord) -> None:
        if not self.audit_channel:
            return
        try:
            self.poster.post(
                self.audit_channel, audit_notice_view(record, several_servers=self.several_servers)
            )
        except SlackUnavailable as exc:
            log.warning("could not post to the audit channel %s: %s", self.audit_channel, exc.error)

    def _update(self, channel: str, ts: str | None, view: Message, what: str) -> None:
        if not ts:
            return
        try:
            self.poster.update(channel, ts, view)
        except SlackUnavailable as exc:
            log.warning("could not update the %s: %s", what, exc.error)
