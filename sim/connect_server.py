"""A fake Posit Connect server speaking the real HTTP API over loopback.

Covers what connect-bot and `rsconnect` need: server settings, current user, runtime caches,
tasks (with long polling), content listing/search and content builds, plus knobs for tests and
benchmarks (build durations, failures, build slots, sticky sessions, fault injection).
Endpoint shapes and error bodies follow the team's notes, shared/reference/connect-api.md.

Behaviour chosen where the reference is silent:
* `GET /__api__/server_settings` answers without a valid key, as Connect does for its login page;
  so a bad key is reported by `GET /v1/user` (code 30), which is what rsconnect expects.
* Task parameters: `wait` must be an integer in 0..20 and `first` an integer in 0..last, otherwise
  400 code 25 "The parameter is invalid.".
* A second real delete of a cache whose deletion is still running is accepted (its own task, which
  also succeeds); once the first task has removed the cache, deletes get 404 "Cache does not exist".
* A build of content that was never deployed gets 404 code 28; a `bundle_id` newer than the active
  bundle (or any bundle for never-deployed content) gets 404 code 4. Viewers get 403 code 22.
* A successful build recreates the runtime caches the content uses if they had been deleted
  (Connect rebuilds the environment, which repopulates the cache). An item with both an R and a
  Python version uses both caches (`connect_builds.item_runtimes`, as the bot's
  `ContentItem.runtimes`); its build output has lines for both.
* Cold caches: a build that gets a build slot while a cache it uses is missing takes
  `cold_factor` times its duration (`cold_builds()`, `build_log()`; see `connect_builds`).
* A build of locked content (`locked: true`) is refused with 400 code 222 and starts nothing; the
  reference does not document this answer (see `ERRORS`).
* Injected faults happen "in front of" Connect (like a proxy): a faulted request never reaches the
  API, so e.g. a faulted build POST does not start a build. The exception is a lost answer
  (`lose_rate`): the request is processed, then the connection is reset before the answer.
* `serve_raw(method, paths, ...)` answers matching requests with raw bytes instead of the API's
  JSON (an HTML page, another JSON shape, an empty or a huge body), like a misbehaving proxy or
  Connect version. The request is processed first (a DELETE still deletes) unless
  `process=False`. A huge body is written in pieces (`repeat`), never held whole.
* `outage(seconds)` takes Connect down: the port refuses connections (kept-alive connections
  are reset at their next request, long polls at once), or with `status` every request gets
  that proxy error; it comes back by itself.
* A running build shows in `GET /v1/content/{guid}/jobs` as an active (status 0) job tagged
  `packrat_restore` (R) or `python_restore` (Python), from the moment it gets a build slot (a
  queued build has no job yet); it ends as status 1 with `exit_code`. Content without an R or
  Python runtime gets no job. Jobs carry no task id (connect-api-2.md §6).
  `record_deployments()` gives each item the finished restore job its deployment left.
* Every role sees every content item (no per-user ACLs); viewers get the runtime fields nulled.
* `GET /v1/packages?name=` (offset paging, page size uncapped, sorted by language then name)
  lists the package rows of the seed (`Seed.packages`, `add_package`), old bundles included;
  Python names match PEP 503-normalised, R names exactly; viewers get 403 code 22; items with
  environment management off are left out. `GET /v1/content/{guid}/packages` lists the active
  bundle's packages (204 when never deployed). Served whatever `version` says; with
  `packages_api=False` both answer a bare 404, as a Connect older than 2024.11.0 does.
* Content health (`sim.connect_health`, issue 19): `GET /content/{guid}/` with a key starts the
  item's process when none is live (a `run_*` job; `start_seconds` each), answers 200 (an API:
  404 at `/`) and keeps it live, or, when the item is broken (`system_change`, `remove_runtime`),
  ends the job with exit code 1, a realistic log and an error summary, and answers 502.
  `/content/{guid}` redirects to the slash; without a valid key, to `/__login__`.
  `GET v1/content/{guid}/jobs/{key}[/log|/error]`; `POST v1/content/{guid}/render` (202, a
  task and a `build_report`/`build_jupyter` job; off with `render_api=False`) and the older
  `GET applications/{guid}/variants` + `POST variants/{id}/render`. A successful build ends
  the item's live process.
* Usage (`sim.connect_usage`, issue 20): with `usage_seed`, a seeded Zipf-like spread of visits
  per item, about a fifth never visited (default: nobody visits; `set_usage` sets one item). `GET
  v1/instrumentation/content/hits` (one bare array) exists from `version` 2025.04 on (older: a
  bare 404); `v1/instrumentation/content/visits` and `v1/instrumentation/shiny/usage` (keyset
  paging) answer a bare 404 with `usage_api=False`; `usage_denied` makes all three 403 code 22.
* With `sticky_sessions`, every response sets `rscid=node-1`; a task poll without that cookie gets
  404 code 141, as if a load balancer had sent it to a node not running the task.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import random
import re
import secrets
import socket
import string
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sim.connect_builds import BuildModel, BuildRecord, Runtime, item_runtimes
from sim.connect_health import (
    API_MODES,
    RENDER_TAGS,
    RUN_TAGS,
    Breakage,
    HealthModel,
    SystemChange,
    healthy_log,
    pep503,
)
from sim.connect_seed import (
    Seed,
    demo_seed,
    make_content_item,
    make_package,
    rfc3339,
)
from sim.connect_usage import HitsBody, UsageModel, parse_time

logger = logging.getLogger(__name__)

API_PREFIX = "/__api__"
STICKY_COOKIE = "rscid"
JSON_TYPE = "application/json; charset=utf-8"
MAX_TASK_WAIT = 20
MAX_JOBS_KEPT = 10  # per content item: Connect lists recent jobs, not every job ever
ROLES = ("administrator", "publisher", "viewer")
INCLUDE_OPTIONS = frozenset({"owner", "tags", "vanity_url"})
# Fields describing the target environment, which Connect hides from viewers.
ENVIRONMENT_FIELDS = ("cluster_name", "image_name", "r_version", "py_version", "quarto_version")

_TASK_ID_ALPHABET = string.ascii_letters + string.digits
_NAMESPACE = uuid.UUID("0b7f9d56-7a39-4c1e-8f3d-2a6b4c8e1d90")

# Connect error codes used here: (HTTP status, message) from the swagger error table.
ERRORS: dict[int, tuple[int, str]] = {
    1: (500, "An internal failure occurred."),
    2: (404, "The requested method or endpoint is not supported."),
    4: (404, "The requested object does not exist."),
    12: (400, "A required parameter is missing."),
    22: (403, "You don't have permission to perform this operation."),
    24: (401, "The requested operation requires authentication."),
    25: (400, "The parameter is invalid."),
    28: (404, "No application bundle to deploy."),
    30: (
        401,
        "We couldn't log you in with the provided credentials. "
        "Please ask your administrator for assistance.",
    ),
    121: (400, "The request JSON is invalid."),
    141: (
        404,
        "Task lookup failures can indicate that a load balancer is not using sticky sessions or "
        "a client is not including the session cookie. "
        "Details: https://docs.posit.co/connect/admin/load-balancing/",
    ),
    161: (400, "The include option specified is not valid"),
    179: (400, "Unsupported runtime language identifier"),
    194: (400, "Runtime cache management is disabled."),
    # Code 222 is LockedContentBundle (OAS26 enum; connect-api-2.md §5), but the reference has
    # neither its HTTP status nor its text, nor says what a build of locked content answers.
    # Our choice: 400 (the build endpoint documents 400/401/404/500; 400 is the only client
    # error that fits) and a message in the style of the table.
    222: (400, "The content is locked and cannot be built."),
}

BUILD_FAILED_RESULT = {
    "type": "build-failed-error",
    "data": "An error occurred while building the content",
}

# What the first build output line calls each kind of content.
_BUILD_KIND: dict[str, str] = {
    "shiny": "Shiny application",
    "rmd-shiny": "Shiny R Markdown document",
    "rmd-static": "R Markdown document",
    "api": "Plumber API",
    "quarto-shiny": "Shiny Quarto document",
    "quarto-static": "Quarto document",
    "python-dash": "Dash application",
    "python-streamlit": "Streamlit application",
    "python-fastapi": "FastAPI application",
    "python-api": "Python API",
    "python-shiny": "Shiny application",
    "python-bokeh": "Bokeh application",
    "jupyter-static": "Jupyter notebook",
    "static": "static content",
}


class ApiError(Exception):
    """A Connect API error response `{"code", "error", "payload"}`."""

    def __init__(self, code: int, message: str | None = None, status: int | None = None) -> None:
        default_status, default_message = ERRORS[code]
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        super().__init__(self.message)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server received it. `status` is 0 when the connection was reset."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int
    time: float
    duration: float = 0.0


@dataclass
class _Response:
    status: int
    body: bytes | HitsBody  # HitsBody: pre-encoded chunks, written one after the other
    content_type: str = JSON_TYPE
    location: str | None = None  # a redirect's Location header


@dataclass
class _Task:
    id: str
    kind: str  # "build" or "cache-delete"
    cond: threading.Condition
    guid: str | None = None
    output: list[str] = field(default_factory=list)
    finished: bool = False
    code: int = 0
    error: str = ""
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    job: dict[str, Any] | None = None  # a build's job, once it runs
    # language -> the serial of the cache the build found at its start (None: missing)
    cache_serials: dict[str, int | None] = field(default_factory=dict)

    def to_json(self, first: int = 0) -> dict[str, Any]:
        return {
            "id": self.id,
            "output": self.output[first:],
            "result": self.result,
            "finished": self.finished,
            "code": self.code,
            "error": self.error,
            "last": len(self.output),
        }


@dataclass
class _Faults:
    latency: float
    error_rate: float
    status: int
    paths: re.Pattern[str] | None
    reset_rate: float
    rng: random.Random
    retry_after: str | None = None
    lose_rate: float = 0.0
    left: int | None = None  # faults still to inject (None: no limit)
    per_path: int | None = None  # at most this many faults per request path
    hits: dict[str, int] = field(default_factory=dict)


@dataclass
class _Raw:
    """A raw answer for matching requests (see `FakeConnect.serve_raw`)."""

    method: str
    paths: re.Pattern[str]
    status: int
    body: bytes
    content_type: str
    repeat: int
    content_length: bool
    process: bool
    left: int | None
    served: int = 0
    bytes_sent: int = 0  # of the body, until the client hung up


@dataclass(frozen=True)
class _Outage:
    status: int | None  # None: connections are refused
    retry_after: str | None
    serial: int


class _Scheduler:
    """Runs callbacks at given times on one daemon thread (build steps, cache deletions)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="fake-connect-scheduler", daemon=True
        )
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        with self._cond:
            entry = (time.monotonic() + max(0.0, delay), next(self._seq), callback)
            heapq.heappush(self._heap, entry)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # a broken callback must not kill the scheduler
                logger.exception("fake Connect scheduler callback failed")


def _json(status: int, payload: Any) -> _Response:
    return _Response(status, json.dumps(payload).encode())


def _error_response(error: ApiError) -> _Response:
    return _json(error.status, {"code": error.code, "error": error.message, "payload": None})


def _proxy_error_page(status: int) -> bytes:
    """What nginx in front of Connect answers when the upstream is unavailable."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _cache_key(language: str, version: str, image_name: str) -> tuple[str, str, str]:
    return (language.lower(), version, _sanitize_image(image_name))


def _sanitize_image(image_name: str) -> str:
    # Connect lists sanitized image names and accepts either spelling on delete.
    return re.sub(r"[^A-Za-z0-9._-]", "_", image_name)


def _canonical_language(language: str) -> str:
    return {"r": "R", "python": "Python"}.get(language.lower(), language)


def _at_least(version: str, release: tuple[int, int]) -> bool:
    numbers = re.findall(r"\d+", version)[:2]
    return tuple(int(n) for n in numbers) >= release


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(25) from None
    if not low <= value <= high:
        raise ApiError(25)
    return value


class FakeConnect:
    """A Posit Connect simulator served over HTTP on 127.0.0.1 (see module docstring)."""

    def __init__(
        self,
        *,
        api_keys: dict[str, str] | None = None,
        seed: Seed | None = None,
        build_seconds: float = 0.5,
        build_limit: int = 4,
        cache_delete_seconds: float = 0.2,
        host: str = "127.0.0.1",
        port: int = 0,
        sticky_sessions: bool = False,
        version: str = "2024.08.0",
        runtime_cache_management: bool = True,
        packages_api: bool = True,
        log_requests: bool = False,
        nagle: bool = False,
        record_requests: bool = True,
        cold_factor: float = 1.0,
        start_seconds: float = 0.05,
        render_api: bool = True,
        usage_seed: int | None = None,
        usage_api: bool = True,
    ) -> None:
        keys = api_keys if api_keys is not None else {"admin-key": "administrator"}
        for role in keys.values():
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        if build_limit < 1:
            raise ValueError("build_limit must be at least 1")
        if cold_factor <= 0:
            raise ValueError("cold_factor must be positive")
        seed = seed if seed is not None else demo_seed()

        self.build_seconds = build_seconds
        self.cold_factor = cold_factor  # a build starting with a cache it uses missing: x this
        self.build_limit = build_limit
        self.cache_delete_seconds = cache_delete_seconds
        self.sticky_sessions = sticky_sessions
        self.version = version
        self.runtime_cache_management = runtime_cache_management
        self.packages_api = packages_api  # False: no packages API (Connect < 2024.11.0)
        self._packages: list[dict[str, Any]] = [dict(row) for row in seed.packages]
        self.node_id = "node-1"
        self.log_requests = log_requests
        # True: Nagle's algorithm stays on for responses (headers and body are two sends), as
        # in `http.server`'s default: a client that delays its ACKs then waits ~40 ms per
        # response. Connect (Go) and nginx set TCP_NODELAY; bench/rebuild.py's dispatch
        # scenario shows nginx in front of such a server adds no stall.
        self.nagle = nagle
        self.record_requests = record_requests
        self.requests: list[RequestRecord] = []
        # (method, path, body) of each request as it arrives, before any injected latency: a
        # test can tell a request is held at Connect (`requests` records it once answered).
        self.arrivals: list[tuple[str, str, bytes]] = []

        # One lock guards all mutable state; each task has a Condition on it for long polls.
        self._lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._faults: _Faults | None = None
        self._raw: list[_Raw] = []
        self._stopping = False
        self._users = self._make_users(keys)
        self._owners = {owner["guid"]: owner for owner in seed.owners}
        self.hide_email_addresses = False  # Server.HideEmailAddresses: no email for non-admins
        self._caches: dict[tuple[str, str, str], dict[str, str]] = {}
        # Content health (sim.connect_health): system changes, live processes, job logs.
        self._health = HealthModel()
        self.start_seconds = start_seconds  # how long a process takes to start (or fail)
        self.render_api = render_api  # False: no v1 render route (an older Connect)
        self.usage_api = usage_api  # False: no visits/Shiny usage routes either (404)
        self.usage_denied = False  # True: the instrumentation routes answer 403
        self._usage = UsageModel(usage_seed, time.time())
        self._live: dict[str, dict[str, Any]] = {}  # guid -> the job of its live process
        self._job_logs: dict[str, list[dict[str, str]]] = {}  # job key -> log entries
        self._job_errors: dict[str, dict[str, Any]] = {}  # job key -> error summary
        self._denied: dict[str, int] = {}  # guid -> status its content URL answers
        self._visits = 0  # content URL requests being answered
        self._max_visits = 0
        for cache in seed.caches:
            self._store_cache(cache["language"], cache["version"], cache.get("image_name", "Local"))
        self._installations = self._runtime_installations(seed)
        self._content: dict[str, dict[str, Any]] = {}
        self._ordered: list[dict[str, Any]] | None = None  # content sorted by deploy time, lazily
        self._list_body: bytes | None = None  # cached body of the plain content list
        # Rewrites the content list's items before they are sent (`odd_listing`).
        self._listing_hook: Callable[[list[dict[str, Any]]], list[Any]] | None = None
        self._next_id = 1
        self._tasks: dict[str, _Task] = {}
        self._build_queue: deque[tuple[_Task, dict[str, Any]]] = deque()
        self._running_builds = 0
        self._max_running_builds = 0
        self._builds_started: list[str] = []
        self._jobs: dict[str, list[dict[str, Any]]] = {}  # by content guid, newest last
        self._next_job_id = 1
        self._outage: _Outage | None = None
        self._outages = 0
        self._up = threading.Event()
        self._up.set()
        self._builds = BuildModel()  # per-item durations, the log of builds that ran
        self._build_failures: dict[str, str | None] = {}
        self._task_rng = random.Random(secrets.randbits(64))

        # Binding here (not in start) makes `url` known before any content is created.
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self
        bound_host, bound_port = self._httpd.server_address[:2]
        assert isinstance(bound_host, str)  # AF_INET: the host is always a str
        self.url = f"http://{bound_host}:{bound_port}"
        self._serve_thread: threading.Thread | None = None
        self._lifecycle_lock = threading.Lock()
        self._serving = False  # start() was called (an outage may have the listener closed)
        self._closed = False
        self._stopped = threading.Event()
        self._scheduler = _Scheduler()

        for item in seed.content:
            self._insert_content(dict(item))

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeConnect:
        """Serve in a daemon thread; returns immediately. Idempotent."""
        with self._lifecycle_lock:
            if self._closed:
                raise RuntimeError("this FakeConnect was stopped; create a new one")
            self._serving = True
            if self._refusing():
                return self  # the end of the outage starts serving
            self._start_serving()
        return self

    def _start_serving(self) -> None:
        """(lifecycle lock held)"""
        if self._serve_thread is None:
            self._serve_thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.02},  # quick stop() for tests
                name="fake-connect-http",
                daemon=True,
            )
            self._serve_thread.start()

    def _stop_serving(self) -> None:
        """(lifecycle lock held)"""
        thread, self._serve_thread = self._serve_thread, None
        if thread is not None:
            self._httpd.shutdown()
            thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve until Ctrl-C or `stop()` from another thread (for the CLI); then stop.

        Works whether or not `start()` was called first.
        """
        self.start()
        try:
            while not self._stopped.wait(0.5):  # short waits keep Ctrl-C responsive
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""
        with self._lifecycle_lock:
            self._stop_serving()
            if not self._closed:
                self._closed = True
                self._stopped.set()
                self._up.set()
                self._shutdown_state()
                self._httpd.server_close()

    def _shutdown_state(self) -> None:
        self._scheduler.stop()
        with self._lock:
            self._stopping = True
            for task in self._tasks.values():
                task.cond.notify_all()  # release long polls

    def __enter__(self) -> FakeConnect:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- state and knobs

    def caches(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(cache) for cache in self._caches.values()]

    def add_cache(self, language: str, version: str, image_name: str = "Local") -> dict[str, str]:
        with self._lock:
            return dict(self._store_cache(language, version, image_name))

    def remove_caches(self) -> int:
        """Drop every runtime cache, as deleting them all after a system change does; how many."""
        with self._lock:
            count = len(self._caches)
            self._caches.clear()
            return count

    def add_content(self, **fields: Any) -> dict[str, Any]:
        """Create a content item (all v1 fields; defaults for anything not given) and return it."""
        fields.setdefault("last_deployed_time", rfc3339(datetime.now(UTC)))
        with self._lock:
            if "id" not in fields:
                fields["id"] = str(self._next_id)
            item = make_content_item(**fields)
            self._insert_content(item)
            return dict(item)

    def odd_listing(self, hook: Callable[[list[dict[str, Any]]], list[Any]] | None) -> None:
        """GET /v1/content answers `hook(items)` instead of the items (None: as they are), for
        answers a real Connect should not give: an item twice, a field of the wrong type."""
        with self._lock:
            self._listing_hook = hook
            self._list_body = None

    def content(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._sorted_content()]

    def add_package(
        self, guid: str, name: str, version: str = "1.0.0", *, bundle_id: str | None = None
    ) -> dict[str, Any]:
        """Record that `guid`'s bundle (its active one unless given) depends on `name`."""
        with self._lock:
            row = make_package(self._content[guid], name, version, bundle_id=bundle_id)
            self._packages.append(row)
            return dict(row)

    def set_build_duration(self, guid: str, seconds: float) -> None:
        self.set_build_durations({guid: seconds})

    def set_build_durations(self, durations: Mapping[str, float]) -> None:
        """Set the (warm) build duration of many items at once, e.g. `long_tailed_durations`."""
        with self._lock:
            self._builds.set_durations(dict(durations))

    def record_deployments(self, days_ago: float = 3.0) -> int:
        """Give each deployed item the restore job its deployment left (connect-api-2.md §6):
        a finished `packrat_restore` / `python_restore` job `days_ago` days back, as long as
        the item's warm build (`set_build_durations`, else `build_seconds`), in whole seconds
        as Connect writes its times. How many items got one."""
        recorded = 0
        with self._lock:
            for item in self._content.values():
                runtimes = item_runtimes(item)
                if item.get("bundle_id") is None or not runtimes:
                    continue
                tag = "packrat_restore" if runtimes[0][0] == "R" else "python_restore"
                seconds = self._builds.durations.get(item["guid"], self.build_seconds)
                job = self._new_job(item, tag)
                end = datetime.now(UTC) - timedelta(days=days_ago)
                job.update(
                    start_time=rfc3339(end - timedelta(seconds=seconds)),
                    end_time=rfc3339(end),
                    last_heartbeat_time=rfc3339(end),
                    exit_code=0,
                    status=1,
                )
                recorded += 1
        return recorded

    def set_locked(self, guid: str, message: str = "", *, locked: bool = True) -> None:
        """Lock (or unlock) an item, as `PATCH v1/content/{guid}` with `locked` does."""
        with self._lock:
            item = dict(self._content[guid])
            item["locked"] = locked
            item["locked_message"] = message if locked else ""
            self._insert_content(item)

    def fail_builds(self, guids: Iterable[str], error: str | None = None) -> None:
        """Make future builds of these items fail (code 1, result build-failed-error).

        Without `error`, a realistic message for the item's runtime is used.
        """
        with self._lock:
            for guid in guids:
                self._build_failures[guid] = error

    def clear_build_failures(self) -> None:
        with self._lock:
            self._build_failures.clear()

    def inject_faults(
        self,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        status: int = 503,
        paths: str | None = None,
        seed: int | None = None,
        reset_rate: float = 0.0,
        retry_after: str | None = None,
        lose_rate: float = 0.0,
        limit: int | None = None,
        limit_per_path: int | None = None,
    ) -> None:
        """Add latency / proxy errors / connection resets / lost answers to matching requests.

        `paths` is a regex searched in the request path (None: every /__api__ path). One random
        draw per matching request decides: reset (reset_rate), error (error_rate), lost answer
        (lose_rate: processed, then the connection is reset) or normal. `retry_after` (seconds
        or an HTTP-date) is sent as a Retry-After header on each error. `limit`: inject that
        many faults, then none; `limit_per_path`: that many for each request path.
        """
        if not 0.0 <= error_rate + reset_rate + lose_rate <= 1.0:
            raise ValueError("error_rate + reset_rate + lose_rate must be within 0..1")
        with self._fault_lock:
            self._faults = _Faults(
                latency=latency,
                error_rate=error_rate,
                status=status,
                paths=re.compile(paths) if paths is not None else None,
                reset_rate=reset_rate,
                rng=random.Random(seed),
                retry_after=retry_after,
                lose_rate=lose_rate,
                left=limit,
                per_path=limit_per_path,
            )

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults = None
            self._raw.clear()

    def serve_raw(
        self,
        method: str,
        paths: str,
        *,
        body: bytes = b"",
        status: int = 200,
        content_type: str = JSON_TYPE,
        repeat: int = 1,
        content_length: bool = True,
        process: bool = True,
        limit: int | None = None,
    ) -> _Raw:
        """Answer `method` requests whose path matches the regex `paths` with `body` (written
        `repeat` times: a huge body costs no memory here) and `status`, instead of the API's
        answer. `content_length` False: no Content-Length, the connection closes after the
        body. `process`: the request reaches the API first (its answer is dropped), so a DELETE
        still deletes. `limit`: that many answers, then the API's again. Returns the rule,
        whose `served` and `bytes_sent` tell what happened."""
        rule = _Raw(
            method.upper(),
            re.compile(paths),
            status,
            body,
            content_type,
            repeat,
            content_length,
            process,
            limit,
        )
        with self._fault_lock:
            self._raw.append(rule)
        return rule

    def _take_raw(self, method: str, path: str) -> _Raw | None:
        with self._fault_lock:
            for rule in self._raw:
                if rule.method == method and rule.paths.search(path):
                    if rule.left is not None:
                        if rule.left <= 0:
                            continue
                        rule.left -= 1
                    rule.served += 1
                    return rule
        return None

    def outage(
        self, seconds: float, *, status: int | None = None, retry_after: str | None = None
    ) -> None:
        """Connect is down for `seconds` from now (returns at once; see `wait_up`).

        `status` None: connections are refused (the listener is closed; kept-alive connections
        are reset at their next request, long polls at once). Otherwise every request is
        answered by the proxy with `status` (and `retry_after`, if given, as Retry-After).
        """
        with self._lifecycle_lock:
            if self._closed:
                raise RuntimeError("this FakeConnect was stopped")
            self._outages += 1
            outage = _Outage(status, retry_after, self._outages)
            was_refusing = self._refusing()
            self._outage = outage
            self._up.clear()
            if status is None and not was_refusing:
                self._stop_serving()
                self._httpd.socket.close()
            elif status is not None and was_refusing:
                self._reopen()
        with self._lock:
            for task in self._tasks.values():
                task.cond.notify_all()  # long polls end: reset, or answered with the error
        self._scheduler.call_later(seconds, lambda: self.end_outage(outage.serial))

    def end_outage(self, serial: int | None = None) -> None:
        """Connect is back (now, rather than when `outage` said); `serial`: only that outage."""
        with self._lifecycle_lock:
            outage = self._outage
            if outage is None or self._closed or serial not in (None, outage.serial):
                return
            if self._refusing():
                self._reopen()
            self._outage = None
            self._up.set()

    def wait_up(self, timeout: float | None = None) -> bool:
        """Block until no outage is on; False on timeout."""
        return self._up.wait(timeout)

    def _refusing(self) -> bool:
        outage = self._outage
        return outage is not None and outage.status is None

    def _reopen(self) -> None:
        """Listen on the same port again (lifecycle lock held)."""
        httpd = self._httpd
        httpd.socket = socket.socket(httpd.address_family, httpd.socket_type)
        httpd.server_bind()  # SO_REUSEADDR: the port just closed binds again
        httpd.server_activate()
        if self._serving:
            self._start_serving()

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        pattern = re.compile(path_regex) if path_regex is not None else None
        return sum(
            1
            for record in list(self.requests)
            if (method is None or record.method == method.upper())
            and (pattern is None or pattern.search(record.path))
        )

    def arrived(self, method: str, path_regex: str, body_contains: bytes = b"") -> int:
        """Requests that reached the server (answered or still held by a fault)."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for m, path, body in list(self.arrivals)
            if m == method.upper() and pattern.search(path) and body_contains in body
        )

    def clear_requests(self) -> None:
        self.requests.clear()
        self.arrivals.clear()

    def builds_started(self) -> list[str]:
        """GUIDs of the accepted build requests, in request order (queued builds included)."""
        with self._lock:
            return list(self._builds_started)

    def cold_builds(self) -> list[str]:
        """GUIDs of the builds that started cold (a runtime cache they use was missing when they
        got a build slot), in start order."""
        with self._lock:
            return self._builds.cold_builds()

    def build_log(self, *, include_running: bool = False) -> list[dict[str, Any]]:
        """The builds that ran, in start order: guid, task_id, started and ended (monotonic
        seconds), cold, duration (the one used, cold factor included), cold_runtimes
        ([language, version] pairs) and ok. Running builds (ended and ok None) only on request.
        """
        with self._lock:
            return self._builds.log(include_running)

    def clear_build_log(self) -> None:
        """Forget the builds that ran (`build_log`, `cold_builds`), e.g. between bench runs."""
        with self._lock:
            self._builds.clear()

    def jobs(self, guid: str) -> list[dict[str, Any]]:
        """The item's jobs, oldest first (a job per build that got a build slot)."""
        with self._lock:
            return [dict(job) for job in self._jobs.get(guid, [])]

    def max_concurrent_builds_seen(self) -> int:
        with self._lock:
            return self._max_running_builds

    def running_builds(self) -> int:
        with self._lock:
            return self._running_builds

    def task(self, task_id: str) -> dict[str, Any]:
        """The task's full JSON (all output lines); KeyError if unknown."""
        with self._lock:
            return self._tasks[task_id].to_json()

    def tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [task.to_json() for task in self._tasks.values()]

    # ---------------------------------------------------------------- content health

    def system_change(
        self, name: str, *, breaks: Mapping[str, Iterable[str]], library: str | None = None
    ) -> SystemChange:
        """A system library changed (`"gdal"`, breaks={"R": ["sf", "terra"]}): every live
        process ends; items whose active bundle uses a broken package and whose last successful
        build used a cache created before now fail to start (see `sim.connect_health`)."""
        with self._lock:
            change = self._health.system_change(name, breaks, library)
            self._end_processes(list(self._live))
            return change

    def remove_runtime(self, language: str, version: str, image_name: str = "Local") -> None:
        """An R or Python installation goes: it drops out of `v1/server_settings/{r,python}`,
        its items' processes end, they fail to start and their builds fail."""
        language = _canonical_language(language)
        with self._lock:
            self._health.removed.add((language, version, image_name))
            self._installations[language] = [
                entry
                for entry in self._installations.get(language, [])
                if (entry["version"], entry["image_name"]) != (version, image_name)
            ]
            on_it = [
                guid
                for guid in self._live
                if (language, version) in item_runtimes(self._content[guid])
                and (self._content[guid].get("image_name") or "Local") == image_name
            ]
            self._end_processes(on_it)

    def end_processes(self) -> None:
        """Every live process ends (as a restart of Connect does)."""
        with self._lock:
            self._end_processes(list(self._live))

    def deny_viewing(self, guid: str, status: int = 403) -> None:
        """The item's URL answers `status` (401/403) to every key, starting no process: an
        admin who is not a viewer of it."""
        with self._lock:
            self._denied[guid] = status

    def live_processes(self) -> list[str]:
        with self._lock:
            return list(self._live)

    def max_concurrent_visits_seen(self) -> int:
        """The most content URL requests answered at once (each may start a process)."""
        with self._lock:
            return self._max_visits

    def starts_failing(self) -> list[str]:
        """GUIDs of the published interactive items that would fail to start now."""
        with self._lock:
            return [
                guid
                for guid, item in self._content.items()
                if item["bundle_id"] is not None
                and item["app_mode"] in RUN_TAGS
                and self._breakage(item) is not None
            ]

    def _runtime_removed(self, item: dict[str, Any]) -> str | None:
        """(lock held) The build error of an item on a removed runtime, else None."""
        image = item.get("image_name") or "Local"
        for language, version in item_runtimes(item):
            if version and (language, version, image) in self._health.removed:
                return (
                    "Cannot find compatible environment: no compatible "
                    f"{image} environment with {language} version {version}"
                )
        return None

    def _breakage(self, item: dict[str, Any]) -> Breakage | None:
        """(lock held)"""
        rows = [
            row
            for row in self._packages
            if row["content_guid"] == item["guid"] and row["bundle_id"] == item["bundle_id"]
        ]
        return self._health.breakage(item, item_runtimes(item), rows)

    def _end_processes(self, guids: Iterable[str]) -> None:
        """(lock held) The live processes of `guids` end normally."""
        now = rfc3339(datetime.now(UTC))
        for guid in guids:
            job = self._live.pop(guid, None)
            if job is not None and job["status"] == 0:
                job.update(status=1, exit_code=0, end_time=now, last_heartbeat_time=now)

    def _visit_content(self, path: str, headers: dict[str, str]) -> _Response:
        """`GET /content/{guid}/...`: the item as a viewer gets it, starting its process."""
        match = re.match(r"^/content/([^/]+)(/.*)?$", path)
        if match is None:
            return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        guid, rest = match.group(1), match.group(2)
        if rest is None:
            return _Response(302, b"", "text/html", location=f"/content/{guid}/")
        authorization = headers.get("authorization", "")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "key" or key.strip() not in self._users:
            return _Response(302, b"", "text/html", location=f"/__login__?url=/content/{guid}/")
        with self._lock:
            item = self._content.get(guid)
            if item is None or item["bundle_id"] is None:
                return _Response(404, b"<html>Not found</html>", "text/html")
            if guid in self._denied:
                return _Response(self._denied[guid], b"<html>Unauthorized</html>", "text/html")
            tag = RUN_TAGS.get(item["app_mode"])
            if tag is None:  # static and rendered content: its last output, no process
                return _Response(200, b"<html>last rendered output</html>", "text/html")
            if guid in self._live:
                return self._live_answer(item)
            job = self._new_job(item, tag)
            breakage = self._breakage(item)
            self._visits += 1
            self._max_visits = max(self._max_visits, self._visits)
        try:
            time.sleep(self.start_seconds)  # the process starts (or fails) in bounded time
        finally:
            with self._lock:
                self._visits -= 1
        with self._lock:
            now = rfc3339(datetime.now(UTC))
            if breakage is not None:
                self._job_logs[job["key"]] = _log_entries(breakage.log)
                self._job_errors[job["key"]] = {
                    "code": 1,
                    "summary": breakage.summary,
                    "help_url": "https://docs.posit.co/connect/user/troubleshooting/",
                }
                job.update(status=1, exit_code=1, end_time=now, last_heartbeat_time=now)
                return _Response(502, _proxy_error_page(502), "text/html")
            self._job_logs[job["key"]] = _log_entries(healthy_log(item))
            self._live[guid] = job
            return self._live_answer(item)

    @staticmethod
    def _live_answer(item: dict[str, Any]) -> _Response:
        if item["app_mode"] in API_MODES:  # no route at `/`
            return _Response(404, b'{"error": "404 - Not Found"}', JSON_TYPE)
        return _Response(200, b"<html>the app</html>", "text/html")

    def _job(self, guid: str, key: str, user: dict[str, Any]) -> dict[str, Any]:
        """(lock held)"""
        if guid not in self._content:
            raise ApiError(4)
        if user["user_role"] == "viewer":
            raise ApiError(22)
        for job in self._jobs.get(guid, []):
            if job["key"] == key:
                return job
        raise ApiError(4)

    def _job_log(
        self, guid: str, key: str, user: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        lines = _int_param(query, "maxLogLines", 50, 1, 100_000)
        with self._lock:
            self._job(guid, key, user)
            return {"entries": list(self._job_logs.get(key, []))[-lines:]}

    def _job_error(self, guid: str, key: str, user: dict[str, Any]) -> _Response:
        with self._lock:
            self._job(guid, key, user)
            error = self._job_errors.get(key)
        return _Response(204, b"") if error is None else _json(200, error)

    def _start_render(self, guid: str, user: dict[str, Any]) -> _Task:
        with self._lock:
            item = self._content.get(guid)
            if item is None:
                raise ApiError(4)
            if user["user_role"] == "viewer":
                raise ApiError(22)
            if item["bundle_id"] is None:
                raise ApiError(28)
            tag = RENDER_TAGS.get(item["app_mode"])
            if tag is None:
                raise ApiError(25, "Only rendered content can be rendered.")
            task = self._new_task("render", guid)
            task.output.append(f"Rendering {_BUILD_KIND.get(item['app_mode'], 'content')}...")
            task.job = self._new_job(item, tag)
            breakage = self._breakage(item)
        self._scheduler.call_later(self.start_seconds, lambda: self._finish_render(task, breakage))
        return task

    def _finish_render(self, task: _Task, breakage: Breakage | None) -> None:
        with self._lock:
            assert task.job is not None
            key = task.job["key"]
            if breakage is None:
                self._job_logs[key] = _log_entries(("Output created: index.html",))
                task.output.append("Output created: index.html")
                self._end_job(task, 0)
                self._finish_task(task)
                return
            self._job_logs[key] = _log_entries(breakage.log)
            task.output.extend(line for line in breakage.log if line)
            error = "Unable to render: Rendering exited abnormally: exit status 1"
            self._job_errors[key] = {"code": 1, "summary": error, "help_url": ""}
            self._end_job(task, 1)
            self._finish_task(task, code=1, error=error, result=dict(BUILD_FAILED_RESULT))

    def _variants(self, guid: str) -> list[dict[str, Any]]:
        item = self._lookup_content(guid)
        return [
            {
                "id": item["id"],
                "app_id": item["id"],
                "key": pep503(item["guid"])[:8],
                "bundle_id": item["bundle_id"],
                "is_default": True,
                "name": "default",
            }
        ]

    def _variant_render(self, variant_id: str, user: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            found = [g for g, item in self._content.items() if item["id"] == variant_id]
        if not found:
            raise ApiError(4)
        return self._start_render(found[0], user).to_json()

    # ---------------------------------------------------------------- internal state helpers

    @staticmethod
    def _make_users(keys: dict[str, str]) -> dict[str, dict[str, Any]]:
        users: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = {}
        for key, role in keys.items():
            counts[role] = counts.get(role, 0) + 1
            base = {"administrator": "admin", "publisher": "publisher", "viewer": "viewer"}[role]
            username = base if counts[role] == 1 else f"{base}{counts[role]}"
            user: dict[str, Any] = {
                "email": f"{username}@example.com",
                "username": username,
                "first_name": username.capitalize(),
                "last_name": "User",
                "password": "",
                "user_role": role,
                "created_time": "2023-07-24T18:49:28.584906476Z",
                "updated_time": "2023-10-17T19:24:03.386371574Z",
                "active_time": rfc3339(datetime.now(UTC)),
                "confirmed": True,
                "locked": False,
                "guid": str(uuid.uuid5(_NAMESPACE, f"user:{key}")),
            }
            if role == "administrator":
                user["privileges"] = [
                    "add_users",
                    "add_vanities",
                    "build_bundles",
                    "change_app_permissions",
                    "change_apps",
                    "publish_apps",
                    "remove_apps",
                    "view_app_settings",
                    "view_apps",
                ]
            users[key] = user
        return users

    @staticmethod
    def _runtime_installations(seed: Seed) -> dict[str, list[dict[str, str]]]:
        """Interpreters the server has, derived from the seed's caches and content."""
        found: dict[str, set[tuple[str, str]]] = {"R": set(), "Python": set(), "Quarto": set()}
        for cache in seed.caches:
            language = _canonical_language(cache["language"])
            if language in found:
                found[language].add((cache["version"], cache.get("image_name", "Local")))
        for item in seed.content:
            image = item.get("image_name") or "Local"
            for language, key in (("R", "r_version"), ("Python", "py_version")):
                if item.get(key):
                    found[language].add((item[key], image))
            if item.get("quarto_version"):
                found["Quarto"].add((item["quarto_version"], image))
        return {
            language: [
                {
                    "version": version,
                    "cluster_name": "Local" if image == "Local" else "Kubernetes",
                    "image_name": image,
                }
                for version, image in sorted(entries)
            ]
            for language, entries in found.items()
        }

    def _store_cache(self, language: str, version: str, image_name: str) -> dict[str, str]:
        """Insert a cache (lock held or during init); returns the stored record."""
        key = _cache_key(language, version, image_name)
        if key not in self._caches:
            self._health.cache_created(key)
            self._caches[key] = {
                "language": _canonical_language(language),
                "version": version,
                "image_name": image_name,
            }
        return self._caches[key]

    def _insert_content(self, item: dict[str, Any]) -> None:
        """Add/replace an item (lock held or during init); fills the URL fields."""
        guid = item["guid"]
        item["content_url"] = f"{self.url}/content/{guid}/"
        item["dashboard_url"] = f"{self.url}/connect/#/apps/{guid}"
        self._content[guid] = item
        if item["id"].isdigit():
            self._next_id = max(self._next_id, int(item["id"]) + 1)
        self._ordered = None
        self._list_body = None

    def _sorted_content(self) -> list[dict[str, Any]]:
        if self._ordered is None:
            self._ordered = sorted(
                self._content.values(),
                key=lambda item: (item["last_deployed_time"], item["created_time"]),
                reverse=True,
            )
        return self._ordered

    def _new_task(self, kind: str, guid: str | None = None) -> _Task:
        while True:
            task_id = "".join(self._task_rng.choices(_TASK_ID_ALPHABET, k=16))
            if task_id not in self._tasks:
                break
        task = _Task(id=task_id, kind=kind, cond=threading.Condition(self._lock), guid=guid)
        self._tasks[task_id] = task
        return task

    def _finish_task(
        self, task: _Task, *, code: int = 0, error: str = "", result: dict[str, Any] | None = None
    ) -> None:
        task.finished = True
        task.code = code
        task.error = error
        task.result = result
        task.cond.notify_all()

    # ---------------------------------------------------------------- HTTP dispatch

    def _draw_fault(self, path: str) -> tuple[float, str | None, int, str | None]:
        """(latency, action, status, retry_after); action is None, "error", "reset" or "lose"."""
        with self._fault_lock:
            faults = self._faults
            if faults is None:
                return 0.0, None, 0, None
            if faults.paths is None:
                if not path.startswith(API_PREFIX + "/"):
                    return 0.0, None, 0, None
            elif not faults.paths.search(path):
                return 0.0, None, 0, None
            draw = faults.rng.random()
            if faults.per_path is not None:
                if faults.hits.get(path, 0) >= faults.per_path:
                    return faults.latency, None, 0, None
                if draw < faults.reset_rate + faults.error_rate + faults.lose_rate:
                    faults.hits[path] = faults.hits.get(path, 0) + 1
            if faults.left is not None:
                if faults.left <= 0:
                    return faults.latency, None, 0, None
                if draw < faults.reset_rate + faults.error_rate + faults.lose_rate:
                    faults.left -= 1
        if draw < faults.reset_rate:
            return faults.latency, "reset", 0, None
        if draw < faults.reset_rate + faults.error_rate:
            return faults.latency, "error", faults.status, faults.retry_after
        if draw < faults.reset_rate + faults.error_rate + faults.lose_rate:
            return faults.latency, "lose", 0, None
        return faults.latency, None, 0, None

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> _Response:
        if path == "/__ping__":
            return _json(200, {})
        if path.startswith("/content/") and method == "GET":
            return self._visit_content(path, headers)
        if not path.startswith(API_PREFIX + "/"):
            return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        try:
            return self._route(method, path[len(API_PREFIX) :].rstrip("/"), query, headers, body)
        except ApiError as error:
            return _error_response(error)
        except Exception:
            logger.exception("fake Connect failed on %s %s", method, path)
            return _error_response(ApiError(1))

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> _Response:
        if path == "/server_settings" and method == "GET":
            return _json(200, self._server_settings())
        user = self._authenticate(headers)
        parts = path.strip("/").split("/")
        match (method, parts):  # the unversioned routes posit-sdk's render uses
            case ("GET", ["applications", guid, "variants"]):
                return _json(200, self._variants(guid))
            case ("POST", ["variants", variant_id, "render"]):
                return _json(200, self._variant_render(variant_id, user))
        if parts[0] != "v1":
            raise ApiError(2)
        route = parts[1:]
        match (method, route):
            case ("GET", ["user"]):
                return _json(200, user)
            case ("GET", ["users", guid]):
                return _json(200, self._get_user(guid, user))
            case ("GET", ["server_settings", "r" | "python" | "quarto" as language]):
                return _json(200, self._installation_settings(language))
            case ("GET", ["system", "caches", "runtime"]):
                self._require_cache_admin(user)
                return _json(200, {"caches": self.caches()})
            case ("DELETE", ["system", "caches", "runtime"]):
                self._require_cache_admin(user)
                return _json(200, self._delete_cache(body))
            case ("GET", ["tasks", task_id]):
                return _json(200, self._get_task(task_id, query, headers))
            case ("GET", ["content"]):
                return self._list_content(user, query)
            case ("GET", ["content", guid]):
                return _json(200, self._content_json(self._lookup_content(guid), user, set()))
            case ("POST", ["content", guid, "build"]):
                return _json(200, self._start_build_request(guid, user, body))
            case ("GET", ["content", guid, "jobs"]):
                return _json(200, self._list_jobs(guid, user))
            case ("GET", ["content", guid, "jobs", key]):
                with self._lock:
                    return _json(200, dict(self._job(guid, key, user)))
            case ("GET", ["content", guid, "jobs", key, "log"]):
                return _json(200, self._job_log(guid, key, user, query))
            case ("GET", ["content", guid, "jobs", key, "error"]):
                return self._job_error(guid, key, user)
            case ("POST", ["content", guid, "render"]) if self.render_api:
                return _json(202, {"task_id": self._start_render(guid, user).id})
            case ("GET", ["search", "content"]):
                return _json(200, self._search_content(user, query))
            case ("GET", ["packages"]) if self.packages_api:
                return _json(200, self._list_packages(user, query))
            case ("GET", ["content", guid, "packages"]) if self.packages_api:
                return self._content_packages(guid, user)
            case ("GET", ["packages"] | ["content", _, "packages"]):
                return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
            case ("GET", ["instrumentation", *usage]):
                return self._instrumentation(usage, query)
        raise ApiError(2)

    # ---------------------------------------------------------------- usage (issue 20)

    def set_usage(self, guid: str, per_day: float) -> None:
        """The item's visits per day from now on (0: never visited)."""
        with self._lock:
            self._usage.overrides[guid] = per_day

    def usage_rates(self) -> dict[str, float]:
        """Visits per day of every published item (the seeded spread and the overrides)."""
        with self._lock:
            published = [g for g, item in self._content.items() if item.get("published", True)]
            rates = self._usage.rates_for(published)
            return {guid: rates.get(guid, 0.0) for guid in published}

    def _instrumentation(self, route: list[str], query: dict[str, str]) -> _Response:
        not_found = _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        hits = route == ["content", "hits"]
        paged = route in (["content", "visits"], ["shiny", "usage"])
        if (hits and not _at_least(self.version, (2025, 4))) or (paged and not self.usage_api):
            return not_found
        if not hits and not paged:
            raise ApiError(2)
        if self.usage_denied:
            raise ApiError(22)
        with self._lock:
            items = dict(self._content)
            if hits:
                since = parse_time(query.get("from"), 0.0)
                until = parse_time(query.get("to"), self._usage.anchor + 1.0)
                return _Response(200, self._usage.hits(items, since, until), "application/json")
            base = f"{self.url}{API_PREFIX}/v1/instrumentation/{'/'.join(route)}"
            page = self._usage.page(items, query, shiny=route[0] == "shiny", base=base)
        return _json(200, page)

    def _authenticate(self, headers: dict[str, str]) -> dict[str, Any]:
        authorization = headers.get("authorization", "").strip()
        if not authorization:
            raise ApiError(24)
        scheme, _, key = authorization.partition(" ")
        user = self._users.get(key.strip()) if scheme.lower() == "key" else None
        if user is None:
            raise ApiError(30)
        return user

    def _require_cache_admin(self, user: dict[str, Any]) -> None:
        if user["user_role"] != "administrator":
            raise ApiError(22)
        if not self.runtime_cache_management:
            raise ApiError(194)

    # ---------------------------------------------------------------- endpoints

    def _server_settings(self) -> dict[str, Any]:
        return {
            "hostname": "connect-sim",
            "version": self.version,
            "build": f"v{self.version}",
            "about": f"Posit Connect v{self.version}",
            "authentication": {
                "handles_credentials": True,
                "handles_login": True,
                "name": "Password",
                "notice": "",
                "api_enabled": True,
                "unique_usernames": True,
            },
            "license": {"tier": "enterprise", "allow-apis": True, "remote-execution": True},
            "runtimes": ["R", "Python", "Quarto"],
            "execution_type": "native",
            "enable_runtime_constraints": True,
            "enable_image_management": False,
            "enable_runtime_cache_management": self.runtime_cache_management,
            "git_enabled": True,
            "dashboard_path": "/connect",
            "viewer_kiosk": False,
            "mail_configured": False,
            "public_warning": "",
            "logout_warning": "",
        }

    def _installation_settings(self, language: str) -> dict[str, Any]:
        name = {"r": "R", "python": "Python", "quarto": "Quarto"}[language]
        payload: dict[str, Any] = {"installations": self._installations[name]}
        if name == "Python":
            payload["api_enabled"] = True
        return payload

    def _delete_cache(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body) if body else None
        except ValueError:
            raise ApiError(121) from None
        if not isinstance(request, dict):
            raise ApiError(121)
        for name in ("language", "version", "image_name"):
            value = request.get(name)
            if value is None or value == "":
                raise ApiError(12)
            if not isinstance(value, str):
                raise ApiError(121)
        dry_run = request.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ApiError(121)
        if request["language"].lower() not in ("r", "python"):
            raise ApiError(179)
        key = _cache_key(request["language"], request["version"], request["image_name"])
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                raise ApiError(4, "Cache does not exist")
            response: dict[str, Any] = {**cache, "task_id": None}
            if dry_run:
                return response
            task = self._new_task("cache-delete")
            task.output.append("Deleting runtime cache...")
            response["task_id"] = task.id
        self._scheduler.call_later(
            self.cache_delete_seconds, lambda: self._finish_delete(task, key)
        )
        return response

    def _finish_delete(self, task: _Task, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._caches.pop(key, None)
            task.output.append("Successfully deleted runtime cache")
            self._finish_task(task)

    def _get_task(
        self, task_id: str, query: dict[str, str], headers: dict[str, str]
    ) -> dict[str, Any]:
        if self.sticky_sessions and not self._has_sticky_cookie(headers):
            raise ApiError(141)  # the request landed on a node that is not running the task
        wait = _int_param(query, "wait", 0, 0, MAX_TASK_WAIT)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise ApiError(4)
            first = _int_param(query, "first", 0, 0, len(task.output))
            if wait and not task.finished:
                task.cond.wait_for(
                    lambda: task.finished or self._stopping or self._outage is not None,
                    timeout=wait,
                )
            return task.to_json(first)

    def _list_jobs(self, guid: str, user: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            if guid not in self._content:
                raise ApiError(4)
            if user["user_role"] == "viewer":
                raise ApiError(22)  # owners, collaborators and admins only
            return [dict(job) for job in reversed(self._jobs.get(guid, []))]

    def _has_sticky_cookie(self, headers: dict[str, str]) -> bool:
        for pair in headers.get("cookie", "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == STICKY_COOKIE and value == self.node_id:
                return True
        return False

    def _get_user(self, guid: str, caller: dict[str, Any]) -> dict[str, Any]:
        """`GET v1/users/{guid}`: a content owner from the seed or a key's user, in Connect's
        User shape; `email` is blank for non-admin callers when `hide_email_addresses` is on."""
        found = self._owners.get(guid) or next(
            (u for u in self._users.values() if u["guid"] == guid), None
        )
        if found is None:
            raise ApiError(4)
        data: dict[str, Any] = {
            "email": found.get("email", ""),
            "username": found.get("username", ""),
            "first_name": found.get("first_name", ""),
            "last_name": found.get("last_name", ""),
            "user_role": found.get("user_role", "publisher"),
            "created_time": found.get("created_time", "2023-07-24T18:49:28Z"),
            "updated_time": found.get("updated_time", "2023-10-17T19:24:03Z"),
            "active_time": found.get("active_time"),
            "confirmed": found.get("confirmed", True),
            "locked": found.get("locked", False),
            "guid": guid,
        }
        if caller["user_role"] == "administrator" or caller["guid"] == guid:
            data["external_id"] = found.get("external_id")
        elif self.hide_email_addresses:
            data["email"] = ""
        return data

    def _lookup_content(self, guid: str) -> dict[str, Any]:
        with self._lock:
            item = self._content.get(guid)
            if item is None:
                raise ApiError(4)
            return item

    @staticmethod
    def _parse_include(query: dict[str, str]) -> set[str]:
        include = {part.strip() for part in query.get("include", "").split(",") if part.strip()}
        if not include <= INCLUDE_OPTIONS:
            raise ApiError(161)
        return include

    def _content_json(
        self, item: dict[str, Any], user: dict[str, Any], include: set[str]
    ) -> dict[str, Any]:
        if user["user_role"] != "viewer" and not include:
            return item  # items are replaced, never mutated, so sharing is safe
        result = dict(item)
        if user["user_role"] == "viewer":
            for name in ENVIRONMENT_FIELDS:
                result[name] = None
        if "owner" in include:
            owner = self._owners.get(item["owner_guid"], {"guid": item["owner_guid"]})
            result["owner"] = {
                "guid": owner["guid"],
                "username": owner.get("username", ""),
                "first_name": owner.get("first_name", ""),
                "last_name": owner.get("last_name", ""),
            }
        if "tags" in include:
            result["tags"] = []
        if "vanity_url" in include:
            result["vanity_url"] = None
        return result

    def _list_content(self, user: dict[str, Any], query: dict[str, str]) -> _Response:
        include = self._parse_include(query)
        owner_guid = query.get("owner_guid") or None
        name = query.get("name") or None
        plain = user["user_role"] != "viewer" and not include and not owner_guid and not name
        with self._lock:
            hook = self._listing_hook
            plain = plain and hook is None
            if plain and self._list_body is not None:
                return _Response(200, self._list_body)
            items = [
                item
                for item in self._sorted_content()
                if (owner_guid is None or item["owner_guid"] == owner_guid)
                and (name is None or item["name"] == name)
            ]
            listed: list[Any] = [self._content_json(item, user, include) for item in items]
            body = json.dumps(hook(listed) if hook is not None else listed).encode()
            if plain:
                self._list_body = body  # the hot path for big servers: serialize once
        return _Response(200, body)

    def _search_content(self, user: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        include = self._parse_include(query)
        page_number = _int_param(query, "page_number", 1, 1, 1_000_000)
        page_size = _int_param(query, "page_size", 500, 1, 500)
        terms = query.get("q", "").lower().split()
        with self._lock:
            matches = [
                item
                for item in self._sorted_content()
                if all(
                    term in f"{item['name']}\n{item['title']}\n{item['description']}".lower()
                    for term in terms
                )
            ]
            start = (page_number - 1) * page_size
            page = [
                self._content_json(item, user, include)
                for item in matches[start : start + page_size]
            ]
        return {"total": len(matches), "current_page": page_number, "results": page}

    # ---------------------------------------------------------------- packages

    def _package_row(self, row: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        return {
            "language": row["language"],
            "language_version": row["language_version"],
            "name": row["name"],
            "version": row["version"],
            "hash": row["hash"],
            "bundle_id": row["bundle_id"],
            "app_id": item["id"],
            "app_guid": item["guid"],
            "content_id": item["id"],
            "content_guid": item["guid"],
        }

    @staticmethod
    def _managed(row: dict[str, Any], item: dict[str, Any]) -> bool:
        """Content with environment management off is not listed (connect-api-2.md §2)."""
        key = (
            "py_environment_management"
            if row["language"] == "python"
            else "r_environment_management"
        )
        return item.get(key) is not False

    def _list_packages(self, user: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        if user["user_role"] == "viewer":
            raise ApiError(22)  # administrators and publishers only
        page_number = _int_param(query, "page_number", 1, 1, 1_000_000_000)
        page_size = _int_param(query, "page_size", 20, 1, 1_000_000_000)
        name = query.get("name") or None
        with self._lock:
            rows = [
                self._package_row(row, item)
                for row in self._packages
                if (item := self._content.get(row["content_guid"])) is not None
                and self._managed(row, item)
                and (name is None or _package_named(row["language"], row["name"], name))
            ]
        rows.sort(key=lambda r: (r["language"], r["name"].lower(), r["content_guid"]))
        if query.get("asc_order", "true").lower() == "false":
            rows.reverse()
        start = (page_number - 1) * page_size
        return {
            "current_page": page_number,
            "total": len(rows),
            "results": rows[start : start + page_size],
        }

    def _content_packages(self, guid: str, user: dict[str, Any]) -> _Response:
        if user["user_role"] == "viewer":
            raise ApiError(22)
        item = self._lookup_content(guid)
        if item["bundle_id"] is None:
            return _Response(204, b"")
        with self._lock:
            rows = [
                {key: row[key] for key in ("language", "name", "version", "hash")}
                for row in self._packages
                if row["content_guid"] == guid and row["bundle_id"] == item["bundle_id"]
            ]
        rows.sort(key=lambda r: (r["language"], r["name"].lower()))
        return _json(200, rows)

    # ---------------------------------------------------------------- builds

    def _start_build_request(self, guid: str, user: dict[str, Any], body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body) if body.strip() else {}
        except ValueError:
            raise ApiError(121) from None
        if not isinstance(request, dict):
            raise ApiError(121)
        bundle_id = request.get("bundle_id")
        if bundle_id is not None and not isinstance(bundle_id, str | int):
            raise ApiError(121)
        with self._lock:
            item = self._content.get(guid)
            if item is None:
                raise ApiError(4)
            if user["user_role"] == "viewer":
                raise ApiError(22)
            if item.get("locked") is True:
                raise ApiError(222)  # see ERRORS: status and message are our choice
            active = item["bundle_id"]
            if bundle_id is None:
                if active is None:
                    raise ApiError(28)
            elif active is None or not str(bundle_id).isdigit() or int(bundle_id) > int(active):
                raise ApiError(4)
            task = self._new_task("build", guid)
            self._builds_started.append(guid)
            if self._running_builds < self.build_limit:
                self._run_build(task, item)
            else:
                task.output.append("Waiting for an available build slot...")
                self._build_queue.append((task, item))
            return {"task_id": task.id}

    def _runtime_cache_state(self, item: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
        """(language, version, cached) for each runtime the item uses (lock held)."""
        image = item.get("image_name") or "Local"
        return [
            (language, version, _cache_key(language, version or "", image) in self._caches)
            for language, version in item_runtimes(item)
        ]

    def _run_build(self, task: _Task, item: dict[str, Any]) -> None:
        """Start a build now (lock held): first output lines, then timed steps."""
        self._running_builds += 1
        self._max_running_builds = max(self._max_running_builds, self._running_builds)
        runtimes = self._runtime_cache_state(item)
        image = item.get("image_name") or "Local"
        for language, version, cached in runtimes:
            key = _cache_key(language, version or "", image)
            task.cache_serials[language] = self._health.cache_serial(key) if cached else None
        task.output.append(f"Building {_BUILD_KIND.get(item['app_mode'], 'content')}...")
        for language, version, _ in runtimes:
            if language == "R":
                task.output.append(
                    f"Bundle requested R version {version}; using /opt/R/{version}/bin/R "
                    f"which has version {version}"
                )
                task.output.append("Performing manifest.json to packrat transformation.")
            else:
                task.output.append(
                    f"Bundle requested Python version {version}; using "
                    f"/opt/python/{version}/bin/python3 which has version {version}"
                )
        if runtimes:
            tag = "packrat_restore" if runtimes[0][0] == "R" else "python_restore"
            task.job = self._new_job(item, tag)
        # Only a runtime with a version has a cache to miss.
        cold: list[Runtime] = [(lang, ver) for lang, ver, cached in runtimes if ver and not cached]
        record = self._builds.start(
            item["guid"],
            task.id,
            time.monotonic(),
            cold,
            default_seconds=self.build_seconds,
            cold_factor=self.cold_factor,
        )
        self._scheduler.call_later(
            record.duration / 2, lambda: self._build_progress(task, item, runtimes)
        )
        self._scheduler.call_later(record.duration, lambda: self._finish_build(task, item, record))

    def _build_progress(
        self, task: _Task, item: dict[str, Any], runtimes: list[tuple[str, str | None, bool]]
    ) -> None:
        with self._lock:
            for language, version, cached in runtimes:
                if language == "Python":
                    env = hashlib.sha1(
                        f"{language}{version}{item.get('image_name')}".encode()
                    ).hexdigest()
                    verb = "Using cached" if cached else "Creating"
                    task.output.append(f"{verb} environment: {env[:22]}")
                    if not cached:
                        task.output.append("Installing packages from requirements.txt ...")
                elif cached:
                    task.output.append("Found all required R packages in the runtime cache.")
                else:
                    task.output.append("Installing R packages into the runtime cache ...")

    def _new_job(self, item: dict[str, Any], tag: str) -> dict[str, Any]:
        """A running job for a build (lock held); the fields of connect-api-2.md §6."""
        now = rfc3339(datetime.now(UTC))
        job_id = self._next_job_id
        self._next_job_id += 1
        job: dict[str, Any] = {
            "id": str(job_id),
            "ppid": str(100000 + job_id),
            "pid": str(200000 + job_id),
            "key": "".join(self._task_rng.choices(_TASK_ID_ALPHABET, k=16)),
            "remote_id": None,
            "app_id": item["id"],
            "content_id": item["id"],
            "content_guid": item["guid"],
            "variant_id": "0",
            "bundle_id": item["bundle_id"],
            "start_time": now,
            "end_time": None,
            "last_heartbeat_time": now,
            "queued_time": None,
            "queue_name": None,
            "tag": tag,
            "exit_code": None,
            "status": 0,
            "hostname": "connect-sim",
            "cluster": None,
            "image": None,
            "run_as": "rstudio-connect",
        }
        jobs = self._jobs.setdefault(item["guid"], [])
        jobs.append(job)
        del jobs[:-MAX_JOBS_KEPT]
        return job

    @staticmethod
    def _end_job(task: _Task, exit_code: int) -> None:
        if task.job is not None:
            now = rfc3339(datetime.now(UTC))
            task.job.update(status=1, exit_code=exit_code, end_time=now, last_heartbeat_time=now)

    def _finish_build(self, task: _Task, item: dict[str, Any], record: BuildRecord) -> None:
        with self._lock:
            guid = item["guid"]
            gone = self._runtime_removed(item)
            failed = guid in self._build_failures or gone is not None
            self._builds.finish(record, time.monotonic(), ok=not failed)
            if failed:
                error = gone or self._build_failures[guid] or _default_build_error(item)
                task.output.append(error)
                self._end_job(task, 1)
                self._finish_task(task, code=1, error=error, result=dict(BUILD_FAILED_RESULT))
            else:
                for language, version in item_runtimes(item):
                    if language == "R":
                        task.output.append(
                            f"Completed packrat build against R version: '{version}'"
                        )
                    else:
                        task.output.append("Packages in the environment are up to date.")
                    if version:
                        # Rebuilding repopulates every runtime cache the content uses.
                        self._store_cache(language, version, item.get("image_name") or "Local")
                        # It re-used the cache it found, or created it fresh (this system).
                        found = task.cache_serials.get(language)
                        self._health.built(
                            guid, language, self._health.serial if found is None else found
                        )
                self._end_processes([guid])  # the next request starts the new environment
                self._end_job(task, 0)
                self._finish_task(task)
            self._running_builds -= 1
            if self._build_queue:
                next_task, next_item = self._build_queue.popleft()
                self._run_build(next_task, next_item)


def _log_entries(lines: Iterable[str]) -> list[dict[str, str]]:
    now = rfc3339(datetime.now(UTC))
    return [{"source": "stderr", "timestamp": now, "data": line} for line in lines if line]


def _package_named(language: str, name: str, wanted: str) -> bool:
    """Connect's `name` filter: Python names PEP 503-normalised, R names exactly."""
    if language == "python":
        return _pep503(name) == _pep503(wanted)
    return name == wanted


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _default_build_error(item: dict[str, Any]) -> str:
    runtimes = item_runtimes(item)
    language, version = runtimes[0] if runtimes else (None, None)
    location = "Local" if not item.get("image_name") else item["image_name"]
    if language == "Python":
        return (
            "Cannot find compatible environment: no compatible "
            f"{location} environment with Python version {version}"
        )
    if language == "R":
        return (
            "Unable to restore R packages: packrat::restore() failed "
            f"for R version {version}: exit status 1"
        )
    return "Unable to render: Rendering exited abnormally: exit status 1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # bursts of hundreds of concurrent clients
    fake: FakeConnect

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._resets: set[socket.socket] = set()
        self._resets_lock = threading.Lock()
        super().__init__(address, handler)

    def mark_reset(self, connection: socket.socket) -> None:
        # SO_LINGER 0 turns close() into a TCP RST, like a crashed proxy.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._resets_lock:
            self._resets.add(connection)

    def shutdown_request(self, request: Any) -> None:
        with self._resets_lock:
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            self.close_request(request)  # no FIN first: the peer sees a reset
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake Connect connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as rsconnect and httpx expect
    server: _Server

    def setup(self) -> None:
        super().setup()
        if not self.server.fake.nagle:  # answers leave at once (see FakeConnect `nagle`)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)

    def version_string(self) -> str:
        return "connect-sim"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.log_requests:
            logger.info("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        received = time.time()
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if fake.record_requests:
            fake.arrivals.append((self.command, path, body))

        outage = fake._outage
        action: str | None
        if outage is not None:  # Connect is down: nothing reaches the API
            latency, fault_status, retry_after = 0.0, outage.status or 0, outage.retry_after
            action = "reset" if outage.status is None else "error"
        else:
            latency, action, fault_status, retry_after = fake._draw_fault(path)
        if latency:
            time.sleep(latency)
        if action == "reset":
            self._reset(fake, path, query, headers, body, received)
            return
        raw = fake._take_raw(self.command, path) if action is None else None
        if raw is not None:
            if raw.process:
                fake._dispatch(self.command, path, query, headers, body)
            self._record(fake, path, query, headers, body, raw.status, received)
            self._send_raw(raw)
            return
        if action == "error":
            response = _Response(fault_status, _proxy_error_page(fault_status), "text/html")
        else:
            response = fake._dispatch(self.command, path, query, headers, body)
            if action == "lose" or fake._refusing():  # processed, but the answer is lost
                self._reset(fake, path, query, headers, body, received)
                return
        self._record(fake, path, query, headers, body, response.status, received)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            if response.location is not None:
                self.send_header("Location", response.location)
            if action == "error" and retry_after is not None:
                self.send_header("Retry-After", retry_after)
            if fake.sticky_sessions and action is None:
                self.send_header("Set-Cookie", f"{STICKY_COOKIE}={fake.node_id}; Path=/; HttpOnly")
            self.end_headers()
            if isinstance(response.body, HitsBody):
                for chunk in response.body.chunks:
                    self.wfile.write(chunk)
            else:
                self.wfile.write(response.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away (e.g. gave up on a long poll)

    def _send_raw(self, raw: _Raw) -> None:
        try:
            self.send_response(raw.status)
            self.send_header("Content-Type", raw.content_type)
            if raw.content_length:
                self.send_header("Content-Length", str(len(raw.body) * raw.repeat))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            for _ in range(raw.repeat):
                self.wfile.write(raw.body)
                raw.bytes_sent += len(raw.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client stopped reading

    def _reset(
        self,
        fake: FakeConnect,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        received: float,
    ) -> None:
        self._record(fake, path, query, headers, body, 0, received)
        self.close_connection = True
        self.server.mark_reset(self.connection)

    def _record(
        self,
        fake: FakeConnect,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        status: int,
        received: float,
    ) -> None:
        if not fake.record_requests:
            return
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        fake.requests.append(
            RequestRecord(
                method=self.command,
                path=path,
                query=query,
                headers=headers,
                json=parsed,
                status=status,
                time=received,
                duration=time.time() - received,
            )
        )
