"""The rebuild engine on PostgreSQL: the main flow, and a kill -9 restart, in a fresh schema.

Runs when BOT_TEST_POSTGRES_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/postgres);
each test creates its own schema and drops it afterwards, so runs are isolated.
"""

from __future__ import annotations

import threading
from collections import Counter

from rebuild_support import items, plan, rebuild_id_of, rebuild_row, wait_final
from sqlalchemy import inspect

from sim.stack import ADMIN, OPS_CHANNEL, start_stack
from tests.conftest import needs_postgres

pytestmark = needs_postgres


def test_main_flow_on_postgres(postgres_url: str) -> None:
    with start_stack(build_seconds=0.1, bot_database_url=postgres_url) as stack:
        db = stack.runtime.db
        assert db.dialect == "postgresql"
        failing = next(i for i in stack.connect.content() if i["title"] == "Quarterly Report")
        stack.connect.fail_builds([failing["guid"]])
        card = plan(stack, "rebuild --parallelism 4")
        assert card.text.startswith("Rebuild plan #1: 14 item(s)")
        # Every runtime cold, as after a system change: each waits for its warm-up build (a
        # runtime with a cache would not, and its builds could then start in any order).
        stack.connect.remove_caches()
        stack.requests.click(OPS_CHANNEL, card.ts, "rebuild_start")
        summary = wait_final(stack.slack, card.ts, timeout=20)

        rebuild_id = rebuild_id_of(card)
        rows = items(db, rebuild_id)
        assert Counter(row.state for row in rows) == {"succeeded": 13, "failed": 1}
        assert set(Counter(stack.connect.builds_started()).values()) == {1}
        # Per runtime, the warm-up build comes first (other runtimes' warm-ups do not wait).
        by_guid = {r.guid: r for r in rows}
        for runtime in {r.runtime for r in rows}:
            waves = [
                by_guid[g].wave
                for g in stack.connect.builds_started()
                if by_guid[g].runtime == runtime
            ]
            assert waves == sorted(waves)
        assert rebuild_row(db, rebuild_id).state == "done"
        assert "13 succeeded, 1 failed" in summary.all_text()
        # The schema is the bot's own, migrated in the (fresh) schema; no shared job store:
        # APScheduler 3 cannot share one between replicas, so each process keeps its own.
        tables = inspect(db.engine).get_table_names()
        assert {"rebuilds", "deletion_targets", "alembic_version"} <= set(tables)
        assert "apscheduler_jobs" not in tables


def test_two_simultaneous_starts_over_the_same_items_build_each_once(postgres_url: str) -> None:

    with start_stack(build_seconds=0.1, bot_database_url=postgres_url) as stack:
        first = rebuild_id_of(plan(stack, "rebuild --parallelism 4"))
        second = rebuild_id_of(plan(stack, "rebuild --parallelism 4", count=2))
        store, engine = stack.runtime.services.rebuild_store, stack.runtime.services.engine
        barrier = threading.Barrier(2)

        def start(rebuild_id: int) -> None:
            barrier.wait()  # both transactions at the same instant, as two clicks can be
            if store.start(rebuild_id, started_by=ADMIN):
                engine.launch(rebuild_id)

        threads = [threading.Thread(target=start, args=(r,)) for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        db = stack.runtime.db
        assert stack.slack.wait_for(
            lambda _: all(rebuild_row(db, r).state == "done" for r in (first, second)),
            timeout=30,
        )
        built = Counter(stack.connect.builds_started())
        assert set(built.values()) == {1}
        assert len(built) == len([i for i in stack.connect.content() if i["bundle_id"]])
        states = Counter(row.state for r in (first, second) for row in items(db, r))
        assert states["skipped"] == len(built)
