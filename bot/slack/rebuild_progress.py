"""Live progress of rebuilds in Slack, on one background thread per process.

Build workers never call Slack: they write the database and nudge this reporter, which reads the
state back and talks to Slack at its own pace. So a 429 (the WebClient sleeps `Retry-After` in
the calling thread) or a slow Slack only delays messages, never builds. Everything the thread
has been told is recorded in the database (`progress` flags, `notified` on failed items), so
after a restart nothing is lost or said twice.

With several processes, one reporter writes each rebuild's thread: the one in the process that
holds the rebuild's lease (`driver` is this instance). The engine tells it (`watch`) when it
takes a lease; a rebuild whose lease moved elsewhere is dropped at the next read. After the end
the lease is kept until the final summary is posted, and released with it (`report_final`);
if this process dies in between, another one takes the lease and posts the summary.

Said once across processes: the start reply, the final summary and each owner's DM. Before
one is posted it is claimed (`claim_post`: a conditional UPDATE fenced by the lease token, so
a process whose lease moved posts nothing), it is posted with Slack message `metadata`
(event_type `connect_bot_start` / `connect_bot_summary` / `connect_bot_owner_dm`, payload the
rebuild id) and its `ts` is stored. A holder that finds a claim without a `ts` (the post may
have reached Slack before a kill, or a timeout) looks for it first: in the thread
(conversations.replies) or the DM channel (conversations.history), with include_all_metadata.
These posts never sleep on a 429 in this thread (`without_rate_limit_retries`): the loop
waits Retry-After and asks again, so once `close()` returned (SIGTERM) nothing more leaves.

Slack calls per rebuild: chat.update of the parent at most every UPDATE_INTERVAL seconds and
only on change (the interval grows with the elapsed time, up to MAX_UPDATE_INTERVAL), a start
reply, a warm-up reply, one reply per batch of failures (at most one per failure), and the
final summary (reply_broadcast).

Owners (with `owners`, BOT_NOTIFY_OWNERS): when a rebuild ends with failures, each failed
item's Connect owner is looked up once (`bot.services.rebuilds.owners`: Connect user -> email
-> Slack `users.lookupByEmail`) and the answers are stored in the `owner_lookups` flag before the
summary, which names who gets a DM and who cannot be found (with why). Then one DM per owner
found, with only their items (`conversations.open` + `chat.postMessage`, one every
DM_SPACING seconds), before the lease is released. Each DM is recorded around its post
(`owner_dm_sending` before, `owners_notified` after), so a restart never repeats a DM recorded
as sent; only a crash between Slack's answer and that record can repeat one (logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.connect import ConnectClient
from bot.services.rebuilds import (
    DirectoryError,
    OwnerFound,
    OwnerLookups,
    Owners,
    OwnersOutcome,
    Progress,
    RebuildStore,
)
from bot.slack.background import BackgroundLoop
from bot.slack.poster import SlackPoster, SlackUnavailable
from bot.slack.views import (
    Message,
    dm_refused_reply,
    failures_reply,
    owner_dm,
    progress_view,
    start_reply,
    summary_reply,
    warmup_reply,
    with_owners,
)
from bot.store import utcnow

log = logging.getLogger(__name__)
slack_log = logging.getLogger("bot.slack")

TICK = 0.5
MIN_ROUND = 0.2
UPDATE_INTERVAL = 5.0
MAX_UPDATE_INTERVAL = 30.0
REPLY_SPACING = 1.0  # chat.postMessage: about one message per second per channel
FAILURES_PER_REPLY = 10
ERROR_BACKOFF = 10.0
GONE = frozenset({"message_not_found", "cant_update_message"})
DM_SPACING = 1.0  # conversations.open is Tier 3 (about 50 a minute)
# Message metadata of the messages said once (found again after a restart).
EVENT_TYPES = {
    "start": "connect_bot_start",
    "summary": "connect_bot_summary",
    "owner_dm": "connect_bot_owner_dm",
}
# Slack errors worth retrying a DM for; any other refusal is final (and said in the thread).
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackPeople:
    """Slack's side of the owner notices: the `Directory` of `bot.services.rebuilds.owners`
    (`users.lookupByEmail`, scope users:read.email) and DM channels (`conversations.open`,
    scope im:write). Emails are never logged."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def user_by_email(self, email: str) -> str | None:
        try:
            response = self._call(
                "users.lookupByEmail", self.client.users_lookupByEmail, email=email
            )
        except SlackUnavailable as exc:
            if exc.error == "users_not_found":
                return None
            raise DirectoryError(exc.error) from None
        user = response.get("user") or {}
        if not user.get("id") or user.get("deleted") or user.get("is_bot"):
            return None  # a deactivated account or a bot cannot be told
        return str(user["id"])

    def open_dm(self, user_id: str) -> str:
        """The id (D…) of the bot's direct-message channel with `user_id`."""
        response = self._call("conversations.open", self.client.conversations_open, users=user_id)
        return str(response["channel"]["id"])

    def _call(self, method: str, function: Callable[..., Any], **kwargs: Any) -> Any:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = function(**kwargs)
            status = response.status_code
            return response
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"HTTP {status}")
            raise SlackUnavailable(method, error, status) from None
        except Exception as exc:
            error = type(exc).__name__
            raise SlackUnavailable(method, error) from None
        finally:
            slack_log.info(
                "slack call",
                extra={
                    "event": "slack_call",
                    "method": method,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "error": error,
                    "channel": None,
                },
            )


def slack_owners(client_for: Callable[[str | None], ConnectClient], poster: SlackPoster) -> Owners:
    """The owner lookups of a reporter posting with `poster` (`client_for`: `Servers.client`)."""
    return Owners(client_for, SlackPeople(poster.client))


def _transient(exc: SlackUnavailable) -> bool:
    return exc.status is None or exc.status >= 500 or exc.error in TRANSIENT_SLACK_ERRORS


@dataclass
class _Seen:
    last_key: tuple[object, ...] = ()
    last_update: float = 0.0
    last_reply: float = 0.0
    quiet_until: float = 0.0
    last_dm: float | None = None  # monotonic time of this process's last owner DM


def update_interval(elapsed: float | None) -> float:
    """Every 5 s during the first minute, then slower for long rebuilds (capped at 30 s)."""
    return min(MAX_UPDATE_INTERVAL, max(UPDATE_INTERVAL, (elapsed or 0.0) / 12))


class RebuildReporter(BackgroundLoop):
    def __init__(
        self,
        service: RebuildStore,
        poster: SlackPoster,
        *,
        instance_id: str,
        clock: Callable[[], datetime] = utcnow,
        several_servers: bool = False,
        owners: Owners | None = None,
    ) -> None:
        super().__init__("rebuild-reporter")
        self.service = service
        self.poster = poster
        self._once = poster.without_rate_limit_retries()  # the posts said once (module doc)
        # The owners of failed items get a DM (BOT_NOTIFY_OWNERS); None: only the thread.
        self.owners = owners
        self.instance_id = instance_id  # reports only the rebuilds whose lease it holds
        self.clock = clock  # wall clock for elapsed / time left in the messages
        self.several_servers = several_servers  # then every message names its server
        self._watched: dict[int, _Seen] = {}
        self._lock = threading.Lock()

    def watch(self, rebuild_id: int) -> None:
        """Report this rebuild while this process holds its lease, until its final summary is
        posted (the engine's listener)."""
        with self._lock:
            self._watched.setdefault(rebuild_id, _Seen())
        self._wake.set()

    def watching(self) -> list[int]:
        with self._lock:
            return sorted(self._watched)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            # Workers nudge after every build; one round per MIN_ROUND keeps the queries few.
            if self._stop.wait(MIN_ROUND):
                return
            self._wake.clear()
            for rebuild_id in self.watching():
                if self._stop.is_set():
                    return
                try:
                    self._report(rebuild_id)
                except Exception:
                    log.exception("reporting rebuild %s failed", rebuild_id)

    def _report(self, rebuild_id: int) -> None:
        with self._lock:
            seen = self._watched.get(rebuild_id)
        now = time.monotonic()
        if seen is None or now < seen.quiet_until:
            return
        p = self.service.progress(rebuild_id)
        if p is None or p.instance_id != self.instance_id:
            self._drop(rebuild_id)  # gone, or another process holds the lease: it reports
            return
        if p.state == "planned":
            return
        try:
            self._tell(p, seen, now)
        except SlackUnavailable as exc:
            # Retried on a later tick, after Retry-After when Slack gave one.
            log.warning("rebuild %s: Slack %s failed: %s", rebuild_id, exc.method, exc.error)
            wait = ERROR_BACKOFF if exc.retry_after is None else exc.retry_after
            seen.quiet_until = time.monotonic() + wait

    def _tell(self, p: Progress, seen: _Seen, now: float) -> None:
        service = self.service
        if p.thread_ts is None:  # the plan card was never posted: start a parent message now
            ts = self.poster.post(
                p.channel, progress_view(p, now=self.clock(), server=self._server(p))
            )
            service.attach_message(p.rebuild_id, ts)
            p = replace(p, thread_ts=ts)
        assert p.thread_ts is not None
        if not p.flags.get("start_reported"):
            p = self._update(p, seen)
            start = self._post_once(p, "start", start_reply(p, service.summary(p.rebuild_id)))
            if start is None:
                return  # the lease moved: its new holder says it
            service.set_flags(p.rebuild_id, start_reported=True, start_ts=start)
            seen.last_reply = time.monotonic()
        if time.monotonic() - seen.last_reply >= REPLY_SPACING:
            failures = service.failures_to_report(p.rebuild_id, FAILURES_PER_REPLY)
            if failures:
                self.poster.post(
                    p.channel, failures_reply(p.rebuild_id, failures), thread_ts=p.thread_ts
                )
                service.mark_reported(item.id for item in failures)
                seen.last_reply = time.monotonic()
                self._wake.set()  # more may be waiting
                return
        if p.warmup_total and not p.warmup_open and not p.flags.get("warmup_reported"):
            self.poster.post(
                p.channel,
                warmup_reply(p, service.items(p.rebuild_id, wave=0), now=self.clock()),
                thread_ts=p.thread_ts,
            )
            service.set_flags(p.rebuild_id, warmup_reported=True)
            seen.last_reply = time.monotonic()
        if p.finished:
            if service.failures_to_report(p.rebuild_id, 1):
                self._wake.set()
                return  # the summary comes after the last failure reply
            self._finish(p, seen)
            return
        interval = update_interval(p.elapsed(self.clock()))
        if _key(p) != seen.last_key and now - seen.last_update >= interval:
            self._update(p, seen)

    def _finish(self, p: Progress, seen: _Seen) -> None:
        """The summary (naming the owners), then the owners' DMs, then the lease goes."""
        assert p.thread_ts is not None
        service = self.service
        outcome = self._owners_outcome(p)
        dms = outcome is not None and bool(outcome.found)
        if not p.flags.get("summary_posted"):
            p = self._update(p, seen)
            summary = summary_reply(
                p,
                now=self.clock(),
                server=self._server(p),
                unverified=service.verify_failures(p.rebuild_id),
                stale=service.undeleted_caches(p.rebuild_id) if p.fails_to_start else (),
            )
            if outcome is not None:
                summary = with_owners(summary, outcome)
            ts = self._post_once(p, "summary", summary, reply_broadcast=True)
            if ts is None:
                return  # the lease moved: its new holder posts it
            service.set_flags(p.rebuild_id, summary_posted=True, summary_ts=ts)
        if outcome is not None and dms and not self._tell_owners(p, outcome, seen):
            return  # more DMs to send on the next rounds
        service.report_final(p.rebuild_id, self.instance_id)  # and release the lease
        self._drop(p.rebuild_id)

    def _post_once(
        self, p: Progress, key: str, message: Message, *, reply_broadcast: bool = False
    ) -> str | None:
        """Post `message` in the thread once across processes (module doc): its ts, or None
        when this process's lease moved (then nothing was posted)."""
        assert p.thread_ts is not None
        metadata = {"event_type": EVENT_TYPES[key], "event_payload": {"rebuild_id": p.rebuild_id}}
        if p.flags.get(f"{key}_claimed"):
            found = self._find(p.channel, metadata, thread_ts=p.thread_ts)
            if found is not None:
                log.info("rebuild %s: the %s was already posted (%s)", p.rebuild_id, key, found)
                return found
        if not self.service.claim_post(p.rebuild_id, p.lease_token, key):
            self._drop(p.rebuild_id)
            return None
        return self._once.post(
            p.channel,
            message,
            thread_ts=p.thread_ts,
            reply_broadcast=reply_broadcast,
            metadata=metadata,
        )

    def _find(
        self, channel: str, metadata: dict[str, Any], *, thread_ts: str | None = None
    ) -> str | None:
        """A message posted with `metadata` before (None: not found, or Slack lets us not
        look: then it is posted, possibly again, rather than never)."""
        try:
            return self._once.find_posted(channel, metadata, thread_ts=thread_ts)
        except SlackUnavailable as exc:
            if _transient(exc):
                raise
            log.warning(
                "cannot look for an earlier %s in %s (%s): posting it, maybe again",
                metadata["event_type"],
                channel,
                exc.error,
            )
            return None

    def _owners_outcome(self, p: Progress) -> OwnersOutcome | None:
        """Who owns the failed items, found in Slack or not; looked up once per rebuild (the
        answers are kept in the `owner_lookups` flag before anything is said)."""
        if self.owners is None or not p.counts.get("failed"):
            return None
        lookups = OwnerLookups.from_json(p.flags.get("owner_lookups"))
        try:
            failed = self.service.items(p.rebuild_id, state="failed")
            outcome = self.owners.resolve(p.server, failed, lookups)
        except Exception:
            log.exception("rebuild %s: looking up the owners failed", p.rebuild_id)
            return None  # the summary goes out anyway, without the owners
        if lookups.changed:
            self.service.set_flags(p.rebuild_id, owner_lookups=lookups.to_json())
        return None if outcome.empty else outcome

    def _tell_owners(self, p: Progress, outcome: OwnersOutcome, seen: _Seen) -> bool:
        """One DM per owner found, at most one per DM_SPACING; True once all are sent."""
        told = [str(guid) for guid in p.flags.get("owners_notified") or []]
        refused = dict(p.flags.get("owners_refused") or {})
        waiting = [o for o in outcome.found if o.guid not in told and o.guid not in refused]
        if waiting:
            if seen.last_dm is not None and time.monotonic() - seen.last_dm < DM_SPACING:
                return False  # the next tick comes back for it
            owner = waiting[0]
            # Claimed before (a restart, a failed post): the DM may be in their DM channel.
            again = p.flags.get("owner_dm_sending") == owner.guid
            if not self.service.set_flags_fenced(
                p.rebuild_id, p.lease_token, owner_dm_sending=owner.guid
            ):
                self._drop(p.rebuild_id)  # the lease moved: its new holder sends it
                return False
            error = self._dm(p, owner, look_first=again)
            seen.last_dm = time.monotonic()
            if error is None:
                self.service.set_flags(p.rebuild_id, owners_notified=[*told, owner.guid])
            else:
                refused[owner.guid] = [owner.user_id, error]
                self.service.set_flags(p.rebuild_id, owners_refused=refused)
            if len(waiting) > 1:
                return False
        if refused and not p.flags.get("refusals_reported"):
            pairs = [(str(v[0]), str(v[1])) for v in refused.values() if isinstance(v, list)]
            assert p.thread_ts is not None
            self.poster.post(
                p.channel, dm_refused_reply(p.rebuild_id, pairs), thread_ts=p.thread_ts
            )
            self.service.set_flags(p.rebuild_id, refusals_reported=True)
        return True

    def _dm(self, p: Progress, owner: OwnerFound, *, look_first: bool = False) -> str | None:
        """Send the owner their DM (unless `look_first` finds it sent already); Slack's error
        when it refuses for good (raises SlackUnavailable when worth retrying)."""
        people = SlackPeople(self.poster.client)
        metadata = {
            "event_type": EVENT_TYPES["owner_dm"],
            "event_payload": {"rebuild_id": p.rebuild_id, "owner": owner.guid},
        }
        try:
            dm_channel = people.open_dm(owner.user_id)
            if look_first and self._find(dm_channel, metadata) is not None:
                log.info(
                    "rebuild %s: the DM to owner %s was sent already", p.rebuild_id, owner.guid
                )
                return None
            self._once.post(
                dm_channel, owner_dm(p, owner, server=self._server(p)), metadata=metadata
            )
        except SlackUnavailable as exc:
            if _transient(exc):
                raise
            log.warning(
                "rebuild %s: Slack refused the DM to %s: %s", p.rebuild_id, owner.user_id, exc.error
            )
            return exc.error
        return None

    def _drop(self, rebuild_id: int) -> None:
        with self._lock:
            self._watched.pop(rebuild_id, None)

    def _server(self, p: Progress) -> str | None:
        return p.server if self.several_servers else None

    def _update(self, p: Progress, seen: _Seen) -> Progress:
        assert p.thread_ts is not None
        try:
            self.poster.update(
                p.channel, p.thread_ts, progress_view(p, now=self.clock(), server=self._server(p))
            )
        except SlackUnavailable as exc:
            if exc.error not in GONE:
                raise
            # Someone deleted the card: carry on in a new parent message and its thread.
            ts = self.poster.post(
                p.channel, progress_view(p, now=self.clock(), server=self._server(p))
            )
            self.service.attach_message(p.rebuild_id, ts)
            p = replace(p, thread_ts=ts)
        seen.last_key = _key(p)
        seen.last_update = time.monotonic()
        return p


def _key(p: Progress) -> tuple[object, ...]:
    return (p.state, tuple(sorted(p.counts.items())), tuple(sorted(p.verify.items())))
