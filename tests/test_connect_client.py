"""The Connect service layer against the simulator, over HTTP on loopback."""

from __future__ import annotations

import logging
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.connect import (
    ConnectClient,
    ConnectError,
    ContentFilter,
    Job,
    NotSent,
    RuntimeCache,
    ServerProbe,
    VersionFilter,
)
from bot.connect.models import parse_time
from bot.connect.retry import RetryPolicy, parse_retry_after
from bot.connect.versions import parse_version
from sim.connect_server import FakeConnect
from sim.process import free_port
from tests.conftest import ADMIN_KEY, PUBLISHER_KEY


def test_server_settings_and_admin_verdict(connect: ConnectClient, fake_connect: FakeConnect):
    settings = connect.server_settings()
    assert settings.version == fake_connect.version
    assert settings.runtime_cache_management is True
    assert connect.current_user().is_admin
    publisher = ConnectClient(fake_connect.url, PUBLISHER_KEY)
    assert publisher.current_user().user_role == "publisher"
    assert not publisher.current_user().is_admin


def test_users_get_gives_a_content_owner_with_email(
    connect: ConnectClient, fake_connect: FakeConnect
):
    raw = fake_connect.content()[0]
    item = connect.content.get(raw["guid"])
    assert item.owner_guid == raw["owner_guid"]  # kept from the content list too
    assert {i.owner_guid for i in connect.content.list()} == {
        i["owner_guid"] for i in fake_connect.content()
    }
    owner = connect.users.get(raw["owner_guid"])
    assert owner.guid == raw["owner_guid"]
    assert owner.username and owner.email.endswith("@connect.example")
    assert fake_connect.requests[-1].path == f"/__api__/v1/users/{raw['owner_guid']}"
    me = connect.current_user()
    assert connect.users.get(me.guid).username == me.username
    with pytest.raises(ConnectError) as info:
        connect.users.get("00000000-0000-0000-0000-000000000000")
    assert info.value.not_found and info.value.code == 4
    with pytest.raises(ConnectError):
        connect.users.get("../v1/user")  # quoted into one path segment: no such user
    # Server.HideEmailAddresses: a non-admin key gets no email; an admin key still does.
    publisher = ConnectClient(fake_connect.url, PUBLISHER_KEY)
    assert publisher.users.get(owner.guid).email == owner.email
    fake_connect.hide_email_addresses = True
    assert publisher.users.get(owner.guid).email == ""
    assert connect.users.get(owner.guid).email == owner.email


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


def test_a_running_build_is_listed_as_an_active_restore_job(
    connect: ConnectClient, fake_connect: FakeConnect
):
    guid = next(i["guid"] for i in fake_connect.content() if i["bundle_id"] and i["py_version"])
    assert connect.jobs.list(guid) == []
    task_id = connect.content.build(guid)
    (job,) = connect.jobs.list(guid)
    assert job.active and job.restores and job.tag == "python_restore"
    assert job.start_time is not None and job.start_time.tzinfo is UTC
    assert abs((datetime.now(UTC) - job.start_time).total_seconds()) < 5
    assert (job.end_time, job.exit_code) == (None, None)
    assert connect.tasks.follow(task_id).succeeded
    (done,) = connect.jobs.list(guid)
    assert (done.key, done.active, done.succeeded, done.exit_code) == (job.key, False, True, 0)
    with pytest.raises(ConnectError) as info:
        connect.jobs.list("no-such-guid")
    assert info.value.not_found


@pytest.mark.parametrize(
    ("raw", "active", "succeeded", "reason"),
    [
        ({"status": 0, "exit_code": None}, True, False, "exited with status None"),
        ({"status": 1, "exit_code": 0}, False, True, ""),
        ({"status": 2, "exit_code": 1}, False, False, "(Connect job k1) exited with status 1"),
        ({"status": 1, "exit_code": 2, "error": "out of memory"}, False, False, "out of memory"),
        ({"status": 3, "exit_code": None}, False, False, "Connect skipped the build (job k1)"),
    ],
)
def test_job_states(raw, active, succeeded, reason):
    job = Job.from_json({"key": "k1", "tag": "packrat_restore", **raw})
    assert (job.active, job.succeeded, job.restores) == (active, succeeded, True)
    assert reason in job.failure_reason if reason else job.failure_reason == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-12-05T16:22:51Z", datetime(2024, 12, 5, 16, 22, 51, tzinfo=UTC)),
        ("2023-07-24T18:49:28.584906476Z", datetime(2023, 7, 24, 18, 49, 28, 584906, tzinfo=UTC)),
        ("2024-12-05T17:22:51+01:00", datetime(2024, 12, 5, 16, 22, 51, tzinfo=UTC)),
        ("2024-12-05T16:22:51", datetime(2024, 12, 5, 16, 22, 51, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected


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


# ------------------------------------------------------------------ retries (tenacity policy)


class Sleeps(list[float]):
    """An injected sleep: records what was asked, and ends the faults after `heal_after` calls."""

    def __init__(self, fake: FakeConnect | None = None, heal_after: int | None = None) -> None:
        super().__init__()
        self.fake, self.heal_after = fake, heal_after

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.fake is not None and self.heal_after is not None and len(self) >= self.heal_after:
            self.fake.clear_faults()


IN_5_SECONDS = "<an HTTP-date 5 s from now>"  # made when the test runs, not when collected


def _http_date(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def _closed_port() -> int:
    """Nobody listens there: below the ephemeral range, so no port-0 bind takes it meanwhile."""
    return free_port()


CALLS: dict[str, tuple[str, Callable[[ConnectClient], object]]] = {
    "request": (r"/v1/system/caches/runtime$", lambda c: c.caches.list()),
    "stream": (r"/v1/content$", lambda c: c.content.list()),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(
    ("status", "retry_after", "low", "high"),
    [
        (503, "2", 2.0, 2.0),  # seconds form, honoured exactly
        (429, "3", 3.0, 3.0),  # 429 is retried too, for idempotent requests
        (429, "0.5", 0.5, 0.5),
        (429, "3600", 30.0, 30.0),  # capped at RetryPolicy.retry_after_cap
        (503, IN_5_SECONDS, 3.5, 5.5),  # HTTP-date form
        (429, None, 0.005, 0.01),  # no header: our own backoff (0.01 base, jittered)
        (503, "soon", 0.005, 0.01),  # unreadable header: our own backoff
        (502, "7", 0.005, 0.01),  # Retry-After only counts on 429/503
        (504, None, 0.005, 0.01),
    ],
)
def test_idempotent_calls_retry_and_honour_retry_after(
    fake_connect: FakeConnect, call: str, status: int, retry_after: str | None, low, high
):
    path, run = CALLS[call]
    if retry_after == IN_5_SECONDS:
        retry_after = _http_date(5)
    sleeps = Sleeps(fake_connect, heal_after=1)
    client = ConnectClient(fake_connect.url, ADMIN_KEY, backoff=0.01, sleep=sleeps)
    fake_connect.inject_faults(error_rate=1.0, status=status, paths=path, retry_after=retry_after)
    assert run(client)
    assert len(sleeps) == 1 and low <= sleeps[0] <= high
    assert fake_connect.count("GET", path) == 2


@pytest.mark.parametrize(
    ("status", "retry_after"), [(502, None), (503, "1"), (504, None), (429, "1"), (0, None)]
)
@pytest.mark.parametrize(
    ("name", "method", "path", "sent"),
    [
        ("build", "POST", r"/build$", 1),  # may have started a build: never repeated
        ("delete", "DELETE", r"/caches/runtime$", 1),  # a real deletion: never repeated
        ("dry_run", "DELETE", r"/caches/runtime$", 2),  # a dry run changes nothing: retried
    ],
)
def test_only_idempotent_requests_are_retried(
    fake_connect: FakeConnect, status, retry_after, name, method, path, sent
):
    sleeps = Sleeps(fake_connect, heal_after=1)
    client = ConnectClient(fake_connect.url, ADMIN_KEY, backoff=0.01, sleep=sleeps)
    guid = next(i["guid"] for i in fake_connect.content() if i["bundle_id"])
    calls = {
        "build": lambda: client.content.build(guid),
        "delete": lambda: client.caches.delete(RuntimeCache("R", "4.3.0"), dry_run=False),
        "dry_run": lambda: client.caches.delete(RuntimeCache("R", "4.3.0"), dry_run=True),
    }
    if status:
        fake_connect.inject_faults(
            error_rate=1.0, status=status, paths=path, retry_after=retry_after
        )
    else:
        fake_connect.inject_faults(reset_rate=1.0, paths=path)  # the connection drops
    if sent == 1:
        with pytest.raises(ConnectError) as info:
            calls[name]()
        assert info.value.status == (status or None)
        assert sleeps == []
    else:
        assert calls[name]().task_id is None
        assert len(sleeps) == 1
    assert fake_connect.count(method, path) == sent
    assert fake_connect.builds_started() == []


def test_a_get_retries_502_then_succeeds_and_logs_every_attempt(fake_connect: FakeConnect, caplog):
    sleeps = Sleeps(fake_connect, heal_after=2)
    client = ConnectClient(fake_connect.url, ADMIN_KEY, backoff=0.01, sleep=sleeps)
    fake_connect.inject_faults(error_rate=1.0, status=502, paths=r"/caches/runtime$")
    with caplog.at_level(logging.INFO, logger="bot.connect"):
        caches = client.caches.list()
    assert {c.version for c in caches} == {c["version"] for c in fake_connect.caches()}
    calls = [r for r in caplog.records if getattr(r, "event", None) == "connect_call"]
    assert [(r.attempt, r.status) for r in calls] == [(1, 502), (2, 502), (3, 200)]
    assert len(sleeps) == 2 and sleeps[1] >= 0.01  # exponential: 0.01 * 2 * [0.5, 1]


@pytest.mark.parametrize(
    ("retries", "retry_seconds", "retry_after", "expected_sleeps"),
    [
        (4, None, "2", [2.0] * 4),  # default: the attempt count decides
        (100, 5.0, "2", [2.0, 2.0]),  # a third wait would end at 6 s, past the 5 s budget
        (100, 1.0, "2", []),  # the first wait already overruns the budget
        (1, 60.0, "2", [2.0]),  # whichever limit comes first
        (None, 7.0, "3", [3.0, 3.0]),  # budget only, no count
    ],
)
def test_the_time_budget_stops_retrying(
    fake_connect: FakeConnect, retries, retry_seconds, retry_after, expected_sleeps
):
    sleeps = Sleeps()
    client = ConnectClient(
        fake_connect.url,
        ADMIN_KEY,
        retries=retries,
        retry_seconds=retry_seconds,
        backoff=0.01,
        sleep=sleeps,
    )
    fake_connect.inject_faults(error_rate=1.0, status=503, retry_after=retry_after)
    with pytest.raises(ConnectError) as info:
        client.caches.list()
    assert (info.value.status, info.value.retry_after) == (503, float(retry_after))
    assert sleeps == expected_sleeps
    assert fake_connect.count("GET", r"/caches/runtime$") == len(expected_sleeps) + 1


def test_connection_refused_is_not_sent_and_retried():
    sleeps = Sleeps()
    client = ConnectClient(f"http://127.0.0.1:{_closed_port()}", ADMIN_KEY, retries=2, sleep=sleeps)
    with pytest.raises(NotSent) as info:
        client.caches.list()
    assert info.value.status is None and info.value.transient
    assert len(sleeps) == 2
    with pytest.raises(NotSent):
        client.content.build("some-guid")  # never left: safe for the caller to send again
    assert len(sleeps) == 2  # ...but not retried here


class _Body(httpx.SyncByteStream):
    """A 200 answer whose body breaks off after `chunks`."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection lost")


@pytest.mark.parametrize(
    ("first_body", "calls", "got"),
    [
        ([b"[", b'{"guid": '], 2, ["a", "b"]),  # broke before the first element: retried
        ([b'[{"guid": "x"},', b'{"gu'], 1, ["x"]),  # one element was handed out: not retried
    ],
)
def test_a_stream_is_retried_only_before_its_first_element(first_body, calls, got):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, stream=_Body(first_body))
        return httpx.Response(200, json=[{"guid": "a"}, {"guid": "b"}])

    sleeps = Sleeps()
    client = ConnectClient(
        "http://connect.test", ADMIN_KEY, transport=httpx.MockTransport(handler), sleep=sleeps
    )
    out: list[str] = []
    if calls == 1:
        with pytest.raises(ConnectError) as info:
            out.extend(raw["guid"] for raw in client.http.stream_array("v1/content"))
        assert not isinstance(info.value, NotSent) and "ReadError" in str(info.value)
    else:
        out.extend(raw["guid"] for raw in client.http.stream_array("v1/content"))
    assert out == got
    assert len(seen) == calls and len(sleeps) == calls - 1


@pytest.mark.parametrize(
    "first_body",
    [
        [b"[", b'{"content_guid": '],  # broken before the first value
        [b'[{"content_guid": "x"},', b'{"con'],  # and past it: nothing was handed out yet
    ],
)
def test_count_strings_is_retried_whole_when_the_stream_breaks(first_body):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, stream=_Body(first_body))
        return httpx.Response(200, json=[{"content_guid": g} for g in "aba"])

    sleeps = Sleeps()
    client = ConnectClient(
        "http://connect.test", ADMIN_KEY, transport=httpx.MockTransport(handler), sleep=sleeps
    )
    assert client.http.count_strings("v1/hits", "content_guid") == {"a": 2, "b": 1}
    assert len(seen) == 2 and len(sleeps) == 1


@pytest.mark.parametrize(
    ("body", "got"),
    [
        (b"[]", {}),
        (b' [{"g": "a"}, {"g": {"x": 1}}, {"g": "a"}, {"g": [1]}, {}, {"g": 2}]', {"a": 2}),
        (b'[{"g": [1]}, {"g": "b"}]', {"b": 1}),  # the first value not a string
    ],
)
def test_count_strings_counts_only_string_values(body, got):
    handler = lambda request: httpx.Response(200, content=body)  # noqa: E731
    client = ConnectClient("http://connect.test", ADMIN_KEY, transport=httpx.MockTransport(handler))
    assert client.http.count_strings("v1/hits", "g") == got


@pytest.mark.parametrize(
    "body", [b'[{"g": "a"}, {"g": "a"', b'[{"g": "a"}, {"g": "a"}} ', b'{"g": "a"}', b"nope", b""]
)
def test_count_strings_refuses_what_is_not_a_whole_array(body):
    handler = lambda request: httpx.Response(200, content=body)  # noqa: E731
    client = ConnectClient("http://connect.test", ADMIN_KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectError) as info:
        client.http.count_strings("v1/hits", "g")
    assert info.value.malformed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", None),
        ("nan", None),
        ("", None),
        (None, None),
        ("next tuesday", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_parse_retry_after(value, expected):
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    ("policy", "attempt", "retry_after", "low", "high"),
    [
        (RetryPolicy(backoff=0.5), 1, None, 0.25, 0.5),
        (RetryPolicy(backoff=0.5), 3, None, 1.0, 2.0),
        (RetryPolicy(backoff=0.5, cap=10.0), 12, None, 5.0, 10.0),  # capped
        (RetryPolicy(backoff=0.5), 1, 4.0, 4.0, 4.0),
        (RetryPolicy(backoff=0.5), 4, 0.0, 2.0, 4.0),  # never shorter than our backoff
        (RetryPolicy(retry_after_cap=20.0), 1, 99.0, 20.0, 20.0),
    ],
)
def test_retry_policy_delay(policy: RetryPolicy, attempt, retry_after, low, high):
    for _ in range(20):
        assert low <= policy.delay(attempt, retry_after) <= high


def test_retry_policy_budget_on_an_injected_clock():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    def fail(attempt: int) -> None:
        now[0] += 1.0  # each try takes a second on this clock
        raise ConnectError("down", method="GET", path="x", retry_after=2.0)

    told: list[int] = []
    policy = RetryPolicy(attempts=None, max_seconds=10.0)
    retrying = policy.retrying(
        retry_on=lambda exc: True,
        sleep=sleep,
        clock=lambda: now[0],
        before_sleep=lambda state: told.append(state.attempt_number),
    )
    with pytest.raises(ConnectError):
        for attempt in retrying:
            with attempt:
                fail(attempt.retry_state.attempt_number)
    # Tries end at 1, 4, 7 s; a wait from 10 s would end past the 10 s budget.
    assert sleeps == [2.0, 2.0, 2.0] and told == [1, 2, 3]
    assert now[0] == 10.0


def test_retry_policy_defaults_and_validation():
    assert RetryPolicy.from_retries(4, 0.5) == RetryPolicy(attempts=5, backoff=0.5)
    assert RetryPolicy().max_seconds is None
    client = ConnectClient("http://connect.test", ADMIN_KEY, retries=2, backoff=0.01)
    assert (client.http.retries, client.http.backoff) == (2, 0.01)
    assert client.http.retry_policy == RetryPolicy(attempts=3, backoff=0.01)
    assert client.retry_seconds is None
    assert ConnectClient("http://connect.test", ADMIN_KEY, retry_seconds=600).retry_seconds == 600
    for bad in ({"attempts": None}, {"attempts": 0}, {"max_seconds": -1.0}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)


# ------------------------------------------------------------------ probe


def test_probe_a_reachable_server(fake_connect: FakeConnect):
    client = ConnectClient(fake_connect.url, ADMIN_KEY)
    assert client.probe() == ServerProbe(reachable=True, version=fake_connect.version, error=None)
    assert client.probe().version == client.server_settings().version


def test_probe_a_closed_port_never_raises_nor_shows_the_key():
    client = ConnectClient(f"http://127.0.0.1:{_closed_port()}", ADMIN_KEY, sleep=Sleeps())
    started = time.monotonic()
    probe = client.probe(timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert not probe.reachable and probe.version is None
    assert probe.error and "Could not reach Connect" in probe.error
    assert ADMIN_KEY not in probe.error


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"error_rate": 1.0, "status": 503, "retry_after": "1"}, "HTTP 503"),
        ({"latency": 1.5}, "ReadTimeout"),
        ({"reset_rate": 1.0}, "Could not reach Connect"),
    ],
)
def test_probe_tries_once_with_a_short_timeout(fake_connect: FakeConnect, faults, reason):
    sleeps = Sleeps()
    client = ConnectClient(fake_connect.url, ADMIN_KEY, sleep=sleeps)
    fake_connect.inject_faults(paths=r"/server_settings$", **faults)
    started = time.monotonic()
    probe = client.probe(timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert not probe.reachable and reason in (probe.error or "")
    assert ADMIN_KEY not in (probe.error or "")
    assert sleeps == []
    deadline = time.monotonic() + 3.0  # a slow answer is recorded once the server sends it
    while not fake_connect.count("GET", r"/server_settings$") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_connect.count("GET", r"/server_settings$") == 1


def test_probe_redacts_the_key_from_foreign_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"boom {request.headers['authorization']}")

    client = ConnectClient("http://connect.test", ADMIN_KEY, transport=httpx.MockTransport(handler))
    probe = client.probe()
    assert not probe.reachable and probe.error and ADMIN_KEY not in probe.error


# ------------------------------------------------------------------ version filters (packaging)


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("3.9.5", "3.9.5", True),
        ("3.9.5", "3.9.6", False),
        ("==3.9.5", "3.9.5", True),
        ("=3.9.5", "3.9.5", True),
        ("4.2", "4.2.0", True),  # 4.2 == 4.2.0
        ("4.2.0", "4.2", True),
        ("==3.9", "3.9.17", True),  # ==3.9 means any 3.9.x
        ("==3.9", "3.10.1", False),
        ("==3.9", "3.90", False),
        (">=3.9", "3.9.17", True),
        (">=3.9", "3.8.18", False),
        (">=4.2", "4.2", True),
        (">=3.10", "3.9.5", False),  # numeric, not string, order
        ("<3.10", "3.9.17", True),
        ("<3.10", "3.10.0", False),
        ("<=3.9", "3.9.0", True),
        ("<=3.9", "3.9.5", False),
        (">3.9", "3.9", False),
        (">3.9", "3.9.1", True),
        ("3.9.5", "3.9.5-rc1", True),  # junk suffixes are ignored
        ("3.9.5", "3.9.5+local", True),
        ("==3.9.5", "3.9.5rc1", True),
        (">=2023.9", "2023.11.0-dev+103-g11242ee129", True),
        ("3.9", "banana", False),
        ("3.9", "v3.9", False),
        ("3.9", "", False),
        ("3.9", None, False),
    ],
)
def test_version_filter_matches(text: str, version: str | None, expected: bool):
    assert VersionFilter.parse(text).matches(version) is expected


@pytest.mark.parametrize(
    ("text", "op", "version", "shown"),
    [
        ("3.9.5", "==", (3, 9, 5), "==3.9.5"),
        ("=3.9", "==", (3, 9), "==3.9"),
        (" >= 4.2 ", ">=", (4, 2), ">=4.2"),
        ("<3.10", "<", (3, 10), "<3.10"),
        ("3.9.5.1", "==", (3, 9, 5, 1), "==3.9.5.1"),
    ],
)
def test_version_filter_parse(text: str, op: str, version: tuple[int, ...], shown: str):
    parsed = VersionFilter.parse(text)
    assert (parsed.op, parsed.version, parsed.text, str(parsed)) == (
        op,
        version,
        text.strip(),
        shown,
    )
    assert parsed == VersionFilter.parse(text) and hash(parsed) == hash(VersionFilter.parse(text))


@pytest.mark.parametrize("text", ["banana", ">=", "~=3.9", "!=3.9", "=>3.9", "3.9.5.1.2", "v3.9"])
def test_version_filter_rejects(text: str):
    with pytest.raises(ValueError, match="not a version filter"):
        VersionFilter.parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3.9.17", (3, 9, 17)), ("3.9.5-rc1", (3, 9, 5)), ("4.3.0+local", (4, 3, 0)), ("10", (10,))],
)
def test_parse_version(text: str, expected: tuple[int, ...]):
    assert parse_version(text) == expected


# ---------------------------------------------------------------- malformed answers


HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>SSO</body></html>"


def _malformed_error(call: Callable[[], object]) -> ConnectError:
    with pytest.raises(ConnectError) as caught:
        call()
    error = caught.value
    assert error.malformed and not error.transient  # an answer: asking again will not help
    assert ADMIN_KEY not in str(error) and ADMIN_KEY not in error.reason
    return error


def test_an_html_page_instead_of_json_is_a_clear_connect_error(
    connect: ConnectClient, fake_connect: FakeConnect
) -> None:
    fake_connect.serve_raw("GET", r"/caches/runtime$", body=HTML_PAGE, content_type="text/html")
    fake_connect.serve_raw("GET", r"/v1/content$", body=HTML_PAGE, content_type="text/html")
    fake_connect.serve_raw("GET", r"/tasks/", body=HTML_PAGE, content_type="text/html")
    error = _malformed_error(connect.caches.list)
    assert "HTML page, not JSON" in str(error) and "CONNECT_SERVER" in str(error)
    assert "v1/system/caches/runtime" in str(error)
    assert "unexpected answer to GET v1/content" in str(_malformed_error(connect.content.list))
    assert "HTML" in str(_malformed_error(lambda: connect.tasks.get("t1")))
    # Each sent once: a malformed answer is not retried.
    assert fake_connect.count("GET", r"/caches/runtime$") == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "call", "expected"),
    [
        ("GET", r"/caches/runtime$", b"[]", lambda c, g: c.caches.list(), '"caches" list'),
        ("GET", r"/caches/runtime$", b'{"caches": [1, 2]}', lambda c, g: c.caches.list(), "caches"),
        ("GET", r"/caches/runtime$", b"", lambda c, g: c.caches.list(), '"caches" list'),
        ("GET", r"/v1/content$", b'{"results": []}', lambda c, g: c.content.list(), "array"),
        ("GET", r"/v1/content$", b'[{"title": "x"}]', lambda c, g: c.content.list(), "content"),
        ("GET", r"/tasks/", b'"done"', lambda c, g: c.tasks.get("t1"), "a task object"),
        ("GET", r"/tasks/", b'{"id": "t", "code": "x"}', lambda c, g: c.tasks.get("t"), "task"),
        ("POST", r"/build$", b"{}", lambda c, g: c.content.build(g), "task_id"),
        ("POST", r"/build$", b"", lambda c, g: c.content.build(g), "task_id"),
        ("GET", r"/jobs$", b'{"jobs": []}', lambda c, g: c.jobs.list(g), "a list of jobs"),
        ("GET", r"/jobs$", b'[{"status": "x"}]', lambda c, g: c.jobs.list(g), "jobs"),
        ("GET", r"/v1/user$", b"[1]", lambda c, g: c.current_user(), "a user object"),
    ],
)
def test_a_json_answer_of_another_shape_is_a_connect_error(
    connect: ConnectClient,
    fake_connect: FakeConnect,
    method: str,
    path: str,
    body: bytes,
    call: Callable[[ConnectClient, str], object],
    expected: str,
) -> None:
    guid = next(i["guid"] for i in fake_connect.content() if i["bundle_id"])
    fake_connect.serve_raw(method, path, body=body, process=False)
    error = _malformed_error(lambda: call(connect, guid))
    assert "unexpected answer" in str(error) and expected in str(error)
    assert fake_connect.builds_started() == []


@pytest.mark.parametrize("content_length", [True, False])
def test_a_huge_body_is_refused_without_reading_it_all(
    fake_connect: FakeConnect, content_length: bool
) -> None:
    """256 MiB of a JSON-looking answer: refused past the cap, in bounded memory, and the
    simulator could not send it all (the client stopped reading and hung up)."""
    chunk = b'{"language": "Python", "version": "3.11.3", "image_name": "Local"},' * 1000
    repeat = 256 * 1024 * 1024 // len(chunk)
    rule = fake_connect.serve_raw(
        "GET",
        r"/caches/runtime$",
        body=chunk,
        repeat=repeat,
        content_length=content_length,
        process=False,
    )
    client = ConnectClient(fake_connect.url, ADMIN_KEY, backoff=0.01, max_body=4 * 1024 * 1024)
    tracemalloc.start()
    try:
        started = time.monotonic()
        error = _malformed_error(client.caches.list)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    assert "larger than 4 MiB" in str(error) and "read no more" in str(error)
    assert peak < 32 * 1024 * 1024, peak
    assert time.monotonic() - started < 10
    assert rule.served == 1
    assert rule.bytes_sent < len(chunk) * repeat  # it stopped long before the end


def test_the_default_cap_is_16_mib_and_smaller_answers_pass(
    connect: ConnectClient, fake_connect: FakeConnect
) -> None:
    assert connect.http.max_body == 16 * 1024 * 1024
    caches = b",".join(
        b'{"language": "R", "version": "4.%d.0", "image_name": "Local"}' % i for i in range(2000)
    )
    fake_connect.serve_raw("GET", r"/caches/runtime$", body=b'{"caches": [' + caches + b"]}")
    assert len(connect.caches.list()) == 2000


def test_an_error_answer_of_html_keeps_its_status(
    connect: ConnectClient, fake_connect: FakeConnect
) -> None:
    fake_connect.serve_raw(
        "GET", r"/v1/user$", body=HTML_PAGE * 10_000, status=403, content_type="text/html"
    )
    with pytest.raises(ConnectError) as caught:
        connect.current_user()
    assert caught.value.status == 403 and not caught.value.malformed
    assert "HTTP 403" in str(caught.value)


def test_single_try_sends_once_on_the_same_connections(
    connect: ConnectClient, fake_connect: FakeConnect
) -> None:
    fake_connect.inject_faults(error_rate=1.0, status=502, paths=r"/caches/runtime$")
    once = connect.single_try()
    with pytest.raises(ConnectError):
        once.caches.list()
    assert fake_connect.count("GET", r"/caches/runtime$") == 1
    with pytest.raises(ConnectError):
        connect.caches.list()  # the original still retries (4 times after the first)
    assert fake_connect.count("GET", r"/caches/runtime$") == 1 + 5
    assert once.http._http is connect.http._http  # one pool, one cookie jar
