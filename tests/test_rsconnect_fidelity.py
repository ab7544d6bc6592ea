"""The real `rsconnect` CLI against the fake Connect server: the simulator must satisfy it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.connect_server import FakeConnect

RSCONNECT = Path(sys.executable).parent / "rsconnect"
KEYS = {"admin-key": "administrator", "pub-key": "publisher"}

pytestmark = pytest.mark.skipif(not RSCONNECT.exists(), reason="rsconnect CLI not installed")


@pytest.fixture
def fake() -> Iterator[FakeConnect]:
    with FakeConnect(api_keys=KEYS, build_seconds=0.2, cache_delete_seconds=0.1) as server:
        yield server


@pytest.fixture
def rsconnect_env(tmp_path: Path) -> dict[str, str]:
    """An environment where rsconnect cannot touch the user's files or saved servers."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CONNECT_", "RSCONNECT_", "XDG_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        CONNECT_CONTENT_BUILD_DIR=str(tmp_path / "rsconnect-build"),
        RSCONNECT_DISABLE_VERSION_CHECK="1",
        PYTHONWARNINGS="ignore",
    )
    return env


def run(
    env: dict[str, str], server: FakeConnect, *args: str, key: str = "admin-key"
) -> subprocess.CompletedProcess[str]:
    command = [str(RSCONNECT), *args, "--server", server.url, "--api-key", key]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def published(server: FakeConnect) -> list[dict[str, Any]]:
    return [item for item in server.content() if item["bundle_id"] is not None]


def test_caches_list_prints_the_caches_json(fake: FakeConnect, rsconnect_env: dict[str, str]):
    result = run(rsconnect_env, fake, "system", "caches", "list")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"caches": fake.caches()}
    # rsconnect validated the server and key first.
    assert fake.count("GET", r"^/__api__/server_settings$") == 1
    assert fake.count("GET", r"^/__api__/v1/user$") == 1


def test_caches_delete_dry_run(fake: FakeConnect, rsconnect_env: dict[str, str]) -> None:
    result = run(
        rsconnect_env,
        fake,
        "system",
        "caches",
        "delete",
        "-l",
        "python",
        "-V",
        "3.11.3",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert "Dry run finished" in result.stdout
    assert {"language": "Python", "version": "3.11.3", "image_name": "Local"} in fake.caches()
    delete = next(r for r in fake.requests if r.method == "DELETE")
    assert delete.json == {
        "language": "python",
        "version": "3.11.3",
        "image_name": "Local",
        "dry_run": True,
    }


def test_caches_delete_for_real(fake: FakeConnect, rsconnect_env: dict[str, str]) -> None:
    result = run(rsconnect_env, fake, "system", "caches", "delete", "-l", "python", "-V", "3.11.3")
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert "Deleting runtime cache..." in log
    assert "Successfully deleted runtime cache" in log
    assert {"language": "Python", "version": "3.11.3", "image_name": "Local"} not in fake.caches()
    # rsconnect long-polled the task with wait=1.
    polls = [r for r in fake.requests if r.path.startswith("/__api__/v1/tasks/")]
    assert polls and all(r.query.get("wait") == "1" for r in polls)


def test_caches_delete_missing_cache_fails(fake: FakeConnect, rsconnect_env: dict[str, str]):
    result = run(rsconnect_env, fake, "system", "caches", "delete", "-l", "R", "-V", "9.9.9")
    assert result.returncode == 1
    assert "Cache does not exist" in result.stdout + result.stderr


def test_caches_delete_with_sticky_sessions(rsconnect_env: dict[str, str]) -> None:
    # rsconnect keeps the session cookie, so task polls reach the node running the task.
    with FakeConnect(sticky_sessions=True, cache_delete_seconds=0.1) as server:
        result = run(rsconnect_env, server, "system", "caches", "delete", "-l", "R", "-V", "4.3.0")
        assert result.returncode == 0, result.stderr
        assert "Successfully deleted runtime cache" in result.stdout + result.stderr
        assert {"language": "R", "version": "4.3.0", "image_name": "Local"} not in server.caches()
        assert all(r.status != 404 for r in server.requests)


def test_non_admin_and_bad_keys(fake: FakeConnect, rsconnect_env: dict[str, str]) -> None:
    publisher = run(rsconnect_env, fake, "system", "caches", "list", key="pub-key")
    assert publisher.returncode == 1
    assert "You don't have permission to perform this operation." in (
        publisher.stdout + publisher.stderr
    )
    bad = run(rsconnect_env, fake, "system", "caches", "list", key="wrong-key")
    assert bad.returncode == 1
    assert "The specified API key is not valid." in bad.stdout + bad.stderr


def test_content_search_published(fake: FakeConnect, rsconnect_env: dict[str, str]) -> None:
    result = run(rsconnect_env, fake, "content", "search", "--published")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [item["guid"] for item in found] == [item["guid"] for item in published(fake)]
    assert len(found) < len(fake.content())  # the demo seed has unpublished items too


def test_content_build_with_parallelism_and_failures(
    fake: FakeConnect, rsconnect_env: dict[str, str], tmp_path: Path
) -> None:
    items = published(fake)[:5]
    guids = [item["guid"] for item in items]
    failing = guids[1]
    fake.fail_builds([failing])
    guid_args = [arg for guid in guids for arg in ("-g", guid)]

    added = run(rsconnect_env, fake, "content", "build", "add", *guid_args)
    assert added.returncode == 0, added.stderr

    built = run(rsconnect_env, fake, "content", "build", "run", "--parallelism", "2")
    assert built.returncode == 1, built.stderr  # one failure makes the run fail
    assert f"Build failed: {failing}" in built.stderr
    assert "Success = 4, Error = 1" in built.stderr

    assert sorted(fake.builds_started()) == sorted(guids)
    assert fake.max_concurrent_builds_seen() <= 2
    posts = [r for r in fake.requests if r.method == "POST"]
    assert {r.json["bundle_id"] for r in posts} == {item["bundle_id"] for item in items}

    listing = run(rsconnect_env, fake, "content", "build", "ls")
    statuses = {item["guid"]: item for item in json.loads(listing.stdout)}
    for guid in guids:
        expected = "ERROR" if guid == failing else "COMPLETE"
        assert statuses[guid]["rsconnect_build_status"] == expected
    failed_task = statuses[failing]["rsconnect_build_task_result"]
    assert failed_task["code"] == 1
    assert failed_task["result"]["type"] == "build-failed-error"
    assert (tmp_path / "rsconnect-build").is_dir()
