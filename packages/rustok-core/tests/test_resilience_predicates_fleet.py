"""Result and exception predicates on the shared circuit on Redis: a result judged failed, or
an error not excluded by ``excluded_if``, counts for every process of the fleet; on a clock
moved by hand, against the Redis server of the test session."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
import redis
from http_answers import HTTPStatusError, Response, client_error, server_error

from rustok_core.resilience import (
    CallOutcome,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Event,
    ResiliencePolicy,
    RetryPolicy,
    redis_storage,
)
from rustok_core.testing import ManualClock, test_mode

pytestmark = pytest.mark.redis


async def answer(status: int) -> Response:
    return Response(status)


def answer_sync(status: int) -> Response:
    return Response(status)


async def raise_status(status: int) -> Response:
    raise HTTPStatusError(status)


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def hash_key(namespace: str) -> str:
    return f"rustok:{{{namespace}}}:circuit"


def failures_on_redis(client: redis.Redis, namespace: str) -> int:
    """The fleet's consecutive failure count (0 before the circuit first records one)."""
    value = client.hget(hash_key(namespace), "failures")
    return int(value) if isinstance(value, bytes) else 0


@pytest.fixture
def namespace() -> str:
    return f"predicates-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def fleet(
    client: redis.Redis,
    namespace: str,
    clock: ManualClock,
    *,
    events: list[Event] | None = None,
    **config: object,
) -> CircuitBreaker:
    settings: dict[str, object] = {"failure_threshold": 2, "success_threshold": 1, "timeout": 10.0}
    settings.update(config)
    return CircuitBreaker(
        "api",
        CircuitBreakerConfig(**settings),  # type: ignore[arg-type]  # the fields vary by test
        storage=redis_storage(client, namespace=namespace, clock=clock),
        clock=clock,
        event_listeners=[events.append] if events is not None else (),
    )


async def test_results_judged_failed_in_two_processes_open_the_fleet_circuit(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    events: list[Event] = []
    first = fleet(client, namespace, clock, events=events)
    second = fleet(client, namespace, clock)
    assert (await first.judging(server_error).call(answer, 503)).status_code == 503
    assert failures_on_redis(client, namespace) == 1
    assert (await second.judging(server_error).call(answer, 502)).status_code == 502
    assert state_of(second) is CircuitState.OPEN  # one circuit: the second failure opened it
    clock.advance(0.2)  # past the first's trust in its last (closed) reply
    with pytest.raises(CircuitOpenError):
        await first.call(answer, 200)
    assert [e.outcome for e in events if isinstance(e, CallOutcome)] == ["failure"]
    assert first.stats().total_failures == 1


async def test_a_fleet_trial_judged_failed_reopens_and_one_judged_fine_closes(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    breaker = fleet(client, namespace, clock, max_timeout=40.0)
    api = breaker.judging(server_error)
    breaker.open()
    clock.advance(10.0)
    assert (await api.call(answer, 503)).status_code == 503
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.retry_after == 20.0  # the fleet's streak grew the opening
    clock.advance(20.0)
    assert api.call_sync(answer_sync, 200) == Response(200)
    assert state_of(breaker) is CircuitState.CLOSED
    assert client.hget(hash_key(namespace), "state") == b"closed"


def test_call_sync_counts_results_judged_failed_on_the_fleet(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    breaker = fleet(client, namespace, clock)
    api = breaker.judging(server_error)
    assert api.call_sync(answer_sync, 500) == Response(500)
    assert api.call_sync(answer_sync, 200) == Response(200)  # resets the fleet's count
    assert failures_on_redis(client, namespace) == 0
    api.call_sync(answer_sync, 500)
    api.call_sync(answer_sync, 500)
    assert state_of(breaker) is CircuitState.OPEN


async def test_the_shared_window_holds_results_judged_failed(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    first, second = (
        fleet(
            client,
            namespace,
            clock,
            failure_rate_threshold=0.5,
            sliding_window_size=4,
            minimum_calls=4,
            half_open_max_requests=2,
        )
        for _ in range(2)
    )
    for breaker, status in [(first, 200), (second, 503), (first, 200), (second, 503)]:
        await breaker.judging(server_error).call(answer, status)
    assert state_of(second) is CircuitState.OPEN  # 2 of the 4 shared outcomes failed


async def test_errors_excluded_by_the_predicate_are_not_counted_by_the_fleet(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    events: list[Event] = []
    breaker = fleet(client, namespace, clock, events=events, excluded_if=client_error)
    for _ in range(3):
        with pytest.raises(HTTPStatusError):
            await breaker.call(raise_status, 404)
    assert failures_on_redis(client, namespace) == 0
    assert state_of(breaker) is CircuitState.CLOSED
    with pytest.raises(HTTPStatusError):
        await breaker.judging(server_error).call(raise_status, 503)
    assert failures_on_redis(client, namespace) == 1
    outcomes = [e.outcome for e in events if isinstance(e, CallOutcome)]
    assert outcomes == ["excluded", "excluded", "excluded", "failure"]
    stats = breaker.stats()
    assert (stats.total_excluded, stats.total_failures) == (3, 1)


async def test_what_the_result_predicate_raises_counts_on_the_fleet_as_the_calls_error(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    breaker = fleet(client, namespace, clock, failure_threshold=1)

    def broken(response: Response) -> bool:
        raise ValueError("unparsable body")

    with pytest.raises(ValueError):
        await breaker.judging(broken).call(answer, 200)
    assert state_of(breaker) is CircuitState.OPEN
    assert client.hget(hash_key(namespace), "state") == b"open"


async def test_a_judged_policy_on_the_fleet_retries_and_counts_each_attempt(
    client: redis.Redis, namespace: str
) -> None:
    clock = ManualClock(start=0.0)
    breaker = fleet(client, namespace, clock, failure_threshold=10)
    statuses = [503, 503, 200]

    async def flaky() -> Response:
        return Response(statuses.pop(0))

    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3), breaker=breaker)
    with test_mode():
        assert await policy.judging(server_error).execute(flaky) == Response(200)
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes) == (2, 1)
    assert failures_on_redis(client, namespace) == 0  # the success reset it


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_with_redis_unreachable_judged_failures_open_the_local_state(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(
        "api",
        CircuitBreakerConfig(failure_threshold=2, timeout=10.0, excluded_if=client_error),
        storage=redis_storage(
            f"redis://127.0.0.1:{_closed_port()}/0", namespace=namespace, clock=clock
        ),
        clock=clock,
    )
    api = breaker.judging(server_error)
    with pytest.raises(HTTPStatusError):
        await api.call(raise_status, 404)  # excluded locally too
    assert (await api.call(answer, 503)).status_code == 503
    assert api.call_sync(answer_sync, 503).status_code == 503
    assert state_of(breaker) is CircuitState.OPEN  # the breaker still protects
    assert breaker.stats().total_excluded == 1
