"""Rebuild planning: what to build on one Connect server, in which order, skipping duplicates.

Planning streams Connect's content list into `rebuild_items` rows in batches, so a 10,000-item
plan never holds a list of item dicts; the order and the counts the cards show are computed
by SQL over those rows. `RebuildStore` (`bot.services.rebuilds.store`) uses these functions and
re-exports the constants; this module imports neither the store nor the engine.

Order (the `wave` column, then `position` within a wave):
0. warm-up: the fewest items covering every distinct runtime (`bot.services.rebuilds.warmup`),
   so each runtime cache is rebuilt once before the other items using it (rsconnect's docs
   advise this); the driver starts an item as soon as the warm-up items of its own runtimes
   are finished;
1. interactive apps and APIs (visitors wait on them first);
2. rendered documents and static content.
Within a wave, the longest estimated builds go first (`bot.services.rebuilds.estimates`, from
the bot's history); without history, Connect's order (newest deployment first).

With usage (`bot.services.usage`), visitors first (`bot.services.rebuilds.visitors`):
wave 1 holds the visited interactive items, by visits per second of build, and wave 2 the rest
(unvisited, rendered, static), longest first; the warm-up of the most visited runtimes first.
Items `--visited-within` leaves out are stored `skipped` with `UNVISITED` as `error`.

Locked content (Connect shows no Rebuild button for it) is stored `skipped` with its locked
message as `error`, so every plan lists it and none builds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from bot.connect import ConnectClient, ContentFilter, ContentItem, RuntimeCache
from bot.services.rebuilds.estimates import Estimates, estimate, has_history, longest_first
from bot.services.rebuilds.restores import Ranked, candidates, restore_seconds
from bot.services.rebuilds.usage import UNVISITED
from bot.services.rebuilds.visitors import Job, coverage, schedule, visitor_order
from bot.services.rebuilds.warmup import (
    Candidate,
    Runtimes,
    cheapest_cover,
    cover_each_runtime,
    rank,
)
from bot.services.usage import PlanUsage
from bot.store import Database, Rebuild, RebuildItem, utcnow

START_LOCK = 0x636F6E6E  # advisory lock id for Starts ("conn")
DEFAULT_PARALLELISM = 3  # rsconnect's docs: start at 2-3
MAX_PARALLELISM = 16
WARMUP, INTERACTIVE, RENDERED = 0, 1, 2
ACTIVE = ("running", "cancelling")
FINISHED = ("done", "cancelled")
OPEN_ITEM_STATES = ("queued", "building")
INSERT_BATCH = 500
RUNTIME_KEY_SEP = "\n"
LOCKED_NO_MESSAGE = "locked in Connect"  # the `error` of a locked item without a message


def runtime_label(item: ContentItem) -> str:
    return " + ".join(r.label for r in item.runtimes)


def runtime_keys(item: ContentItem) -> tuple[str, ...]:
    """The item's runtime caches, one key each (language, version and image)."""
    return tuple(r.label for r in item.runtimes)


def item_runtime_keys(runtimes: str | None, label: str) -> tuple[str, ...]:
    """An item row's runtime keys: its `runtimes` column, or (rows planned before migration
    0009) its combined `runtime` label."""
    if runtimes is not None:
        return tuple(key for key in runtimes.split(RUNTIME_KEY_SEP) if key)
    return tuple(key for key in label.split(" + ") if key)


def wave_of(item: ContentItem) -> int:
    return INTERACTIVE if item.interactive else RENDERED


def affected_by(item: ContentItem, caches: Iterable[RuntimeCache]) -> bool:
    """True when one of the item's runtimes is one of `caches` (language, version and image)."""
    return any(
        cache.matches(runtime.language, runtime.version, runtime.image_name)
        for runtime in item.runtimes
        for cache in caches
    )


def clamp_parallelism(value: int | None) -> int:
    return max(1, min(MAX_PARALLELISM, value or DEFAULT_PARALLELISM))


# ---- plan and start ---------------------------------------------------------------------------


def plan(
    db: Database,
    client: ConnectClient,
    *,
    server: str | None,
    requested_by: str,
    channel: str,
    description: str,
    parallelism: int | None = None,
    content_filter: ContentFilter | None = None,
    caches: Iterable[RuntimeCache] | None = None,
    usage: PlanUsage | None = None,
) -> int:
    """Persist a plan (state `planned`) on `server` of the published items selected by the
    filter, or affected by `caches`, ordered by `usage` when known; its id. Raises
    ConnectError when Connect cannot list its content (nothing is left behind then)."""
    selected_caches = tuple(caches) if caches is not None else None
    with db.session() as session:
        row = Rebuild(
            state="planned",
            server=server,
            requested_by=requested_by,
            channel=channel,
            parallelism=clamp_parallelism(parallelism),
            description=description,
            progress={},
            usage=usage.to_json() if usage is not None else None,
        )
        session.add(row)
        session.flush()
        rebuild_id = row.id
    try:
        items = select_items(client, content_filter, selected_caches)
        insert_items(db, rebuild_id, items, usage=usage)
        priors = restore_priors(db, client, rebuild_id)
        with db.session() as session:
            finish_plan(session, rebuild_id, priors)
    except BaseException:
        _drop(db, rebuild_id)
        raise
    return rebuild_id


def start(db: Database, rebuild_id: int, *, started_by: str) -> bool:
    """planned -> running, re-checking duplicates against rebuilds started meanwhile.

    One transaction, serialised with every other Start (SQLite locks the file; PostgreSQL
    takes a transaction-level advisory lock), so of two Starts over the same items the
    second skips what the first queued.
    """
    with db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": START_LOCK})
        won = session.execute(  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult (rowcount)
            update(Rebuild)
            .where(Rebuild.id == rebuild_id, Rebuild.state == "planned")
            .values(state="running", started_by=started_by, started_at=utcnow())
        ).rowcount
        if not won:
            return False
        if skip_duplicates(session, rebuild_id):
            choose_warmup(session, rebuild_id, estimate(session, rebuild_id))
            store_totals(session, rebuild_id)
    return True


def select_items(
    client: ConnectClient,
    content_filter: ContentFilter | None,
    caches: tuple[RuntimeCache, ...] | None,
) -> Iterator[ContentItem]:
    """The published items the filter selects, or that use one of `caches`, streamed."""
    for item in client.content.iter():
        if not item.published:
            continue
        if content_filter is not None and not content_filter.matches(item):
            continue
        if caches is not None and not affected_by(item, caches):
            continue
        yield item


def insert_items(
    db: Database,
    rebuild_id: int,
    items: Iterable[ContentItem],
    *,
    session: Session | None = None,
    usage: PlanUsage | None = None,
) -> None:
    """Store `items` as the plan's rows in batches (locked ones `skipped`, with their message;
    those `usage.visited` leaves out `skipped` as `UNVISITED`); `finish_plan` then orders
    them. With `session`, inside the caller's transaction."""
    batch: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        locked = item.locked
        error = (item.locked_message.strip() or LOCKED_NO_MESSAGE) if locked else None
        if not locked and usage is not None and usage.visited is not None:
            error = None if item.guid in usage.visited else UNVISITED
        batch.append(
            {
                "rebuild_id": rebuild_id,
                "position": position,
                "wave": RENDERED if error else wave_of(item),
                "guid": item.guid,
                "title": item.display_title[:500],
                "app_mode": item.app_mode[:48],
                "runtime": runtime_label(item)[:255],
                "runtimes": RUNTIME_KEY_SEP.join(runtime_keys(item)),
                "bundle_id": item.bundle_id,
                "dashboard_url": item.dashboard_url,
                "owner_guid": item.owner_guid,
                "state": "skipped" if error else "queued",
                "error": error,
                "visitors": _visitors(item, usage),
                "attempts": 0,
                "notified": False,
            }
        )
        if len(batch) >= INSERT_BATCH:
            _write_batch(db, batch, session)
            batch = []
    if batch:
        _write_batch(db, batch, session)


def _visitors(item: ContentItem, usage: PlanUsage | None) -> int | None:
    """The visits waiting on the item's build: an interactive item's (None: no usage)."""
    if usage is None or usage.visits is None:
        return None
    return usage.visits.get(item.guid, 0) if item.interactive else 0


def _write_batch(db: Database, batch: list[dict[str, Any]], session: Session | None = None) -> None:
    if session is not None:
        session.execute(insert(RebuildItem), batch)
        return
    with db.session() as own:
        own.execute(insert(RebuildItem), batch)


def _drop(db: Database, rebuild_id: int) -> None:
    with db.session() as session:
        session.execute(delete(RebuildItem).where(RebuildItem.rebuild_id == rebuild_id))
        session.execute(delete(Rebuild).where(Rebuild.id == rebuild_id))


# ---- SQL helpers (inside a caller's transaction) ---------------------------------------------


def finish_plan(
    session: Session, rebuild_id: int, priors: Mapping[str, float] | None = None
) -> None:
    """After the items are inserted: skip duplicates, order, choose the warm-up, count. With
    usage, visitors first (`order_for_visitors`). `priors`: with no history, the seconds of
    Connect's last restore of some items (`restore_priors`), for the warm-up choice only."""
    skip_duplicates(session, rebuild_id)
    estimates = estimate(session, rebuild_id)
    warm = estimates
    if not estimates and priors:
        # No history: the warm-up is chosen by Connect's restores, an item without one after
        # every item with one.
        warm = Estimates(priors, typical=math.inf)
    if has_visitors(session, rebuild_id):
        by_visits(session, rebuild_id)
        order_for_visitors(session, rebuild_id, estimates, describe=False)  # most visited warm
        # Without any durations, each runtime is warmed by its most visited item.
        choose_warmup(session, rebuild_id, warm, each_runtime=not warm)
        order_for_visitors(session, rebuild_id, estimates)
    else:
        longest_first(session, rebuild_id, estimates)
        choose_warmup(session, rebuild_id, warm)
    store_totals(session, rebuild_id)


def restore_priors(db: Database, client: ConnectClient, rebuild_id: int) -> dict[str, float]:
    """Before the first rebuild on its server (no history for its items): how long Connect's
    last restore of each warm-up candidate took (`restores`); nothing otherwise."""
    queued = (RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "queued")
    with db.session() as session:
        if has_history(session, rebuild_id):
            return {}
        rows = session.execute(
            select(
                RebuildItem.guid,
                RebuildItem.runtimes,
                RebuildItem.runtime,
                RebuildItem.visitors,
                RebuildItem.wave,
                RebuildItem.position,
            ).where(*queued, RebuildItem.runtime != "")
        ).all()
    ranked = [
        Ranked(
            row.guid,
            item_runtime_keys(row.runtimes, row.runtime),
            int(row.visitors or 0),
            row.wave == INTERACTIVE,
            int(row.position),
        )
        for row in rows
    ]
    return restore_seconds(client, candidates(ranked))


def has_visitors(session: Session, rebuild_id: int) -> bool:
    """Do visitors wait on any of the plan's builds? (Without usage, or when nobody visited
    any of its items, the usual order.)"""
    return (
        session.scalar(
            select(RebuildItem.id)
            .where(
                RebuildItem.rebuild_id == rebuild_id,
                RebuildItem.state == "queued",
                RebuildItem.visitors > 0,
            )
            .limit(1)
        )
        is not None
    )


def by_visits(session: Session, rebuild_id: int) -> None:
    """Wave 1: the queued items visitors wait on; wave 2: the rest (nobody waits on them)."""
    queued = (RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "queued")
    for wave, waiting in (
        (INTERACTIVE, RebuildItem.visitors > 0),
        (RENDERED, RebuildItem.visitors <= 0),
    ):
        session.execute(
            update(RebuildItem)
            .where(*queued, RebuildItem.wave != WARMUP, waiting)
            .values(wave=wave)
            .execution_options(synchronize_session=False)
        )


def order_for_visitors(
    session: Session, rebuild_id: int, estimates: Estimates, *, describe: bool = True
) -> None:
    """Renumber the queued items in `visitors.visitor_order`, and (`describe`) keep with the
    plan what the order buys (`coverage`: when the builds visitors wait on mostly are done)."""
    rows = session.execute(
        select(
            RebuildItem.id,
            RebuildItem.guid,
            RebuildItem.position,
            RebuildItem.wave,
            RebuildItem.runtimes,
            RebuildItem.runtime,
            RebuildItem.visitors,
        ).where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "queued")
    ).all()
    ids = {row.position: row.id for row in rows}
    jobs = [
        Job(
            key=row.position,
            runtimes=item_runtime_keys(row.runtimes, row.runtime),
            visitors=int(row.visitors or 0),
            seconds=estimates(row.guid),
            warmup=row.wave == WARMUP,
        )
        for row in rows
    ]
    order = visitor_order(jobs)
    moved = [
        {"id": ids[job.key], "position": position}
        for position, job in enumerate(order)
        if job.key != position
    ]
    if moved:
        session.execute(update(RebuildItem), moved)  # ORM bulk UPDATE by primary key
    if not describe:
        return
    parallelism = session.scalar(select(Rebuild.parallelism).where(Rebuild.id == rebuild_id))
    renumbered = [
        Job(n, job.runtimes, job.visitors, job.seconds, job.warmup) for n, job in enumerate(order)
    ]
    covered = coverage(schedule(renumbered, parallelism or DEFAULT_PARALLELISM))
    flags = {
        "visited_items": sum(1 for job in jobs if job.visitors > 0),
        "coverage_share": covered.share if covered else None,
        "coverage_seconds": covered.seconds if covered else None,
        "coverage_items": covered.items if covered else None,
    }
    dialect = session.get_bind().dialect.name
    session.execute(
        update(Rebuild)
        .where(Rebuild.id == rebuild_id)
        .values(usage=merged_json(dialect, Rebuild.usage, flags))
    )


def skip_duplicates(session: Session, rebuild_id: int) -> int:
    """Mark `skipped` the queued items another active rebuild on the same server is still going
    to build (the same GUID on another server is other content)."""
    own_server = select(Rebuild.server).where(Rebuild.id == rebuild_id).scalar_subquery()
    others = select(Rebuild.id).where(
        Rebuild.state.in_(ACTIVE),
        Rebuild.id != rebuild_id,
        Rebuild.server.is_not_distinct_from(own_server),
    )
    busy = select(RebuildItem.guid).where(
        RebuildItem.rebuild_id.in_(others), RebuildItem.state.in_(OPEN_ITEM_STATES)
    )
    result = session.execute(
        update(RebuildItem)
        .where(
            RebuildItem.rebuild_id == rebuild_id,
            RebuildItem.state == "queued",
            RebuildItem.guid.in_(busy),
        )
        .values(state="skipped", wave=RENDERED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult


def choose_warmup(
    session: Session,
    rebuild_id: int,
    estimates: Estimates | None = None,
    *,
    each_runtime: bool = False,
) -> None:
    """Promote to wave 0 the fewest queued items covering every runtime no queued warm-up item
    covers yet, the cheapest such (`warmup.cheapest_cover`), from the best item of each runtime
    combination;
    `each_runtime`: an item of its own per runtime where there is one (`cover_each_runtime`)."""
    mine = (RebuildItem.rebuild_id == rebuild_id, RebuildItem.state == "queued")
    covered: set[str] = set()
    for runtimes, label in session.execute(
        select(RebuildItem.runtimes, RebuildItem.runtime)
        .where(*mine, RebuildItem.wave == WARMUP)
        .distinct()
    ).all():
        covered.update(item_runtime_keys(runtimes, label))
    estimated = estimates or Estimates({})
    # The best item of each runtime combination.
    best: dict[Runtimes, Candidate] = {}
    for row in session.execute(
        select(
            RebuildItem.runtimes,
            RebuildItem.runtime,
            RebuildItem.wave,
            RebuildItem.position,
            RebuildItem.guid,
        ).where(*mine, RebuildItem.wave.in_((INTERACTIVE, RENDERED)), RebuildItem.runtime != "")
    ):
        combo = item_runtime_keys(row.runtimes, row.runtime)
        if not combo:
            continue
        candidate = Candidate(row.wave == INTERACTIVE, int(row.position), estimated(row.guid))
        current = best.get(combo)
        if current is None or rank(candidate) < rank(current):
            best[combo] = candidate
    chosen = (cover_each_runtime if each_runtime else cheapest_cover)(best, covered)
    if chosen:
        session.execute(
            update(RebuildItem)
            .where(RebuildItem.rebuild_id == rebuild_id, RebuildItem.position.in_(chosen))
            .values(wave=WARMUP)
            .execution_options(synchronize_session=False)
        )


def store_totals(session: Session, rebuild_id: int) -> None:
    counts = state_counts(session, rebuild_id)
    skipped = counts.get("skipped", 0)
    session.execute(
        update(Rebuild)
        .where(Rebuild.id == rebuild_id)
        .values(total=sum(counts.values()) - skipped, skipped=skipped)
    )


def state_counts(session: Session, rebuild_id: int) -> dict[str, int]:
    rows = session.execute(
        select(RebuildItem.state, func.count())
        .where(RebuildItem.rebuild_id == rebuild_id)
        .group_by(RebuildItem.state)
    ).all()
    return {state: int(n) for state, n in rows}


def merged_progress(dialect: str, flags: dict[str, Any]) -> Any:
    """`rebuilds.progress` with `flags` merged in, computed by the database within an UPDATE
    (no read-modify-write: concurrent writers of other flags lose nothing)."""
    return merged_json(dialect, Rebuild.progress, flags)


def merged_json(dialect: str, column: Any, flags: dict[str, Any]) -> Any:
    """The JSON `column` of `rebuilds` with `flags` merged in, within an UPDATE."""
    patch = literal(json.dumps(flags), String)
    if dialect == "postgresql":
        current = cast(column, JSONB)
        base = case(
            (func.jsonb_typeof(current) == "object", current),
            else_=cast(literal_column("'{}'"), JSONB),
        )
        return cast(base.op("||")(cast(patch, JSONB)), JSON)
    if dialect == "sqlite":
        current_text = column
        base = case(
            (func.json_type(current_text) == "object", current_text),
            else_=literal_column("'{}'"),
        )
        return func.json_patch(base, patch)
    raise NotImplementedError(f"no JSON merge for {dialect}")
