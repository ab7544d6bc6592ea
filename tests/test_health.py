"""Content health over real HTTP against the Connect simulator (issue 19): the broken set after a
system change, rebuilds that do and do not fix it, removed runtimes, the probe limit, Connect
faults, renders, and hostile titles carried as data."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytest

from bot.connect import ConnectClient, ContentFilter, ContentItem, RuntimeCache
from bot.services.caches import CacheService
from bot.services.health import (
    CouldNotCheck,
    FailsToStart,
    HealthChecks,
    HealthReport,
    ItemHealth,
    ProbeSettings,
    Skipped,
    Starts,
)
from bot.services.outcomes import Actor
from bot.services.servers import ConnectServer, Servers
from sim.connect_seed import Seed, make_cache, make_content_item
from sim.connect_server import FakeConnect
from tests.conftest import ADMIN_KEY

ACTOR = Actor("U-ADMIN", "C-OPS")
GDAL_LINE = "libgdal.so.30: cannot open shared object file: No such file or directory"
SETTINGS = ProbeSettings(settle_interval=0.01)
INTERACTIVE = {
    "Sales Dashboard",
    "<!channel> Sales & <Ops>",
    "Churn Prediction API",
    "Forecast Explorer",
    "Plumber Scoring API",
    "Ops Monitor",
    "Inventory Explorer",
    "Legacy Model Dashboard",
    "Executive KPIs",
}
RENDERED = {
    "Quarterly Report",
    "Quarto Metrics Digest",
    "Notebook: Cohort Analysis",
    "Legacy Finance Report",
}


def checks(client: ConnectClient, **options: object) -> HealthChecks:
    server = ConnectServer("prod", client, CacheService(client))
    return HealthChecks(servers=Servers([server]), settings=SETTINGS, **options)  # type: ignore[arg-type]


def run(
    client: ConnectClient,
    content_filter: ContentFilter | None = None,
    packages: Sequence[str] = (),
    **options: object,
) -> HealthReport:
    outcome = checks(client).check(
        ACTOR,
        None,
        content_filter or ContentFilter(),
        packages,
        **options,  # type: ignore[arg-type]
    )
    assert isinstance(outcome, HealthReport), outcome
    return outcome


def guid_of(fake: FakeConnect, title: str) -> str:
    return str(next(item["guid"] for item in fake.content() if item["title"] == title))


def titles(results: Sequence[ItemHealth], kind: type) -> set[str]:
    return {result.title for result in results if isinstance(result.verdict, kind)}


def visits(fake: FakeConnect, guid: str) -> int:
    return fake.count("GET", f"^/content/{guid}")


def build(client: ConnectClient, guid: str) -> None:
    task = client.tasks.follow(client.content.build(guid), timeout=20)
    assert task.succeeded, task.failure_reason


@pytest.fixture
def gdal(fake_connect: FakeConnect) -> Iterator[FakeConnect]:
    """The demo server after a GDAL upgrade broke R `sf` and `terra`."""
    fake_connect.system_change("gdal", breaks={"R": ["sf", "terra"]})
    fake_connect.clear_requests()
    yield fake_connect


def test_gdal_upgrade_finds_exactly_the_broken_set(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    report = run(connect)

    assert titles(report.items, FailsToStart) == {"Sales Dashboard", "Executive KPIs"}
    # The healthy API answering / with 404 starts; sf only in an old bundle does not count.
    assert titles(report.items, Starts) == INTERACTIVE - {"Sales Dashboard", "Executive KPIs"}
    assert titles(report.items, CouldNotCheck) == set()
    skipped = titles(report.items, Skipped)
    assert skipped == RENDERED | {
        "Team Landing Page",
        "Draft: Pricing Simulator",
        "Scratch API (never deployed)",
    }
    counts = report.counts
    assert (counts.starts, counts.fails, counts.unchecked, counts.skipped) == (7, 2, 0, 7)
    for result in report.failing:
        assert isinstance(result.verdict, FailsToStart)
        assert result.verdict.reason == GDAL_LINE
        assert result.verdict.stage == "start"
        assert "exited unexpectedly" in result.verdict.summary
    plumber = report.of(guid_of(gdal, "Plumber Scoring API"))
    assert isinstance(plumber.verdict, Starts)

    # Grouped: sf is the suspect (every user fails), shiny a bystander (a user starts).
    groups = [(g.language, g.name, g.failing, g.failing_total, g.users) for g in report.by_package]
    assert groups == [("R", "sf", 2, 2, 2), ("R", "shiny", 2, 2, 3)]
    assert [(g.runtime.label, g.failing, g.checked) for g in report.by_runtime] == [
        ("R 4.3.0 (Local)", 2, 2)
    ]

    # What Connect received: one URL request per interactive item, none for the others, no
    # render; the plumber API answered 404 and was not flagged.
    for result in report.items:
        expected = 1 if result.title in INTERACTIVE else 0
        assert visits(gdal, result.guid) == expected, result.title
        assert result.attempts == expected
    assert gdal.count("POST", r"/render$") == 0
    plumber_visit = [r for r in gdal.requests if r.path.startswith(f"/content/{plumber.guid}")]
    assert [r.status for r in plumber_visit] == [404]
    assert all(r.headers["authorization"] == f"Key {ADMIN_KEY}" for r in plumber_visit)


def test_render_finds_broken_documents_and_changes_nothing_else(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    report = run(connect, render=True)

    assert titles(report.items, FailsToStart) == {
        "Sales Dashboard",
        "Executive KPIs",
        "Legacy Finance Report",
    }
    finance = report.of(guid_of(gdal, "Legacy Finance Report"))
    assert isinstance(finance.verdict, FailsToStart)
    assert finance.verdict.stage == "render"
    assert finance.verdict.reason == GDAL_LINE
    rendered_ok = {t for t in RENDERED if t != "Legacy Finance Report"}
    assert rendered_ok <= titles(report.items, Starts)
    for title in RENDERED:
        guid = guid_of(gdal, title)
        assert gdal.count("POST", f"^/__api__/v1/content/{guid}/render$") == 1
        assert visits(gdal, guid) == 0
    assert gdal.count("POST", "/render$") == len(RENDERED)
    by_package = {(g.name, g.failing, g.failing_total) for g in report.by_package}
    assert ("sf", 3, 3) in by_package


def test_older_connect_renders_through_the_default_variant() -> None:
    seed = Seed(
        caches=[make_cache("R", "4.3.0")],
        content=[
            make_content_item(guid="doc", title="Doc", app_mode="rmd-static", r_version="4.3.0")
        ],
    )
    with FakeConnect(api_keys={ADMIN_KEY: "administrator"}, seed=seed, render_api=False) as fake:
        client = ConnectClient(fake.url, ADMIN_KEY, backoff=0.01)
        with client:
            report = run(client, render=True)
        assert report.of("doc").verdict == Starts("rendered")
        assert fake.count("POST", "^/__api__/v1/content/doc/render$") == 1  # 404: no such route
        assert fake.count("GET", "^/__api__/applications/doc/variants$") == 1
        assert fake.count("POST", r"^/__api__/variants/\d+/render$") == 1


def test_rebuild_over_the_old_cache_still_fails_delete_then_rebuild_starts(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    sales = guid_of(gdal, "Sales Dashboard")
    only_sales = ContentFilter(guids=frozenset({sales}))

    build(connect, sales)  # finds the R 4.3.0 cache, with sf built against the old GDAL
    assert sales not in gdal.cold_builds()
    after_build = run(connect, only_sales).of(sales)
    assert isinstance(after_build.verdict, FailsToStart)
    assert after_build.verdict.reason == GDAL_LINE

    deletion = connect.caches.delete(RuntimeCache("R", "4.3.0"), dry_run=False)
    assert deletion.task_id is not None
    assert connect.tasks.follow(deletion.task_id, timeout=20).succeeded
    build(connect, sales)  # creates the cache fresh: sf compiled against the new GDAL
    assert sales in gdal.cold_builds()

    report = run(connect, ContentFilter(r_version=None, guids=frozenset({sales})))
    assert report.of(sales).verdict == Starts()
    # Executive KPIs was not rebuilt: it still fails; the rebuilt cache alone does not fix it.
    kpis = guid_of(gdal, "Executive KPIs")
    assert isinstance(
        run(connect, ContentFilter(guids=frozenset({kpis}))).of(kpis).verdict, FailsToStart
    )


def test_a_removed_runtime_fails_without_a_request(
    fake_connect: FakeConnect, connect: ConnectClient
) -> None:
    fake_connect.remove_runtime("R", "4.2.1")
    fake_connect.clear_requests()

    report = run(connect)

    gone = {"Plumber Scoring API", "Inventory Explorer"}
    assert titles(report.items, FailsToStart) == gone
    for title in gone:
        result = report.of(guid_of(fake_connect, title))
        assert result.verdict == FailsToStart(
            "R 4.2.1 (Local) is no longer installed on Connect", stage="runtime"
        )
        assert visits(fake_connect, result.guid) == 0
        assert fake_connect.count("GET", f"^/__api__/v1/content/{result.guid}/jobs") == 0
    assert fake_connect.count("GET", "^/__api__/v1/server_settings/r$") == 1
    assert fake_connect.count("GET", "^/__api__/v1/server_settings/python$") == 1


def test_uses_package_selects_through_the_packages_api(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    report = run(connect, packages=["sf"])
    # Legacy Finance Report uses sf too, but is rendered: skipped without --render.
    assert {r.title for r in report.items} == {
        "Sales Dashboard",
        "Executive KPIs",
        "Legacy Finance Report",
    }
    assert titles(report.items, Skipped) == {"Legacy Finance Report"}
    assert gdal.count("GET", "^/content/") == 2


def test_at_most_n_probes_at_once() -> None:
    content = [
        make_content_item(
            guid=f"app-{i:02d}", title=f"App {i}", app_mode="shiny", r_version="4.3.0"
        )
        for i in range(16)
    ]
    seed = Seed(caches=[make_cache("R", "4.3.0")], content=content)
    with FakeConnect(api_keys={ADMIN_KEY: "administrator"}, seed=seed, start_seconds=0.15) as fake:
        client = ConnectClient(fake.url, ADMIN_KEY, backoff=0.01)
        with client:
            started = time.monotonic()
            report = run(client, concurrency=3)
            elapsed = time.monotonic() - started
        assert report.counts.starts == 16
        assert fake.max_concurrent_visits_seen() == 3
        # 16 starts of 0.15 s, 3 at a time: at least 6 rounds.
        assert elapsed >= 6 * 0.15


def test_connect_faults_make_items_could_not_be_checked(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    sales = guid_of(gdal, "Sales Dashboard")
    churn = guid_of(gdal, "Churn Prediction API")
    ops = guid_of(gdal, "Ops Monitor")
    forecast = guid_of(gdal, "Forecast Explorer")
    # A proxy answers 503 in front of one item's URL, always; another's jobs API, always.
    gdal.inject_faults(
        error_rate=1.0, status=503, paths=f"^/content/{sales}/|/content/{churn}/jobs"
    )
    gdal.deny_viewing(ops, 403)

    report = run(connect, ContentFilter(guids=frozenset({sales, churn, ops})))

    for guid in (sales, churn, ops):
        assert isinstance(report.of(guid).verdict, CouldNotCheck), guid
    assert report.counts.starts == report.counts.fails == 0
    sales_reason = report.of(sales).verdict
    assert isinstance(sales_reason, CouldNotCheck)
    assert "503" in sales_reason.reason and "tried once more" in sales_reason.reason
    assert visits(gdal, sales) == 2  # the probe, and one retry
    assert visits(gdal, churn) == 0  # the jobs could not be read: nothing was started
    ops_result = report.of(ops).verdict
    assert ops_result == CouldNotCheck("the bot's key may not view this item (HTTP 403)")
    assert visits(gdal, ops) == 1
    assert gdal.jobs(ops) == []

    # One transient fault: the retry completes the probe.
    gdal.clear_faults()
    gdal.inject_faults(error_rate=1.0, status=502, paths=f"^/content/{forecast}/", limit=1)
    again = run(connect, ContentFilter(guids=frozenset({forecast})))
    assert again.of(forecast).verdict == Starts()
    assert again.of(forecast).attempts == 2
    assert visits(gdal, forecast) == 2


def test_a_live_process_answers_without_a_new_job(
    fake_connect: FakeConnect, connect: ConnectClient
) -> None:
    ops = guid_of(fake_connect, "Ops Monitor")
    only = ContentFilter(guids=frozenset({ops}))
    assert run(connect, only).of(ops).verdict == Starts()
    assert run(connect, only).of(ops).verdict == Starts("already running")
    assert [job["tag"] for job in fake_connect.jobs(ops)] == ["run_pyshiny_app"]


def test_each_result_reaches_the_sink_and_claimed_items_are_not_probed(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    sales = guid_of(gdal, "Sales Dashboard")
    seen: list[str] = []

    def not_sales(item: ContentItem) -> bool:
        return item.guid != sales  # another replica has it

    outcome = checks(connect).check(
        ACTOR, None, ContentFilter(), sink=lambda r: seen.append(r.guid), claim=not_sales
    )
    assert isinstance(outcome, HealthReport)
    assert sorted(seen) == sorted(r.guid for r in outcome.items)
    assert sales not in seen
    assert visits(gdal, sales) == 0


def test_hostile_titles_and_logs_are_carried_as_data(
    connect: ConnectClient, fake_connect: FakeConnect
) -> None:
    title = "<!channel> *bold* `tick` <https://evil.example|click> &amp;"
    item = fake_connect.add_content(
        guid="hostile", title=title, app_mode="python-dash", py_version="3.11.3", bundle_id="7"
    )
    fake_connect.add_package(item["guid"], "numpy", "1.26.4")
    fake_connect.system_change("openblas", breaks={"Python": ["numpy"]})

    report = run(connect, ContentFilter(guids=frozenset({"hostile"})))

    result = report.of("hostile")
    assert result.title == title
    assert result.verdict == FailsToStart(
        "ImportError: libopenblas.so.0: cannot open shared object file: No such file or directory",
        summary="The application exited unexpectedly during startup (exit code 1). See the logs.",
        job_key=fake_connect.jobs("hostile")[-1]["key"],
    )
    assert result.packages == ("python:numpy",)


def test_a_probe_waits_no_longer_than_the_items_init_timeout() -> None:
    seed = Seed(
        caches=[make_cache("R", "4.3.0")],
        content=[
            make_content_item(
                guid="slow", title="Slow", app_mode="shiny", r_version="4.3.0", init_timeout=0.3
            )
        ],
    )
    with FakeConnect(api_keys={ADMIN_KEY: "administrator"}, seed=seed, start_seconds=1.5) as fake:
        client = ConnectClient(fake.url, ADMIN_KEY, backoff=0.01)
        with client:
            started = time.monotonic()
            report = run(client)
            elapsed = time.monotonic() - started
        verdict = report.of("slow").verdict
        assert isinstance(verdict, CouldNotCheck)
        assert "ReadTimeout" in verdict.reason
        assert fake.arrived("GET", "^/content/slow/") == 2
        assert elapsed < 1.5  # two tries of 0.3 s, not the process's 1.5 s start


def test_malformed_answers_make_an_item_could_not_be_checked(
    gdal: FakeConnect, connect: ConnectClient
) -> None:
    sales = guid_of(gdal, "Sales Dashboard")
    gdal.serve_raw("GET", f"/v1/content/{sales}/jobs$", body=b"<html>login</html>", status=200)

    report = run(connect, ContentFilter(guids=frozenset({sales})))

    verdict = report.of(sales).verdict
    assert isinstance(verdict, CouldNotCheck)
    assert "HTML page" in verdict.reason
    assert visits(gdal, sales) == 0  # no process started without a job list to compare with
