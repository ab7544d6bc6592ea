"""Usage counts from the Connect simulator over HTTP (issue 20): the hits endpoint on 2025.04+,
visits + Shiny usage (paged) on an older Connect, and no usage (404, 403)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from bot.connect import ConnectClient, NoUsage, Usage
from bot.connect.usage import Instrumentation, short_version
from sim.connect_server import FakeConnect
from sim.connect_usage import HITS_CHUNK, SHINY_MODES, UsageModel, zipf_rates
from tests.conftest import ADMIN_KEY

WEEK = timedelta(days=7)


def expected(fake: FakeConnect, days: float) -> dict[str, int]:
    """Visits the model places in the last `days`: evenly spaced, the newest half an interval
    before the simulator's start."""
    found = {}
    for guid, per_day in fake.usage_rates().items():
        if per_day > 0:
            count = math.floor(days * per_day + 0.5)
            if count:
                found[guid] = count
    return found


def window(fake: FakeConnect, days: float) -> tuple[datetime, datetime]:
    until = datetime.fromtimestamp(fake._usage.anchor + 1, UTC)
    return until - timedelta(days=days), until


def test_the_hits_body_is_chunked_json_sliced_from_one_rendering() -> None:
    items = {f"g{i:03d}": {"guid": f"g{i:03d}"} for i in range(50)}
    model = UsageModel(3, 1_800_000_000.0)
    since, until = model.anchor - 400 * 86_400, model.anchor + 1
    body = model.hits(items, since, until)
    assert len(body.chunks) > 2 and all(len(c) < 2 * HITS_CHUNK for c in body.chunks)
    rows = json.loads(bytes(body))
    assert len(body) == len(bytes(body))
    assert len(rows) == len(list(model.visits(items, since, until)))
    assert set(rows[0]) == {"id", "user_guid", "content_guid", "timestamp", "data"}
    assert rows[0]["data"] == {"path": "/", "user_agent": "Mozilla/5.0 (simulated)"}
    rendered = model._hit_log
    # A later, narrower window (a plan's moving one) is a slice of the same rendering.
    later = since + 100 * 86_400 + 0.5, model.anchor - 86_400
    sliced = json.loads(bytes(model.hits(items, *later)))
    expected = [(moment, item["guid"]) for moment, item in model.visits(items, *later)]
    assert [row["content_guid"] for row in sliced] == [guid for _, guid in expected]
    assert sliced and model._hit_log is rendered
    assert json.loads(bytes(model.hits(items, until, until))) == []
    model.hits(items, since - 86_400, until)  # an earlier start: rendered again
    assert model._hit_log is not rendered
    rendered = model._hit_log
    model.overrides["g000"] = 0.0
    assert "g000" not in bytes(model.hits(items, since, until)).decode()  # the visits changed
    assert model._hit_log is not rendered


def test_zipf_rates_leave_a_fifth_unvisited_and_are_deterministic() -> None:
    guids = [f"g{i:03d}" for i in range(100)]
    rates = zipf_rates(guids, 7)
    assert rates == zipf_rates(reversed(guids), 7)
    assert sum(1 for r in rates.values() if r == 0) == 20
    assert sorted(rates.values(), reverse=True)[:3] == [40.0, 20.0, 40.0 / 3]


def test_usage_from_the_hits_endpoint_on_2025_04() -> None:
    with FakeConnect(
        api_keys={ADMIN_KEY: "administrator"}, version="2025.04.0", usage_seed=20
    ) as fake:
        with ConnectClient(fake.url, ADMIN_KEY) as client:
            since, until = window(fake, 7)
            usage = client.usage.visits(since, until, version="2025.04.0")
        assert isinstance(usage, Usage)
        assert usage.source == "hits"
        assert usage.visits == expected(fake, 7)
        assert fake.count("GET", "instrumentation/content/hits") == 1
        assert fake.count("GET", "instrumentation/content/visits") == 0


def test_usage_from_visits_and_shiny_usage_on_an_older_connect_pages_through() -> None:
    with FakeConnect(
        api_keys={ADMIN_KEY: "administrator"}, version="2024.08.0", usage_seed=20
    ) as fake:
        with ConnectClient(fake.url, ADMIN_KEY) as client:
            since, until = window(fake, 7)
            paged = Instrumentation(client.http, page_limit=50)
            usage = paged.visits(since, until, version="2024.08.0")
            modes = {item["guid"]: item["app_mode"] for item in fake.content()}
        assert isinstance(usage, Usage)
        assert usage.source == "visits"
        assert usage.visits == expected(fake, 7)
        assert any(modes[g] in SHINY_MODES for g in usage.visits)
        assert any(modes[g] not in SHINY_MODES for g in usage.visits)
        assert fake.count("GET", "instrumentation/content/hits") == 0
        assert fake.count("GET", "instrumentation/content/visits") > 1  # paged
        assert fake.count("GET", "instrumentation/shiny/usage") >= 1


def test_a_window_counts_only_its_visits() -> None:
    with FakeConnect(api_keys={ADMIN_KEY: "administrator"}, version="2026.01.0") as fake:
        guid = fake.content()[0]["guid"]
        fake.set_usage(guid, 2.0)  # one visit every 12 hours
        with ConnectClient(fake.url, ADMIN_KEY) as client:
            since, until = window(fake, 3)
            usage = client.usage.visits(since, until, version="2026.01.0")
        assert isinstance(usage, Usage)
        assert usage.visits[guid] == 6


@pytest.mark.parametrize(
    ("version", "usage_api", "denied", "status", "reason"),
    [
        ("2024.09.1", False, False, 404, "Connect 2024.09 has no usage API"),
        ("2025.04.0", False, True, 403, "Connect 2025.04 refused the usage API (403"),
        ("2024.08.0", True, True, 403, "Connect 2024.08 refused the usage API (403"),
    ],
)
def test_no_usage_on_404_and_403(
    version: str, usage_api: bool, denied: bool, status: int, reason: str
) -> None:
    with FakeConnect(
        api_keys={ADMIN_KEY: "administrator"}, version=version, usage_api=usage_api
    ) as fake:
        fake.usage_denied = denied
        with ConnectClient(fake.url, ADMIN_KEY) as client:
            since, until = window(fake, 7)
            usage = client.usage.visits(since, until, version=version)
    assert isinstance(usage, NoUsage)
    assert usage.status == status
    assert usage.reason.startswith(reason)


@pytest.mark.parametrize(
    ("version", "label"),
    [("2024.09.1", "Connect 2024.09"), ("2025.4.0", "Connect 2025.04"), (None, "This Connect")],
)
def test_short_version(version: str | None, label: str) -> None:
    assert short_version(version) == label
