"""The Connect simulator's build model over HTTP: cold caches, R+Python items, the build log,
long-tailed durations, the generated seed's options and locked content."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.connect.models import ContentItem
from sim.connect_seed import (
    APP_MODE_LANGUAGE,
    LOCKED_DEMO_MESSAGE,
    LOCKED_DEMO_TITLE,
    Seed,
    demo_seed,
    generated_seed,
    long_tailed_durations,
    make_cache,
    make_content_item,
)
from sim.connect_server import FakeConnect

BUILD = 0.1  # warm build seconds
COLD = 3.0  # cold factor


def item(guid: str, mode: str, r: str | None = None, py: str | None = None) -> dict[str, Any]:
    return make_content_item(guid=guid, title=guid, app_mode=mode, r_version=r, py_version=py)


def seed(caches: list[tuple[str, str]], *items: dict[str, Any]) -> Seed:
    return Seed(caches=[make_cache(lang, version) for lang, version in caches], content=list(items))


ITEMS = (
    item("r-a", "shiny", r="4.3.0"),
    item("r-b", "rmd-static", r="4.3.0"),
    item("py-a", "python-dash", py="3.11.3"),
    item("mixed-rmd", "rmd-static", r="4.3.0", py="3.11.3"),
    item("mixed-qmd", "quarto-static", r="4.3.0", py="3.11.3"),
    item("static", "static"),
)


def fake_connect(*caches: tuple[str, str], **options: Any) -> FakeConnect:
    options.setdefault("build_seconds", BUILD)
    options.setdefault("cold_factor", COLD)
    return FakeConnect(seed=seed(list(caches), *ITEMS), **options)


@pytest.fixture
def cold() -> Iterator[FakeConnect]:
    """Every cache missing."""
    with fake_connect() as server:
        yield server


def api(server: FakeConnect, key: str = "admin-key") -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/__api__", headers={"Authorization": f"Key {key}"}, timeout=30
    )


def start(client: httpx.Client, guid: str) -> str:
    response = client.post(f"/v1/content/{guid}/build", json={})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def wait(client: httpx.Client, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = client.get(f"/v1/tasks/{task_id}", params={"wait": 10}).json()
    assert task["finished"], task
    return task


def build(client: httpx.Client, guid: str) -> dict[str, Any]:
    return wait(client, start(client, guid))


def has_cache(server: FakeConnect, language: str, version: str) -> bool:
    return {"language": language, "version": version, "image_name": "Local"} in server.caches()


def last(server: FakeConnect) -> dict[str, Any]:
    return server.build_log()[-1]


# ------------------------------------------------------------------ cold factor


def test_cold_factor_applies_once_then_the_cache_is_warm(cold: FakeConnect) -> None:
    with api(cold) as client:
        first = build(client, "r-a")
        assert "Installing R packages into the runtime cache ..." in first["output"]
        assert first["code"] == 0
        assert has_cache(cold, "R", "4.3.0")
        entry = last(cold)
        assert entry["cold"] is True and entry["duration"] == pytest.approx(BUILD * COLD)
        assert entry["ended"] - entry["started"] >= BUILD * COLD * 0.95
        assert entry["cold_runtimes"] == [["R", "4.3.0"]] and entry["ok"] is True

        second = build(client, "r-a")
        assert "Found all required R packages in the runtime cache." in second["output"]
        third = build(client, "r-b")  # another item on the now warm runtime
    assert [e["cold"] for e in cold.build_log()] == [True, False, False]
    assert [e["duration"] for e in cold.build_log()[1:]] == [pytest.approx(BUILD)] * 2
    assert "Found all required R packages in the runtime cache." in third["output"]
    assert cold.cold_builds() == ["r-a"]


def test_concurrent_cold_builds_on_one_runtime_all_pay() -> None:
    with fake_connect(build_limit=4) as server, api(server) as client:
        server.set_build_durations({"r-a": 0.2, "r-b": 0.2})
        tasks = [start(client, guid) for guid in ("r-a", "r-b")]
        for task_id in tasks:
            assert (
                "Installing R packages into the runtime cache ..."
                in wait(client, task_id)["output"]
            )
        build(client, "r-a")
        log = server.build_log()
    assert server.cold_builds() == ["r-a", "r-b"]
    assert [(e["guid"], e["cold"]) for e in log] == [("r-a", True), ("r-b", True), ("r-a", False)]
    assert all(e["ended"] - e["started"] >= 0.2 * COLD for e in log[:2])
    # Both ran at once: each started before the other ended.
    assert log[1]["started"] < log[0]["ended"]


def test_a_queued_build_is_cold_or_warm_when_it_leaves_the_queue() -> None:
    # One slot: r-b waits while r-a (cold) runs; r-a repopulates the cache, so r-b starts warm.
    with fake_connect(build_limit=1) as server, api(server) as client:
        first, second = start(client, "r-a"), start(client, "r-b")
        wait(client, first)
        output = wait(client, second)["output"]
    assert output[0] == "Waiting for an available build slot..."
    assert "Found all required R packages in the runtime cache." in output
    assert server.cold_builds() == ["r-a"]
    log = server.build_log()
    assert log[1]["started"] >= log[0]["ended"]
    assert log[1]["duration"] == pytest.approx(BUILD)


def test_a_failed_cold_build_leaves_the_cache_missing(cold: FakeConnect) -> None:
    cold.fail_builds(["r-a"])
    with api(cold) as client:
        assert build(client, "r-a")["code"] == 1
        assert not has_cache(cold, "R", "4.3.0")
        cold.clear_build_failures()
        assert build(client, "r-a")["code"] == 0
    assert [(e["cold"], e["ok"]) for e in cold.build_log()] == [(True, False), (True, True)]
    assert has_cache(cold, "R", "4.3.0")


def test_cold_factor_is_settable_and_defaults_to_one() -> None:
    with fake_connect(cold_factor=1.0) as server, api(server) as client:
        build(client, "py-a")
        assert last(server)["cold"] is True
        assert last(server)["duration"] == pytest.approx(BUILD)
        server.cold_factor = 2.0
        server.set_build_duration("r-a", 0.05)
        build(client, "r-a")
        assert last(server)["duration"] == pytest.approx(0.1)
    assert FakeConnect().cold_factor == 1.0


def test_content_without_a_runtime_is_never_cold(cold: FakeConnect) -> None:
    with api(cold) as client:
        build(client, "static")
    assert cold.cold_builds() == []
    assert last(cold)["cold"] is False and last(cold)["cold_runtimes"] == []


# ------------------------------------------------------------------ R + Python items


def test_a_mixed_item_is_cold_while_either_cache_is_missing_and_repopulates_both() -> None:
    with fake_connect(("R", "4.3.0")) as server, api(server) as client:
        output = build(client, "mixed-rmd")["output"]
        assert last(server)["cold_runtimes"] == [["Python", "3.11.3"]]
        assert has_cache(server, "R", "4.3.0") and has_cache(server, "Python", "3.11.3")
        assert output[0] == "Building R Markdown document..."
        assert output[1].startswith("Bundle requested R version 4.3.0;")
        assert "Performing manifest.json to packrat transformation." in output
        assert any(line.startswith("Bundle requested Python version 3.11.3;") for line in output)
        assert "Found all required R packages in the runtime cache." in output
        assert any(line.startswith("Creating environment: ") for line in output)
        assert "Installing packages from requirements.txt ..." in output
        assert "Completed packrat build against R version: '4.3.0'" in output
        assert "Packages in the environment are up to date." in output
        (job,) = client.get("/v1/content/mixed-rmd/jobs").json()
        assert job["tag"] == "packrat_restore"

        warm = build(client, "mixed-rmd")["output"]
        assert "Found all required R packages in the runtime cache." in warm
        assert any(line.startswith("Using cached environment: ") for line in warm)
        assert last(server)["cold"] is False

        # Now the R cache goes: the mixed item is cold again, on R only.
        response = client.request(
            "DELETE",
            "/v1/system/caches/runtime",
            json={"language": "R", "version": "4.3.0", "image_name": "Local"},
        )
        wait(client, response.json()["task_id"])
        again = build(client, "mixed-rmd")["output"]
        assert "Installing R packages into the runtime cache ..." in again
        assert last(server)["cold_runtimes"] == [["R", "4.3.0"]]
        assert has_cache(server, "R", "4.3.0")
    assert server.cold_builds() == ["mixed-rmd", "mixed-rmd"]


def test_a_python_first_mixed_item_and_single_runtime_items_unchanged() -> None:
    with fake_connect(("R", "4.3.0")) as server, api(server) as client:
        r_only = build(client, "r-a")  # the Python cache is missing, but r-a does not use it
        assert last(server)["cold"] is False
        assert not any("Python" in line for line in r_only["output"])
        output = build(client, "mixed-qmd")["output"]
        (job,) = client.get("/v1/content/mixed-qmd/jobs").json()
    assert job["tag"] == "python_restore"
    assert output[0] == "Building Quarto document..."
    assert output[1].startswith("Bundle requested Python version 3.11.3;")
    assert any(line.startswith("Bundle requested R version 4.3.0;") for line in output)
    assert server.cold_builds() == ["mixed-qmd"]


def test_the_simulator_and_the_bot_agree_on_the_caches_an_item_uses(cold: FakeConnect) -> None:
    # Every cache missing: the caches a build finds cold are all those the item uses.
    cold.cache_delete_seconds, cold.build_seconds = 0.01, 0.02
    with api(cold) as client:
        for data in client.get("/v1/content").json():
            for cache in cold.caches():
                body = {**cache, "dry_run": False}
                task_id = client.request("DELETE", "/v1/system/caches/runtime", json=body).json()
                wait(client, task_id["task_id"])
            build(client, data["guid"])
            bot_view = {(r.language, r.version) for r in ContentItem.from_json(data).runtimes}
            assert {tuple(r) for r in last(cold)["cold_runtimes"]} == bot_view, data["guid"]


# ------------------------------------------------------------------ build log


def test_build_log_lists_running_builds_only_on_request(cold: FakeConnect) -> None:
    cold.set_build_durations({"r-a": 0.2, "py-a": 0.05})
    with api(cold) as client:
        task_id = start(client, "r-a")
        assert cold.build_log() == []
        (running,) = cold.build_log(include_running=True)
        assert running["ended"] is None and running["ok"] is None
        assert running["task_id"] == task_id and running["guid"] == "r-a"
        wait(client, task_id)
        build(client, "py-a")
    log = cold.build_log()
    assert [e["guid"] for e in log] == ["r-a", "py-a"]
    assert set(log[0]) == {
        "guid", "task_id", "started", "ended", "cold", "duration", "cold_runtimes", "ok",
    }  # fmt: skip
    assert [e["duration"] for e in log] == [pytest.approx(0.2 * COLD), pytest.approx(0.05 * COLD)]
    assert all(e["started"] < e["ended"] for e in log)
    assert log[0]["ended"] <= log[1]["started"]


def test_set_build_durations_rejects_negative_and_the_log_clears(cold: FakeConnect) -> None:
    with pytest.raises(ValueError):
        cold.set_build_durations({"r-a": -1.0})
    with pytest.raises(ValueError):
        FakeConnect(cold_factor=0)
    with api(cold) as client:
        build(client, "r-a")
    assert cold.cold_builds() == ["r-a"]
    cold.clear_build_log()
    assert cold.cold_builds() == [] and cold.build_log() == []


# ------------------------------------------------------------------ long-tailed durations


def test_long_tailed_durations_are_deterministic_with_share_and_factor() -> None:
    guids = [f"g{i}" for i in range(200)]
    durations = long_tailed_durations(guids, seed=7, base=2.0, jitter=0.2)
    assert durations == long_tailed_durations(guids, seed=7, base=2.0, jitter=0.2)
    assert durations != long_tailed_durations(guids, seed=8, base=2.0, jitter=0.2)
    assert list(durations) == guids
    tail = {g for g, seconds in durations.items() if seconds > 2.0 * 1.2}
    assert len(tail) == 10  # round(0.05 * 200)
    for guid, seconds in durations.items():
        low, high = (16.0 * 0.8, 16.0 * 1.2) if guid in tail else (2.0 * 0.8, 2.0 * 1.2)
        assert low <= seconds <= high
    untailed = long_tailed_durations(guids, seed=7, base=2.0, tail_share=0.0)
    assert all(
        durations[g] == pytest.approx(untailed[g] * (8.0 if g in tail else 1.0)) for g in guids
    )
    assert long_tailed_durations(["a", "b", "a"], tail_share=0.5).keys() == {"a", "b"}
    flat = list(long_tailed_durations(guids, jitter=0.0, tail_share=0.1, tail_factor=3.0).values())
    assert (flat.count(1.0), flat.count(3.0)) == (180, 20)
    with pytest.raises(ValueError):
        long_tailed_durations(guids, jitter=1.0)


def test_long_tailed_durations_drive_the_simulator(cold: FakeConnect) -> None:
    guids = [i["guid"] for i in ITEMS]
    durations = long_tailed_durations(guids, base=0.05, tail_share=0.2, tail_factor=2.0)
    cold.set_build_durations(durations)
    cold.cold_factor = 1.0
    with api(cold) as client:
        build(client, "static")
    assert last(cold)["duration"] == pytest.approx(durations["static"])


# ------------------------------------------------------------------ generated seed


def digest(data: Seed) -> str:
    payload = [data.caches, data.content, data.owners, data.packages]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def test_generated_seed_defaults_are_unchanged() -> None:
    # Digests computed with the code before `runtimes` and `mixed_share` existed.
    assert digest(generated_seed(7)) == (
        "9cde98cb6e93024445efc95892606544563526c2330a5590afb5522de3c3c70a"
    )
    assert digest(generated_seed(500)) == (
        "b70b0a11c34bee4a28cdcd23bad6711bf982b9918f89641900073cee51d913b5"
    )
    assert digest(generated_seed(500, seed=3)) == (
        "cbc7b5128c59ddd3c40e8f5c2874857fb30f06cc76cab87c150e6732b2d45309"
    )
    first = generated_seed(500).content[0]
    assert (first["guid"], first["app_mode"], first["py_version"]) == (
        "67a9c378-7c65-41e5-82e2-e662f728b4fa",
        "jupyter-static",
        "3.9.5",
    )
    assert digest(generated_seed(500, mixed_share=0.0, runtimes=None)) == digest(
        generated_seed(500)
    )


def test_generated_seed_mixed_items() -> None:
    plain = generated_seed(500, seed=2)
    mixed = generated_seed(500, seed=2, mixed_share=0.2)
    assert mixed.content == generated_seed(500, seed=2, mixed_share=0.2).content
    both = [i for i in mixed.content if i["r_version"] and i["py_version"]]
    assert len(both) == 100
    changed = [a for a, b in zip(plain.content, mixed.content, strict=True) if a != b]
    assert len(changed) == 100  # the other items are the default ones
    assert {i["guid"] for i in both} == {i["guid"] for i in changed}
    for data in both:
        assert data["app_mode"] in {
            "rmd-static",
            "quarto-shiny",
            "shiny",
            "rmd-shiny",
            "quarto-static",
        }
        # The runtime drawn for the item is its app mode's language.
        drawn = next(b for b in plain.content if b["guid"] == data["guid"])
        language = "R" if drawn["r_version"] else "Python"
        assert APP_MODE_LANGUAGE[data["app_mode"]] == language
        assert data["quarto_version"] == (
            "1.4.550" if data["app_mode"].startswith("quarto") else None
        )
        assert data["r_environment_management"] and data["py_environment_management"]
        assert len(ContentItem.from_json(data).runtimes) == 2
    cached = {(c["language"], c["version"]) for c in mixed.caches}
    used = {("R", i["r_version"]) for i in mixed.content if i["r_version"]}
    used |= {("Python", i["py_version"]) for i in mixed.content if i["py_version"]}
    assert used <= cached


def test_generated_seed_with_runtimes() -> None:
    runtimes = [
        ("R", "4.4.1", ("shiny", "rmd-static")),
        ("R", "4.3.3", ("api",)),
        ("R", "4.2.3", ("shiny",)),
        ("Python", "3.12.4", ("python-fastapi", "quarto-static")),
        ("Python", "3.11.9", ("python-dash",)),
        ("Python", "3.10.14", ("jupyter-static",)),
    ]
    data = generated_seed(300, seed=5, runtimes=runtimes, mixed_share=0.1)
    assert data.caches == [make_cache(lang, version) for lang, version, _ in runtimes]
    assert digest(data) == digest(generated_seed(300, seed=5, runtimes=runtimes, mixed_share=0.1))
    used = {("R", i["r_version"]) for i in data.content if i["r_version"]}
    used |= {("Python", i["py_version"]) for i in data.content if i["py_version"]}
    assert used == {(lang, version) for lang, version, _ in runtimes}
    assert sum(1 for i in data.content if i["r_version"] and i["py_version"]) == 30
    with pytest.raises(ValueError):
        generated_seed(10, runtimes=runtimes[:3], mixed_share=0.5)  # no Python to mix with
    with pytest.raises(ValueError):
        generated_seed(10, runtimes=[("Julia", "1.10", ("static",))])
    with FakeConnect(seed=data, build_seconds=0.01) as server, api(server) as client:
        mixed_guid = next(i["guid"] for i in data.content if i["r_version"] and i["py_version"])
        build(client, mixed_guid)
    assert server.cold_builds() == []


# ------------------------------------------------------------------ locked content


def test_a_build_of_locked_content_is_refused() -> None:
    with FakeConnect(seed=demo_seed(locked=True), build_seconds=0.05) as server:
        locked = next(i for i in server.content() if i["title"] == LOCKED_DEMO_TITLE)
        assert locked["locked"] is True and locked["locked_message"] == LOCKED_DEMO_MESSAGE
        with api(server) as client:
            response = client.post(f"/v1/content/{locked['guid']}/build", json={})
            assert response.status_code == 400, response.text
            assert response.json() == {
                "code": 222,
                "error": "The content is locked and cannot be built.",
                "payload": None,
            }
            refused = client.post(
                f"/v1/content/{locked['guid']}/build", json={"bundle_id": locked["bundle_id"]}
            )
            assert refused.status_code == 400 and refused.json()["code"] == 222
            assert client.get(f"/v1/content/{locked['guid']}/jobs").json() == []
            assert server.builds_started() == [] and server.tasks() == []
            assert server.build_log(include_running=True) == []

            server.set_locked(locked["guid"], locked=False)
            assert build(client, locked["guid"])["code"] == 0
            other = next(i for i in server.content() if i["app_mode"] == "python-fastapi")
            server.set_locked(other["guid"], "Frozen")
            assert client.post(f"/v1/content/{other['guid']}/build").json()["code"] == 222
    assert server.builds_started() == [locked["guid"]]
