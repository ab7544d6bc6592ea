"""The Connect service layer against the simulator, over HTTP on loopback."""

from __future__ import annotations

import logging
import time

import pytest

from bot.connect import ConnectClient, ConnectError, ContentFilter, RuntimeCache, VersionFilter
from bot.sim.connect_server import FakeConnect
from tests.conftest import ADMIN_KEY, PUBLISHER_KEY


def test_server_settings_and_admin_verdict(connect: ConnectClient, fake_connect: FakeConnect):
    settings = connect.server_settings()
    assert settings.version
    assert settings.runtime_cache_management is True
    assert connect.current_user().is_admin
    publisher = ConnectClient(fake_connect.url, PUBLISHER_KEY)
    assert publisher.current_user().user_role == "publisher"
    assert not publisher.current_user().is_admin


def test_every_request_carries_key_user_agent(connect: ConnectClient, fake_connect: FakeConnect):
    connect.caches.list()
    record = fake_connect.requests[-1]
    assert record.headers["authorization"] == f"Key {ADMIN_KEY}"
    assert record.headers["user-agent"].startswith("connect-bot/")


def test_bad_key_error_carries_code_and_never_the_key(fake_connect: FakeConnect):
    client = ConnectClient(fake_connect.url, "not-a-real-key-123")
    with pytest.raises(ConnectError) as info:
        client.caches.list()
    error = info.value
    assert (error.status, error.code) == (401, 30)
    assert error.path.endswith("v1/system/caches/runtime")
    assert "not-a-real-key-123" not in str(error) and "not-a-real-key-123" not in repr(error)
    assert "not-a-real-key-123" not in repr(client)


def test_non_admin_key_gets_code_22(fake_connect: FakeConnect):
    with pytest.raises(ConnectError) as info:
        ConnectClient(fake_connect.url, PUBLISHER_KEY).caches.list()
    assert (info.value.status, info.value.code) == (403, 22)


def test_dry_run_keeps_the_cache_real_delete_removes_it(
    connect: ConnectClient, fake_connect: FakeConnect
):
    target = RuntimeCache("python", "3.11.3", "Local")
    dry = connect.caches.delete(target, dry_run=True)
    assert dry.task_id is None
    assert dry.cache.language == "Python"  # Connect's own capitalisation
    assert any(c["version"] == "3.11.3" for c in fake_connect.caches())

    real = connect.caches.delete(target, dry_run=False)
    assert real.task_id
    task = connect.tasks.follow(real.task_id)
    assert task.succeeded
    assert task.output == ["Deleting runtime cache...", "Successfully deleted runtime cache"]
    assert not any(
        c["version"] == "3.11.3" and c["image_name"] == "Local" for c in fake_connect.caches()
    )
    body = [r for r in fake_connect.requests if r.method == "DELETE"][-1].json
    assert body == {
        "language": "python",
        "version": "3.11.3",
        "image_name": "Local",
        "dry_run": False,
    }


def test_missing_cache_is_404_code_4(connect: ConnectClient):
    with pytest.raises(ConnectError) as info:
        connect.caches.delete(RuntimeCache("R", "9.9.9"), dry_run=True)
    assert (info.value.status, info.value.code, info.value.error) == (
        404,
        4,
        "Cache does not exist",
    )


def test_failed_build_task_is_reported_as_failure(
    connect: ConnectClient, fake_connect: FakeConnect
):
    guid = next(i["guid"] for i in fake_connect.content() if i["bundle_id"])
    fake_connect.fail_builds([guid], error="Cannot find compatible environment")
    task = connect.tasks.follow(connect.content.build(guid))
    assert task.finished and not task.succeeded
    assert task.code != 0
    assert "Cannot find compatible environment" in task.failure_reason


def test_long_poll_returns_promptly_when_the_task_ends(
    connect: ConnectClient, fake_connect: FakeConnect
):
    guid = next(i["guid"] for i in fake_connect.content() if i["bundle_id"])
    fake_connect.set_build_duration(guid, 0.5)
    task_id = connect.content.build(guid)
    before = fake_connect.count("GET", r"/v1/tasks/")
    started = time.monotonic()
    task = connect.tasks.follow(task_id, wait=20)
    elapsed = time.monotonic() - started
    assert task.succeeded
    assert elapsed < 2.0  # the server released the poll when the build ended, not after 20 s
    assert fake_connect.count("GET", r"/v1/tasks/") - before == 1


def test_content_search_filters_like_rsconnect(connect: ConnectClient, fake_connect: FakeConnect):
    everything = connect.content.list()
    assert len(everything) == len(fake_connect.content())
    published = connect.content.search(ContentFilter(published=True))
    assert published and all(i.bundle_id is not None for i in published)
    assert {i.guid for i in published} == {
        i["guid"] for i in fake_connect.content() if i["bundle_id"] is not None
    }
    unpublished = connect.content.search(ContentFilter(published=False))
    assert unpublished and all(i.bundle_id is None for i in unpublished)
    modern = connect.content.search(ContentFilter(py_version=VersionFilter.parse(">=3.10")))
    assert modern and all(i.py_version and i.py_version >= "3.10" for i in modern)
    shiny = connect.content.search(ContentFilter(content_types=frozenset({"shiny"})))
    assert shiny and all(i.app_mode == "shiny" for i in shiny)


def test_gets_retry_gateway_errors_but_posts_do_not(fake_connect: FakeConnect):
    client = ConnectClient(fake_connect.url, ADMIN_KEY, backoff=0.001, retries=6)
    fake_connect.inject_faults(error_rate=0.5, status=502, seed=7)
    for _ in range(5):
        assert client.caches.list()
    gets = fake_connect.count("GET", r"/v1/system/caches/runtime")
    assert gets > 5  # some were retried

    guid = next(i["guid"] for i in fake_connect.content() if i["bundle_id"])
    fake_connect.inject_faults(error_rate=1.0, status=502, paths=r"/build$")
    with pytest.raises(ConnectError) as info:
        client.content.build(guid)
    assert info.value.status == 502
    assert fake_connect.count("POST", r"/build$") == 1
    assert fake_connect.builds_started() == []


def test_connection_refused_is_a_clear_error():
    client = ConnectClient("http://127.0.0.1:9", ADMIN_KEY, retries=1, backoff=0.001)
    with pytest.raises(ConnectError) as info:
        client.caches.list()
    assert info.value.status is None and info.value.transient
    assert "Could not reach Connect" in str(info.value)


def test_sticky_session_cookie_is_kept_for_task_polls(fake_connect: FakeConnect):
    sticky = FakeConnect(
        api_keys={ADMIN_KEY: "administrator"}, sticky_sessions=True, cache_delete_seconds=0.1
    )
    with sticky:
        client = ConnectClient(sticky.url, ADMIN_KEY)
        answer = client.caches.delete(RuntimeCache("R", "4.3.0"), dry_run=False)
        assert client.tasks.follow(answer.task_id).succeeded


def test_connect_calls_are_logged_without_the_key(connect: ConnectClient, caplog):
    with caplog.at_level(logging.INFO, logger="bot.connect"):
        connect.caches.list()
    record = caplog.records[-1]
    assert record.event == "connect_call" and record.status == 200
    assert record.path == "/__api__/v1/system/caches/runtime"
    assert ADMIN_KEY not in caplog.text


def test_content_list_is_streamed_and_retried_before_the_first_item(
    connect: ConnectClient, fake_connect: FakeConnect
):
    fake_connect.inject_faults(error_rate=0.6, status=503, paths=r"/v1/content$", seed=3)
    items = connect.content.list()
    assert [i.guid for i in items] == [i["guid"] for i in fake_connect.content()]
    assert fake_connect.count("GET", r"/v1/content$") > 1
