"""Tables. Schema changes go through Alembic migrations in `bot/store/migrations`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class PendingAction(Base):
    """A destructive act waiting for its Confirm click. The button carries only `id`."""

    __tablename__ = "pending_actions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # cache_delete | rebuild_start
    state: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    message_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The process that won the claim and carries the act out (migration 0004): if it dies
    # mid-act, reconciliation finds the request by a holder that is gone.
    # An instance id (`Instance.instance_id`); services call it `instance_id` (the column keeps
    # its name, no migration).
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)


class DeletionTarget(Base):
    """The journal of a confirmed deletion, one row per cache (migration 0004).

    Written before each DELETE leaves (`sent`) and after its answer, so a crash at any point
    leaves a record of what is known: `planned` (never sent), `sent` (outcome unknown),
    `running` (Connect took it: task id), `succeeded`, `failed`.
    """

    __tablename__ = "deletion_targets"
    __table_args__ = (Index("ix_deletion_targets_pending", "pending_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pending_id: Mapped[str] = mapped_column(ForeignKey("pending_actions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    image_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="planned")
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    """Append-only record of every destructive act and refusal."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    outcome: Mapped[str] = mapped_column(String(24))
    target: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    # The Connect server the act was on (migration 0003); None before servers had names.
    server: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Rebuild(Base):
    __tablename__ = "rebuilds"
    __table_args__ = (Index("ix_rebuilds_state_scheduled_for", "state", "scheduled_for"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(16), default="planned")
    requested_by: Mapped[str] = mapped_column(String(64))
    started_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parallelism: Mapped[int] = mapped_column(Integer, default=2)
    description: Mapped[str] = mapped_column(Text, default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Lease of the process driving the rebuild (migration 0002): one driver at a time.
    # An instance id; services call it `instance_id` (`Progress.instance_id`; no migration).
    driver: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Fencing token of the lease (migration 0006): new on every acquisition; each write a
    # driver makes is conditioned on it, so a driver that lost its lease writes nothing more.
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The Connect server it builds on (migration 0003); None before servers had names.
    server: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Scheduled rebuilds (migration 0010): state `scheduled` until `scheduled_for`, then the
    # selection `criteria` (JSON) is evaluated again and it starts. `reminded`: the reminder
    # before the start is claimed (posted once); `claimed_by`: the process starting it.
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    scheduled_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    criteria: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reminded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # When `claimed_by` claimed the start (migration 0011): reconciliation retakes a claim
    # older than a few minutes even from a live process (it hangs).
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The usage the plan was ordered by (migration 0014): its source, window and coverage, or
    # why there was none (`bot.services.usage.PlanUsage`).
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RebuildItem(Base):
    __tablename__ = "rebuild_items"
    __table_args__ = (
        Index("ix_rebuild_items_rebuild_state", "rebuild_id", "state"),
        Index("ix_rebuild_items_guid_state", "guid", "state"),
        # An item once per plan (migration 0011): two scheduled starters replacing the items
        # at once cannot double them.
        Index("uq_rebuild_items_rebuild_guid", "rebuild_id", "guid", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rebuild_id: Mapped[int] = mapped_column(ForeignKey("rebuilds.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    wave: Mapped[int] = mapped_column(Integer)  # 0 warm-up, 1 interactive, 2 rendered/static
    guid: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    app_mode: Mapped[str] = mapped_column(String(48), default="")
    runtime: Mapped[str] = mapped_column(String(255), default="")
    bundle_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    dashboard_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Failure reply posted in the thread (migration 0002): a restart neither loses nor repeats it.
    notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The build journal (migration 0005): set before a build request leaves, so an answer lost
    # on the way back (or a kill) leaves a trace; `resent` counts requests sent again when an
    # earlier one may have reached Connect (a possible duplicate build).
    requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The Connect user owning the item (migration 0008): told by DM when its build fails.
    owner_guid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The runtime caches the item needs (migration 0009), one key a line (`RuntimeCache.label`):
    # the warm-up builds each runtime once, and an item starts when its runtimes are warm.
    runtimes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Visits over the plan's usage window that wait on this build (migration 0014): an
    # interactive item's visits, 0 for rendered and static content; None: no usage known.
    visitors: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The verification after a successful build (migration 0015), interactive items only:
    # `pending` (built, not yet probed: a restarted driver probes it), then `starts`, `fails`
    # (built but fails to start; `verify_error` says why) or `unchecked` (the probe could not
    # tell; `verify_error` says why). NULL: not verified (not interactive, not built, or
    # `--no-verify`).
    verified: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verify_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class HomeOpen(Base):
    """Who opened the bot's App Home and when (migration 0007): Home is republished for those
    who opened it in the last hour when a rebuild it shows changes. Shared by every replica, so
    the one driving a rebuild republishes for viewers whose open reached another one; the last
    `views.publish` hash and time let them all publish with `hash` and share one throttle."""

    __tablename__ = "home_opens"
    __table_args__ = (Index("ix_home_opens_opened_at", "opened_at"),)

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Slack user ID
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The section the user expanded with a Home button ("caches:<server>", ...), or None.
    section: Mapped[str | None] = mapped_column(String(128), nullable=True)


class HealthCheck(Base):
    """A `/connect health` run (migration 0013), stored like a rebuild: one process probes at a
    time (the lease: `driver`, `heartbeat_at` by the database's clock, `lease_token` fencing
    every write), and another takes it over when that process dies. `card_ts`: the channel
    card that shows its progress and result; `criteria`: the selection (JSON, as a schedule's);
    the counts are set when it ends; `summary`: the grouping and notes of the final report."""

    __tablename__ = "health_checks"
    __table_args__ = (Index("ix_health_checks_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    card_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    description: Mapped[str] = mapped_column(Text, default="")
    criteria: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    render: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)  # items selected
    starts: Mapped[int] = mapped_column(Integer, default=0)
    fails: Mapped[int] = mapped_column(Integer, default=0)
    unchecked: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    driver: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class HealthItem(Base):
    """One item of a health check (migration 0013). Claimed (`claimed_at`, no `verdict`) before
    its probe, with the keys of the jobs Connect listed just before the request (`before`, in
    `detail`); the verdict is recorded after. A claim left by a process that died is resolved
    from Connect's jobs, not by requesting the item again (`bot.services.health.runner`)."""

    __tablename__ = "health_items"
    __table_args__ = (Index("uq_health_items_check_guid", "check_id", "guid", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("health_checks.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    runtime: Mapped[str] = mapped_column(String(255), default="")
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: probing
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # lease token
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
