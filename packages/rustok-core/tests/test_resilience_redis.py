"""Redis storage: breakers in several processes (here: objects) share one circuit."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    CircuitStorage,
    redis_storage,
)
from rustok_core.testing import ManualClock

pytestmark = pytest.mark.redis


class Down(Exception):
    pass


async def fail() -> None:
    raise Down("database down")


async def succeed() -> str:
    return "ok"


def state_of(breaker: CircuitBreaker) -> CircuitState:
    # A function, so that type checkers do not carry a narrowed state across calls.
    return breaker.state


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def storages(redis_url: str, namespace: str) -> Iterator[list[CircuitStorage]]:
    made: list[CircuitStorage] = []
    yield made
    for storage in made:
        storage.close()


def shared_breaker(
    redis_url: str,
    namespace: str,
    storages: list[CircuitStorage],
    clock: ManualClock,
    config: CircuitBreakerConfig | None = None,
) -> CircuitBreaker:
    storage = redis_storage(redis_url, namespace=namespace, clock=clock)
    storages.append(storage)
    if config is None:
        config = CircuitBreakerConfig(failure_threshold=2, success_threshold=1, timeout=30.0)
    return CircuitBreaker("tenant-db", config, storage=storage, clock=clock)


async def succeed_twice(breaker: CircuitBreaker) -> None:
    await breaker.call(succeed)
    await breaker.call(succeed)


async def test_a_breaker_opened_by_one_object_rejects_in_the_other(
    redis_url: str, namespace: str, storages: list[CircuitStorage]
) -> None:
    clock = ManualClock(start=0.0)
    a = shared_breaker(redis_url, namespace, storages, clock)
    b = shared_breaker(redis_url, namespace, storages, clock)
    with pytest.raises(Down):
        await a.call(fail)
    with pytest.raises(Down):
        await b.call(fail)  # the failure count is shared: this is failure 2 of 2
    assert b.state is CircuitState.OPEN  # b opened it: the reply said so
    with pytest.raises(CircuitOpenError) as caught:
        await b.call(succeed)
    assert caught.value.retry_after == 30.0
    # a learns of the transition with the reply to its next call (which still runs)
    assert await a.call(succeed) == "ok"
    assert state_of(a) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await a.call(succeed)
    # after the timeout a probes, and its success closes the circuit for b
    clock.advance(30.0)
    assert await a.call(succeed) == "ok"
    assert a.state is CircuitState.CLOSED
    assert await b.call(succeed) == "ok"
    assert state_of(b) is CircuitState.CLOSED


async def test_manual_control_is_shared(
    redis_url: str, namespace: str, storages: list[CircuitStorage]
) -> None:
    clock = ManualClock(start=0.0)
    a = shared_breaker(redis_url, namespace, storages, clock)
    b = shared_breaker(redis_url, namespace, storages, clock)
    a.open()
    with pytest.raises(CircuitOpenError):
        await succeed_twice(b)  # the first call runs and learns; the second is refused
    b.close()
    with pytest.raises(CircuitOpenError):
        await a.call(succeed)  # while its open window lasts, a does not ask Redis
    clock.advance(30.0)
    assert await a.call(succeed) == "ok"  # then it asks, and learns of the close
    assert state_of(a) is CircuitState.CLOSED
    assert a.stats().state_transitions == 2  # it saw open, then closed


async def test_a_new_breaker_starts_in_the_shared_state(
    redis_url: str, namespace: str, storages: list[CircuitStorage]
) -> None:
    clock = ManualClock(start=0.0)
    first = shared_breaker(redis_url, namespace, storages, clock)
    first.open()
    clock.advance(10.0)
    late = shared_breaker(redis_url, namespace, storages, clock)
    with pytest.raises(CircuitOpenError) as caught:
        await late.call(succeed)
    assert caught.value.retry_after == 20.0  # opened 10 s ago, on the shared clock


async def test_namespaces_keep_circuits_apart(
    redis_url: str, namespace: str, storages: list[CircuitStorage]
) -> None:
    a = shared_breaker(redis_url, namespace, storages, ManualClock(start=0.0))
    other = shared_breaker(redis_url, namespace + "-other", storages, ManualClock(start=0.0))
    a.open()
    assert await other.call(succeed) == "ok"
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hget(f"rustok:{{{namespace}}}:circuit", "state") == b"open"
    finally:
        client.close()


async def test_a_client_object_can_be_given(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=0.5)
    try:
        storage = redis_storage(client, namespace=namespace)
        breaker = CircuitBreaker("x", storage=storage)
        assert await breaker.call(succeed) == "ok"
        storage.close()  # the client is the caller's: still usable
        assert client.ping()
    finally:
        client.close()


def test_a_decoding_client_is_refused(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            redis_storage(client, namespace=namespace)
    finally:
        client.close()


@pytest.mark.parametrize("bad", ["", " spaces ", "-leading", "x" * 201])
def test_a_namespace_is_required_and_checked(redis_url: str, bad: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        redis_storage(redis_url, namespace=bad)


def test_redis_is_imported_only_when_redis_storage_is_used(redis_url: str) -> None:
    script = f"""
import sys
import rustok_core.resilience as resilience
from rustok_core.resilience import CircuitBreaker
CircuitBreaker("in-memory")
assert "redis" not in sys.modules, "redis imported by a memory breaker"
storage = resilience.redis_storage({redis_url!r}, namespace="import-check")
assert "redis" in sys.modules
storage.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
