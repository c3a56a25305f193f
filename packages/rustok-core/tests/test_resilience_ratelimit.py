"""RateLimiter: token buckets per key, in memory and on a real Redis, and Redis going away."""

from __future__ import annotations

import logging
import socket
import uuid

import pytest

from rustok_core.error import ErrorKind, ProblemDetails
from rustok_core.resilience import (
    CallRejected,
    Event,
    RateLimitedError,
    RateLimiter,
    StorageUnavailable,
)
from rustok_core.testing import ManualClock


async def ok() -> str:
    return "ok"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)


# -- in memory --------------------------------------------------------------------------


async def test_a_full_bucket_allows_a_burst_then_refuses(clock: ManualClock) -> None:
    limiter = RateLimiter("api", rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        await limiter.acquire()
    with pytest.raises(RateLimitedError) as refused:
        await limiter.acquire()
    assert refused.value.retry_after == pytest.approx(0.5)  # one token at 2 per second


async def test_tokens_come_back_at_the_rate(clock: ManualClock) -> None:
    limiter = RateLimiter("api", rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire_sync()
    clock.advance(0.5)
    limiter.acquire_sync()  # one token back
    with pytest.raises(RateLimitedError):
        limiter.acquire_sync()
    clock.advance(60.0)
    for _ in range(3):  # never more than burst
        limiter.acquire_sync()
    assert limiter.try_acquire() > 0


async def test_each_key_has_its_own_bucket(clock: ManualClock) -> None:
    limiter = RateLimiter("tenants", rate=1.0, burst=1, clock=clock)
    assert await limiter.call_for("acme", ok) == "ok"
    with pytest.raises(RateLimitedError) as refused:
        await limiter.call_for("acme", ok)
    assert refused.value.key == "acme"
    assert await limiter.call_for("globex", ok) == "ok"


async def test_a_refused_call_is_not_made(clock: ManualClock) -> None:
    limiter = RateLimiter("api", rate=1.0, burst=1, clock=clock)
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1

    await limiter.call(counted)
    with pytest.raises(RateLimitedError):
        await limiter.call(counted)
    assert calls == 1


def test_the_number_of_local_buckets_is_bounded(clock: ManualClock) -> None:
    limiter = RateLimiter("api", rate=1.0, burst=1, max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        limiter.acquire_sync(key)
    limiter.acquire_sync("a")  # "a" was dropped as least recently used: a fresh bucket
    with pytest.raises(RateLimitedError):
        limiter.acquire_sync("c")


def test_rate_limited_is_a_429_with_retry_after() -> None:
    error = RateLimitedError("api", "acme", 1.2)
    problem = ProblemDetails.from_error(error)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert problem.status == 429
    assert problem.headers()["Retry-After"] == "2"


def test_listeners_hear_rejections(clock: ManualClock) -> None:
    events: list[Event] = []
    limiter = RateLimiter("api", rate=1.0, burst=1, clock=clock, listeners=[events.append])
    limiter.acquire_sync("acme")
    with pytest.raises(RateLimitedError):
        limiter.acquire_sync("acme")
    assert events == [CallRejected("rate_limiter", "api", "rate", 1.0, "acme")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 0.0, "burst": 1}, "rate"),
        ({"rate": float("inf"), "burst": 1}, "rate"),
        ({"rate": 1.0, "burst": 0}, "burst"),
        ({"rate": 1.0, "burst": 1, "max_keys": 0}, "max_keys"),
    ],
)
def test_invalid_limiter_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RateLimiter("api", **kwargs)  # type: ignore[arg-type]  # testing bad input


# -- on Redis ----------------------------------------------------------------------------


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.mark.redis
def test_processes_share_each_keys_bucket_on_redis(
    redis_url: str, name: str, clock: ManualClock
) -> None:
    a = RateLimiter(name, rate=1.0, burst=3, redis=redis_url, clock=clock)
    b = RateLimiter(name, rate=1.0, burst=3, redis=redis_url, clock=clock)
    try:
        a.acquire_sync("acme")
        b.acquire_sync("acme")
        a.acquire_sync("acme")
        with pytest.raises(RateLimitedError) as refused:
            b.acquire_sync("acme")
        assert refused.value.retry_after == pytest.approx(1.0)
        b.acquire_sync("globex")  # another key, another bucket
        clock.advance(1.0)
        a.acquire_sync("acme")
    finally:
        a.close()
        b.close()


@pytest.mark.redis
def test_a_redis_take_is_atomic_under_concurrent_clients(
    redis_url: str, name: str, clock: ManualClock
) -> None:
    import threading

    limiters = [
        RateLimiter(name, rate=0.001, burst=50, redis=redis_url, clock=clock) for _ in range(4)
    ]
    granted = [0] * len(limiters)

    def hammer(i: int) -> None:
        for _ in range(40):
            if limiters[i].try_acquire("hot") == 0.0:
                granted[i] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(limiters))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for limiter in limiters:
        limiter.close()
    assert sum(granted) == 50  # 160 attempts, exactly the burst granted: no lost update


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_without_redis_it_limits_locally_and_says_so_once(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    limiter = RateLimiter(
        "api",
        rate=1.0,
        burst=2,
        redis=f"redis://127.0.0.1:{_closed_port()}/0",
        clock=clock,
        listeners=[events.append],
    )
    with caplog.at_level(logging.WARNING, logger="rustok.resilience"):
        limiter.acquire_sync("acme")
        limiter.acquire_sync("acme")
        with pytest.raises(RateLimitedError):
            limiter.acquire_sync("acme")  # still limited, by the local bucket
        clock.advance(5.0)
        limiter.acquire_sync("acme")  # tries Redis again, still down: no new line
    assert len([r for r in caplog.records if "unreachable" in r.message]) == 1
    assert [type(e) for e in events if isinstance(e, StorageUnavailable)] == [StorageUnavailable]
    limiter.close()
