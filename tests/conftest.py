"""Shared fixtures: the simulators on loopback, and the bot served over real HTTP."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

# slack_sdk honours *_PROXY but not NO_PROXY: loopback calls must not go to a proxy.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)

# Hypothesis writes nothing into the checkout (.hypothesis/): no example database, and its
# caches (the Unicode tables) in a directory of this process's own, so pytest-xdist workers
# share none. Removed at exit.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

_hypothesis_home = tempfile.mkdtemp(prefix="connect-bot-hypothesis-")
atexit.register(shutil.rmtree, _hypothesis_home, ignore_errors=True)
set_hypothesis_home_dir(_hypothesis_home)
settings.register_profile("connect-bot", database=None)
settings.load_profile("connect-bot")

from bot.connect import ConnectClient  # noqa: E402
from sim.connect_server import FakeConnect  # noqa: E402

ADMIN_KEY = "admin-key-5f2b9c"
PUBLISHER_KEY = "publisher-key-77aa1"


@pytest.fixture
def fake_connect() -> Iterator[FakeConnect]:
    server = FakeConnect(
        api_keys={ADMIN_KEY: "administrator", PUBLISHER_KEY: "publisher"},
        build_seconds=0.2,
        cache_delete_seconds=0.1,
    )
    with server:
        yield server


@pytest.fixture
def connect(fake_connect: FakeConnect) -> Iterator[ConnectClient]:
    client = ConnectClient(fake_connect.url, ADMIN_KEY, backoff=0.01)
    try:
        yield client
    finally:
        client.close()


# The longest modules first (real processes, real minutes; measured with --durations), so that
# `make test` hands them to pytest-xdist's workers at once (--dist loadscope: a module at a
# time, in this order) and the short ones fill in around them.
SLOW_FIRST = (
    "test_replicas.py",
    "test_schedule_process.py",
    "test_docker_install.py",
    "test_rebuild_faults.py",
    "test_deletion_crash.py",
    "test_rebuild_restart.py",
    "test_summary_once.py",
    "test_wheel.py",
    "test_parser.py",
    "test_home.py",
    "test_rsconnect_fidelity.py",
    "test_demo.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


POSTGRES_URL = os.environ.get("BOT_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="BOT_TEST_POSTGRES_URL is not set (a PostgreSQL URL the tests may create schemas in)",
)


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a brand-new schema, dropped afterwards."""
    import secrets

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from bot.store import Database

    schema = f"connect_bot_test_{secrets.token_hex(4)}"
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new schema per test (`fresh_schema`); skips without BOT_TEST_POSTGRES_URL."""
    if not POSTGRES_URL:
        pytest.skip("BOT_TEST_POSTGRES_URL is not set")
    with fresh_schema() as url:
        yield url
