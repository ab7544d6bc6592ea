"""The fake Posit Connect server, exercised over real HTTP on loopback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim.connect_seed import OFF_HOST_IMAGE, demo_seed, generated_seed
from sim.connect_server import FakeConnect

KEYS = {"admin-key": "administrator", "pub-key": "publisher", "view-key": "viewer"}


@pytest.fixture
def fake() -> Iterator[FakeConnect]:
    with FakeConnect(api_keys=KEYS, build_seconds=0.2, cache_delete_seconds=0.1) as server:
        yield server


def api(server: FakeConnect, key: str | None = "admin-key") -> httpx.Client:
    headers = {"Authorization": f"Key {key}"} if key else {}
    return httpx.Client(base_url=f"{server.url}/__api__", headers=headers, timeout=30)


@pytest.fixture
def admin(fake: FakeConnect) -> Iterator[httpx.Client]:
    with api(fake) as client:
        yield client


def published(server: FakeConnect) -> list[dict[str, Any]]:
    return [item for item in server.content() if item["bundle_id"] is not None]


def delete_cache(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.request("DELETE", "/v1/system/caches/runtime", json=body)


def assert_error(response: httpx.Response, status: int, code: int, message: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "error", "payload"}
    assert body["code"] == code
    assert body["payload"] is None
    if message is not None:
        assert body["error"] == message


# ------------------------------------------------------------------ auth


def test_missing_key_is_401_code_24(fake: FakeConnect) -> None:
    with api(fake, key=None) as client:
        assert_error(
            client.get("/v1/user"), 401, 24, "The requested operation requires authentication."
        )
        assert_error(client.get("/v1/system/caches/runtime"), 401, 24)


def test_unknown_key_is_401_code_30(fake: FakeConnect) -> None:
    with api(fake, key="nope") as client:
        response = client.get("/v1/user")
    assert_error(response, 401, 30)
    assert response.json()["error"].startswith("We couldn't log you in")
    bearer = httpx.get(f"{fake.url}/__api__/v1/user", headers={"Authorization": "Bearer admin-key"})
    assert_error(bearer, 401, 30)


def test_server_settings_needs_no_key(fake: FakeConnect) -> None:
    settings = httpx.get(f"{fake.url}/__api__/server_settings").json()
    assert settings["version"] == "2024.08.0"
    assert settings["execution_type"] == "native"
    assert settings["enable_runtime_cache_management"] is True
    assert settings["dashboard_path"] == "/connect"


def test_user_reflects_key_role(fake: FakeConnect) -> None:
    for key, role in KEYS.items():
        with api(fake, key) as client:
            user = client.get("/v1/user").json()
        assert user["user_role"] == role
        assert {"guid", "username", "email", "confirmed", "locked"} <= set(user)


def test_non_admin_gets_403_code_22_on_caches(fake: FakeConnect) -> None:
    for key in ("pub-key", "view-key"):
        with api(fake, key) as client:
            assert_error(
                client.get("/v1/system/caches/runtime"),
                403,
                22,
                "You don't have permission to perform this operation.",
            )
            target = {"language": "R", "version": "4.3.0", "image_name": "Local"}
            assert_error(delete_cache(client, **target), 403, 22)
    assert len(fake.caches()) == len(demo_seed().caches)


def test_unknown_endpoint_is_code_2(admin: httpx.Client) -> None:
    assert_error(admin.get("/v1/nothing/here"), 404, 2)
    assert_error(admin.put("/v1/system/caches/runtime"), 404, 2)


# ------------------------------------------------------------------ caches


def test_cache_list_matches_state(fake: FakeConnect, admin: httpx.Client) -> None:
    caches = admin.get("/v1/system/caches/runtime").json()["caches"]
    assert caches == fake.caches()
    assert {"language": "Python", "version": "3.9.5", "image_name": OFF_HOST_IMAGE} in caches
    assert {"language": "R", "version": "4.3.0", "image_name": "Local"} in caches


def test_cache_delete_dry_run_keeps_cache(fake: FakeConnect, admin: httpx.Client) -> None:
    response = delete_cache(
        admin, language="PYTHON", version="3.11.3", image_name="Local", dry_run=True
    )
    assert response.status_code == 200
    # Stored capitalisation is echoed; `dry_run` is not.
    assert response.json() == {
        "language": "Python",
        "version": "3.11.3",
        "image_name": "Local",
        "task_id": None,
    }
    assert {"language": "Python", "version": "3.11.3", "image_name": "Local"} in fake.caches()


def test_cache_delete_runs_a_task_then_removes_cache(
    fake: FakeConnect, admin: httpx.Client
) -> None:
    body = delete_cache(admin, language="python", version="3.11.3", image_name="Local").json()
    task_id = body["task_id"]
    assert re.fullmatch(r"[A-Za-z0-9]{16}", task_id)
    running = admin.get(f"/v1/tasks/{task_id}").json()
    assert running == {
        "id": task_id,
        "output": ["Deleting runtime cache..."],
        "result": None,
        "finished": False,
        "code": 0,
        "error": "",
        "last": 1,
    }
    # Still listed while the deletion task runs.
    assert any(c["version"] == "3.11.3" for c in fake.caches() if c["language"] == "Python")
    done = admin.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json()
    assert done["finished"] is True
    assert done["output"] == ["Deleting runtime cache...", "Successfully deleted runtime cache"]
    assert done["last"] == 2
    assert not any(c["language"] == "Python" and c["version"] == "3.11.3" for c in fake.caches())
    target = {"language": "Python", "version": "3.11.3", "image_name": "Local"}
    assert_error(delete_cache(admin, **target), 404, 4, "Cache does not exist")
    assert_error(delete_cache(admin, **target, dry_run=True), 404, 4, "Cache does not exist")


def test_concurrent_deletes_of_same_cache(fake: FakeConnect, admin: httpx.Client) -> None:
    target = {"language": "R", "version": "4.2.1", "image_name": "Local"}
    first = delete_cache(admin, **target).json()["task_id"]
    second = delete_cache(admin, **target).json()["task_id"]  # first still running: accepted
    assert first != second
    for task_id in (first, second):
        task = admin.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json()
        assert task["finished"] and task["code"] == 0
    assert_error(delete_cache(admin, **target), 404, 4, "Cache does not exist")


def test_cache_delete_unknown_triple_is_404(admin: httpx.Client) -> None:
    response = delete_cache(admin, language="Python", version="3.11.2", image_name="Local")
    assert_error(response, 404, 4, "Cache does not exist")


def test_cache_delete_off_host_image_by_sanitized_name(
    fake: FakeConnect, admin: httpx.Client
) -> None:
    sanitized = re.sub(r"[^A-Za-z0-9._-]", "_", OFF_HOST_IMAGE)
    response = delete_cache(
        admin, language="r", version="3.6.3", image_name=sanitized, dry_run=True
    )
    assert response.status_code == 200
    assert response.json()["image_name"] == OFF_HOST_IMAGE


def test_cache_delete_validation(admin: httpx.Client) -> None:
    url = "/v1/system/caches/runtime"
    bad_json = admin.request("DELETE", url, content=b"{not json", headers={"Content-Type": "x"})
    assert_error(bad_json, 400, 121, "The request JSON is invalid.")
    assert_error(admin.request("DELETE", url, json=["R"]), 400, 121)
    assert_error(admin.request("DELETE", url), 400, 121)
    missing = delete_cache(admin, language="R", image_name="Local")
    assert_error(missing, 400, 12, "A required parameter is missing.")
    assert_error(delete_cache(admin, language="R", version="4.3.0"), 400, 12)
    julia = delete_cache(admin, language="Julia", version="1.9.0", image_name="Local")
    assert_error(julia, 400, 179, "Unsupported runtime language identifier")
    wrong_type = delete_cache(admin, language="R", version=4, image_name="Local")
    assert_error(wrong_type, 400, 121)


def test_cache_management_disabled() -> None:
    with FakeConnect(runtime_cache_management=False) as server, api(server) as client:
        assert_error(
            client.get("/v1/system/caches/runtime"),
            400,
            194,
            "Runtime cache management is disabled.",
        )
        target = {"language": "R", "version": "4.3.0", "image_name": "Local"}
        assert_error(delete_cache(client, **target), 400, 194)
        settings = client.get("/server_settings").json()
        assert settings["enable_runtime_cache_management"] is False


# ------------------------------------------------------------------ tasks


def start_build(client: httpx.Client, guid: str, **body: Any) -> str:
    response = client.post(f"/v1/content/{guid}/build", json=body or None)
    assert response.status_code == 200, response.text
    return response.json()["task_id"]


def test_long_poll_returns_promptly_when_task_finishes(
    fake: FakeConnect, admin: httpx.Client
) -> None:
    guid = published(fake)[0]["guid"]
    fake.set_build_duration(guid, 0.4)
    admin.get("/v1/user")  # warm the connection so timing measures the server only
    started = time.monotonic()
    task = admin.get(f"/v1/tasks/{start_build(admin, guid)}", params={"wait": 10}).json()
    elapsed = time.monotonic() - started
    assert task["finished"] is True and task["code"] == 0
    assert 0.35 <= elapsed < 0.5, elapsed


def test_long_poll_respects_wait(fake: FakeConnect, admin: httpx.Client) -> None:
    guid = published(fake)[0]["guid"]
    fake.set_build_duration(guid, 5)
    task_id = start_build(admin, guid)
    started = time.monotonic()
    task = admin.get(f"/v1/tasks/{task_id}", params={"wait": 1}).json()
    assert 0.95 <= time.monotonic() - started < 1.3
    assert task["finished"] is False
    started = time.monotonic()
    admin.get(f"/v1/tasks/{task_id}", params={"wait": 0})
    admin.get(f"/v1/tasks/{task_id}")
    assert time.monotonic() - started < 0.2


def test_many_concurrent_long_polls_wake_together(fake: FakeConnect, admin: httpx.Client) -> None:
    guid = published(fake)[0]["guid"]
    fake.set_build_duration(guid, 0.5)
    task_id = start_build(admin, guid)
    results: list[tuple[float, bool]] = []
    started = time.monotonic()

    def poll(client: httpx.Client) -> None:
        task = client.get(f"/v1/tasks/{task_id}", params={"wait": 10}).json()
        results.append((time.monotonic() - started, task["finished"]))

    # One pooled client: httpx clients are costly to create, the server is what is tested.
    with httpx.Client(
        base_url=f"{fake.url}/__api__",
        headers={"Authorization": "Key admin-key"},
        limits=httpx.Limits(max_connections=100),
    ) as pooled:
        threads = [threading.Thread(target=poll, args=(pooled,)) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 100
    assert all(finished for _, finished in results)
    assert max(elapsed for elapsed, _ in results) < 1.5


def test_first_and_last_semantics(fake: FakeConnect, admin: httpx.Client) -> None:
    task_id = start_build(admin, published(fake)[0]["guid"])
    full = admin.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json()
    total = full["last"]
    assert total == len(full["output"]) >= 3
    assert full == fake.task(task_id)
    tail = admin.get(f"/v1/tasks/{task_id}", params={"first": 2}).json()
    assert tail["output"] == full["output"][2:]
    assert tail["last"] == total
    empty = admin.get(f"/v1/tasks/{task_id}", params={"first": total}).json()
    assert empty["output"] == [] and empty["last"] == total
    for params in ({"first": total + 1}, {"first": -1}, {"wait": 21}, {"wait": -1}, {"wait": "x"}):
        assert_error(admin.get(f"/v1/tasks/{task_id}", params=params), 400, 25)


def test_unknown_task_is_404_code_4(admin: httpx.Client) -> None:
    response = admin.get("/v1/tasks/AAAAAAAAAAAAAAAA")
    assert_error(response, 404, 4, "The requested object does not exist.")


# ------------------------------------------------------------------ builds


def test_build_limit_queues_extra_builds() -> None:
    with FakeConnect(build_seconds=0.3, build_limit=2) as server, api(server) as client:
        guids = [item["guid"] for item in published(server)[:5]]
        task_ids = [start_build(client, guid) for guid in guids]
        assert server.builds_started() == guids
        queued = client.get(f"/v1/tasks/{task_ids[4]}").json()
        assert queued["finished"] is False
        assert queued["output"] == ["Waiting for an available build slot..."]
        assert server.running_builds() == 2
        for task_id in task_ids:
            task = client.get(f"/v1/tasks/{task_id}", params={"wait": 10}).json()
            assert task["finished"] and task["code"] == 0
        assert server.max_concurrent_builds_seen() == 2
        assert server.running_builds() == 0
        output = server.task(task_ids[4])["output"]
        assert output[0] == "Waiting for an available build slot..."
        assert output[1].startswith("Building ")


def test_build_output_by_app_mode(fake: FakeConnect, admin: httpx.Client) -> None:
    by_mode = {item["app_mode"]: item for item in published(fake)}
    expected = {
        "shiny": "Building Shiny application...",
        "python-fastapi": "Building FastAPI application...",
        "static": "Building static content...",
        "jupyter-static": "Building Jupyter notebook...",
    }
    for mode, first_line in expected.items():
        task_id = start_build(admin, by_mode[mode]["guid"])
        task = admin.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json()
        assert task["output"][0] == first_line
        assert task["result"] is None and task["error"] == ""


def test_configured_build_failures(fake: FakeConnect, admin: httpx.Client) -> None:
    python_item = next(i for i in published(fake) if i["app_mode"] == "python-fastapi")
    r_item = next(i for i in published(fake) if i["app_mode"] == "shiny")
    fake.fail_builds([python_item["guid"]])
    fake.fail_builds([r_item["guid"]], error="Error in library(shiny): no package")
    for item, message in (
        (
            python_item,
            "Cannot find compatible environment: no compatible Local environment "
            f"with Python version {python_item['py_version']}",
        ),
        (r_item, "Error in library(shiny): no package"),
    ):
        task_id = start_build(admin, item["guid"])
        task = admin.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json()
        assert task["finished"] is True
        assert task["code"] == 1
        assert task["error"] == message
        assert task["output"][-1] == message
        assert task["result"] == {
            "type": "build-failed-error",
            "data": "An error occurred while building the content",
        }


def test_build_request_errors(fake: FakeConnect, admin: httpx.Client) -> None:
    unpublished = next(i for i in fake.content() if i["bundle_id"] is None)
    item = published(fake)[0]
    assert_error(admin.post("/v1/content/no-such-guid/build", json={}), 404, 4)
    assert_error(
        admin.post(f"/v1/content/{unpublished['guid']}/build", json={"bundle_id": None}),
        404,
        28,
        "No application bundle to deploy.",
    )
    newer = str(int(item["bundle_id"]) + 1)
    assert_error(admin.post(f"/v1/content/{item['guid']}/build", json={"bundle_id": newer}), 404, 4)
    bad = admin.post(f"/v1/content/{item['guid']}/build", content=b"{", headers={"X": "y"})
    assert_error(bad, 400, 121)
    with api(fake, "view-key") as viewer:
        assert_error(viewer.post(f"/v1/content/{item['guid']}/build", json={}), 403, 22)
    assert fake.builds_started() == []
    # An explicit current bundle and an empty body both work.
    start_build(admin, item["guid"], bundle_id=item["bundle_id"])
    assert admin.post(f"/v1/content/{item['guid']}/build").status_code == 200


def test_successful_build_recreates_deleted_cache(fake: FakeConnect, admin: httpx.Client) -> None:
    item = next(i for i in published(fake) if i["py_version"] == "3.11.3" and not i["image_name"])
    task_id = delete_cache(admin, language="Python", version="3.11.3", image_name="Local").json()[
        "task_id"
    ]
    admin.get(f"/v1/tasks/{task_id}", params={"wait": 5})
    assert {"language": "Python", "version": "3.11.3", "image_name": "Local"} not in fake.caches()
    build = admin.get(f"/v1/tasks/{start_build(admin, item['guid'])}", params={"wait": 5}).json()
    assert any(line.startswith("Creating environment") for line in build["output"])
    assert {"language": "Python", "version": "3.11.3", "image_name": "Local"} in fake.caches()


JOB_FIELDS = {
    "id", "ppid", "pid", "key", "remote_id", "app_id", "content_id", "content_guid",
    "variant_id", "bundle_id", "start_time", "end_time", "last_heartbeat_time", "queued_time",
    "queue_name", "tag", "exit_code", "status", "hostname", "cluster", "image", "run_as",
}  # fmt: skip


def test_a_running_build_is_an_active_restore_job(fake: FakeConnect, admin: httpx.Client) -> None:
    python_item = next(i for i in published(fake) if i["app_mode"] == "python-fastapi")
    r_item = next(i for i in published(fake) if i["app_mode"] == "shiny")
    fake.fail_builds([r_item["guid"]])
    assert admin.get(f"/v1/content/{python_item['guid']}/jobs").json() == []
    tasks = {item["guid"]: start_build(admin, item["guid"]) for item in (python_item, r_item)}
    for item, tag in ((python_item, "python_restore"), (r_item, "packrat_restore")):
        (job,) = admin.get(f"/v1/content/{item['guid']}/jobs").json()
        assert set(job) == JOB_FIELDS
        assert (job["tag"], job["status"], job["exit_code"]) == (tag, 0, None)
        assert job["end_time"] is None
        assert job["content_guid"] == item["guid"] and job["bundle_id"] == item["bundle_id"]
        assert job["app_id"] == job["content_id"] == item["id"]
        assert re.fullmatch(r"[A-Za-z0-9]{16}", job["key"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", job["start_time"])
    for task_id in tasks.values():
        admin.get(f"/v1/tasks/{task_id}", params={"wait": 5})
    (done,) = admin.get(f"/v1/content/{python_item['guid']}/jobs").json()
    assert (done["status"], done["exit_code"]) == (1, 0) and done["end_time"]
    (failed,) = admin.get(f"/v1/content/{r_item['guid']}/jobs").json()
    assert (failed["status"], failed["exit_code"]) == (1, 1)
    # Newest first; the simulator's own view is oldest first.
    start_build(admin, python_item["guid"])
    listed = admin.get(f"/v1/content/{python_item['guid']}/jobs").json()
    assert [j["status"] for j in listed] == [0, 1]
    assert [j["key"] for j in fake.jobs(python_item["guid"])] == [j["key"] for j in listed[::-1]]


def test_a_queued_build_has_no_job_yet() -> None:
    with FakeConnect(build_seconds=0.3, build_limit=1) as server, api(server) as client:
        with_runtime = [i for i in published(server) if i["py_version"] or i["r_version"]]
        first, second = (item["guid"] for item in with_runtime[:2])
        start_build(client, first)
        task_id = start_build(client, second)
        assert client.get(f"/v1/content/{second}/jobs").json() == []
        client.get(f"/v1/tasks/{task_id}", params={"wait": 5})
        assert [j["exit_code"] for j in client.get(f"/v1/content/{second}/jobs").json()] == [0]


def test_jobs_errors(fake: FakeConnect, admin: httpx.Client) -> None:
    assert_error(admin.get("/v1/content/no-such-guid/jobs"), 404, 4)
    with api(fake, "view-key") as viewer:
        assert_error(viewer.get(f"/v1/content/{published(fake)[0]['guid']}/jobs"), 403, 22)


# ------------------------------------------------------------------ sticky sessions


def test_sticky_sessions_require_the_cookie_for_tasks() -> None:
    with FakeConnect(sticky_sessions=True, build_seconds=0.1) as server:
        guid = published(server)[0]["guid"]
        with api(server) as client:  # httpx keeps cookies: behaves like a well-behaved client
            response = client.post(f"/v1/content/{guid}/build", json={})
            assert "rscid=" in response.headers["set-cookie"]
            task_id = response.json()["task_id"]
            assert client.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json()["finished"]
        cookieless = httpx.get(
            f"{server.url}/__api__/v1/tasks/{task_id}",
            headers={"Authorization": "Key admin-key"},
        )
        assert_error(cookieless, 404, 141)
        assert "sticky sessions" in cookieless.json()["error"]
        # Other endpoints do not care about the cookie.
        assert httpx.get(
            f"{server.url}/__api__/v1/content/{guid}", headers={"Authorization": "Key admin-key"}
        ).is_success


# ------------------------------------------------------------------ fault injection


def statuses_with_faults(seed: int) -> list[int]:
    with FakeConnect() as server, api(server) as client:
        server.inject_faults(error_rate=0.5, status=502, seed=seed)
        return [client.get("/v1/user").status_code for _ in range(30)]


def test_error_rate_is_deterministic_with_seed() -> None:
    first = statuses_with_faults(7)
    assert first == statuses_with_faults(7)
    assert set(first) == {200, 502}
    assert first != statuses_with_faults(8)


def test_injected_errors_look_like_a_proxy(fake: FakeConnect, admin: httpx.Client) -> None:
    fake.inject_faults(error_rate=1.0, status=502, paths=r"/build$")
    guid = published(fake)[0]["guid"]
    response = admin.post(f"/v1/content/{guid}/build", json={})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert fake.builds_started() == []  # never reached Connect
    assert admin.get("/v1/user").status_code == 200  # path filter
    assert fake.count("POST", r"/build$") == 1
    fake.clear_faults()
    assert admin.post(f"/v1/content/{guid}/build", json={}).status_code == 200


def test_injected_latency(fake: FakeConnect, admin: httpx.Client) -> None:
    admin.get("/v1/user")
    fake.inject_faults(latency=0.3)
    started = time.monotonic()
    assert admin.get("/v1/user").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    httpx.get(f"{fake.url}/__ping__")  # not an /__api__ path: unaffected
    assert time.monotonic() - started < 0.25


def test_injected_connection_resets(fake: FakeConnect, admin: httpx.Client) -> None:
    fake.inject_faults(reset_rate=1.0, paths=r"/v1/content$")
    with pytest.raises(httpx.TransportError):
        admin.get("/v1/content")
    assert fake.requests[-1].status == 0
    assert admin.get("/v1/user").status_code == 200


def test_a_lost_answer_is_processed_then_reset(fake: FakeConnect, admin: httpx.Client) -> None:
    guid = published(fake)[0]["guid"]
    fake.inject_faults(lose_rate=1.0, paths=r"/build$", limit=1)
    with pytest.raises(httpx.TransportError):
        admin.post(f"/v1/content/{guid}/build", json={})
    assert fake.builds_started() == [guid]  # Connect took it; the answer never came back
    assert fake.requests[-1].status == 0
    start_build(admin, guid)  # the limit: one fault, then none
    assert fake.builds_started() == [guid, guid]


def test_an_outage_refuses_connections_then_connect_comes_back(
    fake: FakeConnect, admin: httpx.Client
) -> None:
    guid = published(fake)[0]["guid"]
    fake.set_build_duration(guid, 30)
    task_id = start_build(admin, guid)
    errors: list[BaseException] = []
    polling = threading.Event()

    def long_poll() -> None:
        with api(fake) as client:
            client.get("/v1/user")  # connected before the outage
            polling.set()
            try:
                client.get(f"/v1/tasks/{task_id}", params={"wait": 20})
            except httpx.TransportError as exc:
                errors.append(exc)

    poller = threading.Thread(target=long_poll)
    poller.start()
    assert polling.wait(5)
    fake.outage(1.0)
    poller.join(5)  # well before its 20 s wait: the long poll (or its connection) was cut
    assert not poller.is_alive() and len(errors) == 1
    with pytest.raises(httpx.TransportError):
        admin.get("/v1/user")  # a kept-alive connection is reset
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.url}/__api__/server_settings")  # a new one is refused
    assert fake.wait_up(5)
    assert admin.get("/v1/user").status_code == 200
    assert httpx.get(f"{fake.url}/__api__/server_settings").status_code == 200


def test_an_outage_can_answer_503_with_retry_after(fake: FakeConnect, admin: httpx.Client) -> None:
    fake.outage(30, status=503, retry_after="5")
    response = admin.get("/v1/user")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "503 Service Unavailable" in response.text
    assert not fake.wait_up(0)
    fake.end_outage()
    assert fake.wait_up(0) and admin.get("/v1/user").status_code == 200


# ------------------------------------------------------------------ content


def test_content_list_order_and_fields(fake: FakeConnect, admin: httpx.Client) -> None:
    items = admin.get("/v1/content").json()
    assert len(items) == len(demo_seed().content)
    times = [item["last_deployed_time"] for item in items]
    assert times == sorted(times, reverse=True)
    for item in items:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["created_time"])
        assert isinstance(item["id"], str)
        assert item["content_url"] == f"{fake.url}/content/{item['guid']}/"
        assert item["dashboard_url"] == f"{fake.url}/connect/#/apps/{item['guid']}"
        if item["bundle_id"] is None:
            assert item["app_mode"] == "unknown"
        else:
            assert isinstance(item["bundle_id"], str)
    assert "<!channel> Sales & <Ops>" in {item["title"] for item in items}
    modes = {item["app_mode"] for item in items}
    assert {"shiny", "python-dash", "python-streamlit", "python-fastapi", "api"} <= modes
    assert {"python-shiny", "rmd-shiny", "rmd-static", "quarto-static", "static"} <= modes
    assert any(item["image_name"] == OFF_HOST_IMAGE for item in items)
    assert items == fake.content()


def test_content_get_filters_and_include(fake: FakeConnect, admin: httpx.Client) -> None:
    item = fake.content()[3]
    assert admin.get(f"/v1/content/{item['guid']}").json() == item
    assert_error(admin.get("/v1/content/00000000-0000-0000-0000-000000000000"), 404, 4)
    by_name = admin.get("/v1/content", params={"name": item["name"]}).json()
    assert [i["guid"] for i in by_name] == [item["guid"]]
    owned = admin.get("/v1/content", params={"owner_guid": item["owner_guid"]}).json()
    assert owned and all(i["owner_guid"] == item["owner_guid"] for i in owned)
    with_owner = admin.get("/v1/content", params={"include": "owner,tags"}).json()
    assert with_owner[0]["owner"]["guid"] == with_owner[0]["owner_guid"]
    assert with_owner[0]["tags"] == []
    assert_error(admin.get("/v1/content", params={"include": "bogus"}), 400, 161)


def test_viewers_do_not_see_runtime_details(fake: FakeConnect) -> None:
    with api(fake, "view-key") as viewer:
        items = viewer.get("/v1/content").json()
    assert all(item["r_version"] is None and item["py_version"] is None for item in items)


def test_search_content_pages(fake: FakeConnect, admin: httpx.Client) -> None:
    page = admin.get("/v1/search/content", params={"page_size": 5, "page_number": 2}).json()
    assert page["total"] == len(fake.content())
    assert page["current_page"] == 2
    assert [i["guid"] for i in page["results"]] == [i["guid"] for i in fake.content()[5:10]]
    sales = admin.get("/v1/search/content", params={"q": "sales"}).json()
    assert {i["title"] for i in sales["results"]} == {"Sales Dashboard", "<!channel> Sales & <Ops>"}
    assert_error(admin.get("/v1/search/content", params={"page_size": 501}), 400, 25)


def test_add_content_and_cache(fake: FakeConnect, admin: httpx.Client) -> None:
    item = fake.add_content(title="Fresh App", app_mode="python-dash", py_version="3.12.1")
    assert item["content_url"] == f"{fake.url}/content/{item['guid']}/"
    assert admin.get("/v1/content").json()[0]["guid"] == item["guid"]  # newest deploy first
    fake.add_cache("python", "3.12.1")
    caches = admin.get("/v1/system/caches/runtime").json()["caches"]
    assert {"language": "Python", "version": "3.12.1", "image_name": "Local"} in caches


def test_request_log(fake: FakeConnect, admin: httpx.Client) -> None:
    guid = published(fake)[0]["guid"]
    start_build(admin, guid, bundle_id=None)
    record = next(r for r in fake.requests if r.method == "POST")
    assert record.path == f"/__api__/v1/content/{guid}/build"
    assert record.json == {"bundle_id": None}
    assert record.headers["authorization"] == "Key admin-key"
    assert record.status == 200
    admin.get("/v1/tasks/x", params={"wait": "0"})
    assert fake.requests[-1].query == {"wait": "0"}
    assert fake.count("POST", r"/build$") == 1
    assert fake.count(path_regex=r"^/__api__/v1/tasks/") == 1


def test_generated_seed_is_deterministic_and_published() -> None:
    seed = generated_seed(500, seed=3)
    assert len(seed.content) == 500
    assert all(item["bundle_id"] is not None for item in seed.content)
    assert len({item["guid"] for item in seed.content}) == 500
    assert seed.content == generated_seed(500, seed=3).content
    runtimes = {(i["r_version"], i["py_version"]) for i in seed.content}
    cache_versions = {c["version"] for c in seed.caches}
    assert all((r or p) in cache_versions for r, p in runtimes)
    with FakeConnect(seed=seed) as server, api(server) as client:
        assert len(client.get("/v1/content").json()) == 500
