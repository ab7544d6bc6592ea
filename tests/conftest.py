"""Shared fixtures: the simulators on loopback, and the bot served over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# slack_sdk honours *_PROXY but not NO_PROXY: loopback calls must not go to a proxy.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)

from bot.connect import ConnectClient  # noqa: E402
from bot.sim.connect_server import FakeConnect  # noqa: E402

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
