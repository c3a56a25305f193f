"""Results judged failed by a predicate (``judging(failed_if)``): a breaker counts them as
failures and returns them, a retry policy retries them and returns the last one, a composed
policy applies the predicate in each of its judging steps; on a clock moved by hand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import assert_type

import pytest

from rustok_core.resilience import (
    BudgetExhausted,
    Bulkhead,
    CallOutcome,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Event,
    FailedResultError,
    Fallback,
    FallbackUsed,
    Fixed,
    JudgedBreaker,
    JudgedPolicy,
    JudgedRetry,
    ResiliencePolicy,
    RetryAttempt,
    RetryBudget,
    RetryPolicy,
)
from rustok_core.testing import ManualClock, test_mode


@pytest.fixture(autouse=True)
def no_waiting() -> Iterator[None]:
    with test_mode():
        yield


@dataclass(frozen=True)
class Response:
    """What an HTTP client returns, whatever its status: it does not raise on a 503."""

    status_code: int
    seq: int = 0


def server_error(response: Response) -> bool:
    return response.status_code >= 500


class Down(Exception):
    """The dependency could not be reached at all."""


class NotFound(Exception):
    """An answer, not an outage."""


class Upstream:
    """An HTTP-like dependency answering with the given statuses (or raising the given
    errors) in turn, then 200; each call may cost time on a manual clock."""

    def __init__(
        self, *answers: int | Exception, clock: ManualClock | None = None, cost: float = 0.0
    ) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.clock = clock
        self.cost = cost

    def get_sync(self, path: str = "/") -> Response:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.cost)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return Response(answer, self.calls)

    async def get(self, path: str = "/") -> Response:
        return self.get_sync(path)


def make_breaker(
    clock: ManualClock, events: list[Event] | None = None, **config: object
) -> CircuitBreaker:
    settings: dict[str, object] = {"failure_threshold": 2, "success_threshold": 1, "timeout": 10.0}
    settings.update(config)
    return CircuitBreaker(
        "api",
        CircuitBreakerConfig(**settings),  # type: ignore[arg-type]  # the fields vary by test
        clock=clock,
        event_listeners=[events.append] if events is not None else (),
    )


def state_of(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


# -- the breaker -----------------------------------------------------------------------


async def test_a_result_judged_failed_counts_as_a_failure_and_is_still_returned() -> None:
    breaker = make_breaker(ManualClock())
    api = breaker.judging(server_error)
    upstream = Upstream(503, 502)
    first = await api.call(upstream.get, "/charges")
    assert first == Response(503, 1)  # the caller reads its response
    assert state_of(breaker) is CircuitState.CLOSED
    assert (await api.call(upstream.get, "/charges")).status_code == 502
    assert state_of(breaker) is CircuitState.OPEN  # two failed results: like two errors
    with pytest.raises(CircuitOpenError):
        await api.call(upstream.get, "/charges")
    assert upstream.calls == 2  # refused without calling
    stats = breaker.stats()
    assert (stats.total_requests, stats.total_failures, stats.total_successes) == (3, 2, 0)
    assert stats.total_rejected == 1


async def test_a_result_judged_fine_is_a_success_and_resets_the_consecutive_count() -> None:
    breaker = make_breaker(ManualClock())
    api = breaker.judging(server_error)
    upstream = Upstream(503, 404, 503)
    statuses = [(await api.call(upstream.get)).status_code for _ in range(3)]
    assert statuses == [503, 404, 503]
    assert state_of(breaker) is CircuitState.CLOSED  # never two failures in a row
    assert breaker.stats().failure_count == 1
    assert breaker.stats().total_successes == 1


async def test_half_open_trials_are_judged_by_their_results() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock, max_timeout=40.0)
    api = breaker.judging(server_error)
    breaker.open()
    clock.advance(10.0)
    assert (await api.call(Upstream(503).get)).status_code == 503  # the trial's answer
    assert state_of(breaker) is CircuitState.OPEN  # the failed trial re-opened it
    assert breaker.retry_after == 20.0  # for longer, as after a raised error
    clock.advance(20.0)
    assert (await api.call(Upstream(200).get)).status_code == 200
    assert state_of(breaker) is CircuitState.CLOSED


async def test_views_share_the_breakers_state_with_plain_calls() -> None:
    breaker = make_breaker(ManualClock())
    upstream = Upstream(503, 503)
    await breaker.judging(server_error).call(upstream.get)
    await breaker.judging(server_error).call(upstream.get)  # another view, one circuit
    with pytest.raises(CircuitOpenError):
        await breaker.call(upstream.get)  # the plain path sees it open too
    with pytest.raises(CircuitOpenError):
        breaker.call_sync(upstream.get_sync)


async def test_without_judging_a_returned_failure_is_a_success() -> None:
    breaker = make_breaker(ManualClock())
    for _ in range(3):
        assert (await breaker.call(Upstream(503).get)).status_code == 503
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().total_successes == 3


async def test_exceptions_count_through_a_view_as_through_call() -> None:
    events: list[Event] = []
    breaker = make_breaker(ManualClock(), events, failure_threshold=5, excluded=(NotFound,))
    api = breaker.judging(server_error)
    upstream = Upstream(Down("refused"), NotFound("no such charge"), 503, 200)
    with pytest.raises(Down):
        await api.call(upstream.get)
    with pytest.raises(NotFound):
        await api.call(upstream.get)
    await api.call(upstream.get)
    await api.call(upstream.get)

    async def cancelled() -> Response:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await api.call(cancelled)
    outcomes = [e.outcome for e in events if isinstance(e, CallOutcome)]
    assert outcomes == ["failure", "excluded", "failure", "success", "cancelled"]
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_excluded, stats.total_successes) == (2, 1, 1)
    assert stats.total_cancelled == 1


async def test_what_the_predicate_raises_is_treated_as_the_calls_own_error() -> None:
    breaker = make_breaker(ManualClock(), excluded=(KeyError,))

    def reads_a_header(response: Response) -> bool:
        if response.status_code == 204:
            raise KeyError("content-type")  # excluded: neither success nor failure
        raise ValueError("unparsable body")  # a failure, raised to the caller

    api = breaker.judging(reads_a_header)
    upstream = Upstream(204, 200, 200)
    with pytest.raises(KeyError):
        await api.call(upstream.get)
    assert breaker.stats().total_excluded == 1
    for _ in range(2):
        with pytest.raises(ValueError, match="unparsable"):
            await api.call(upstream.get)
    assert state_of(breaker) is CircuitState.OPEN


async def test_a_plain_function_given_to_the_async_view_is_a_misuse_counted_as_neither() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=1)
    upstream = Upstream()
    with pytest.raises(TypeError, match="call_sync"):
        await breaker.judging(server_error).call(upstream.get_sync)  # type: ignore[arg-type]  # the misuse under test
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().total_failures == 0


async def test_the_rate_based_mode_puts_judged_failures_in_its_window() -> None:
    events: list[Event] = []
    clock = ManualClock()
    breaker = make_breaker(
        clock,
        events,
        failure_rate_threshold=0.5,
        sliding_window_type="time",
        sliding_window_size=60,
        minimum_calls=4,
        half_open_max_requests=2,
    )
    api = breaker.judging(server_error)
    upstream = Upstream(200, 503, 200, 503, clock=clock, cost=2.0)
    for _ in range(3):
        await api.call(upstream.get)
    assert breaker.stats().failure_rate is None  # below minimum_calls
    await api.call(upstream.get)
    stats = breaker.stats()
    assert stats.state is CircuitState.OPEN
    assert stats.failure_rate == 0.5
    durations = [e.duration for e in events if isinstance(e, CallOutcome)]
    assert durations == [2.0, 2.0, 2.0, 2.0]  # timed: a time window needs the clock
    clock.advance(10.0)
    trials = Upstream(503, 200)
    await api.call(trials.get)
    await api.call(trials.get)  # half the trials failed: open again
    assert state_of(breaker) is CircuitState.OPEN


async def test_judged_calls_in_a_count_window_report_their_durations_as_call_sync_does() -> None:
    events: list[Event] = []
    clock = ManualClock()
    breaker = make_breaker(
        clock, events, failure_rate_threshold=0.5, sliding_window_size=10, minimum_calls=10
    )
    api = breaker.judging(server_error)
    upstream = Upstream(503, 200, 503, 200, 200, clock=clock, cost=1.5)
    await api.call(upstream.get)
    await api.call(upstream.get)
    api.call_sync(upstream.get_sync)
    api.call_sync(upstream.get_sync)
    breaker.call_sync(upstream.get_sync)
    outcomes = [(e.outcome, e.duration) for e in events if isinstance(e, CallOutcome)]
    assert outcomes == [("failure", 1.5), ("success", 1.5)] * 2 + [("success", 1.5)]


async def test_slow_results_judged_fine_still_count_as_slow() -> None:
    clock = ManualClock()
    breaker = make_breaker(
        clock,
        slow_call_rate_threshold=1.0,
        slow_call_duration=1.0,
        sliding_window_size=2,
        minimum_calls=2,
    )
    api = breaker.judging(server_error)
    upstream = Upstream(200, 200, clock=clock, cost=1.5)
    await api.call(upstream.get)
    await api.call(upstream.get)
    assert breaker.stats().slow_call_rate == 1.0
    assert state_of(breaker) is CircuitState.OPEN


async def test_the_rate_based_view_counts_errors_misuses_and_cancellations() -> None:
    events: list[Event] = []
    breaker = make_breaker(
        ManualClock(),
        events,
        failure_rate_threshold=0.5,
        sliding_window_size=10,
        minimum_calls=10,
        excluded=(NotFound,),
    )
    api = breaker.judging(server_error)
    with pytest.raises(Down):
        await api.call(Upstream(Down("refused")).get)
    with pytest.raises(NotFound):
        await api.call(Upstream(NotFound("gone")).get)
    with pytest.raises(TypeError, match="call_sync"):
        await api.call(Upstream().get_sync)  # type: ignore[arg-type]  # the misuse under test

    async def cancelled() -> Response:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await api.call(cancelled)
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_excluded, stats.total_cancelled) == (1, 1, 2)
    assert stats.buffered_calls == 1  # only the failure is in the window
    assert [e.outcome for e in events if isinstance(e, CallOutcome)] == [
        "failure",
        "excluded",
        "cancelled",
        "cancelled",
    ]


def test_call_sync_judges_results_in_both_modes() -> None:
    consecutive = make_breaker(ManualClock())
    rated = make_breaker(
        ManualClock(), failure_rate_threshold=0.5, sliding_window_size=2, minimum_calls=2
    )
    for breaker in (consecutive, rated):
        api = breaker.judging(server_error)
        upstream = Upstream(503, Down("refused"))
        assert api.call_sync(upstream.get_sync).status_code == 503
        with pytest.raises(Down):
            api.call_sync(upstream.get_sync)
        assert state_of(breaker) is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            api.call_sync(upstream.get_sync)
        assert breaker.stats().total_failures == 2


def test_call_sync_counts_a_predicates_error_and_an_interruption() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=1)

    def broken(response: Response) -> bool:
        raise ValueError("broken predicate")

    with pytest.raises(ValueError):
        breaker.judging(broken).call_sync(Upstream().get_sync)
    assert state_of(breaker) is CircuitState.OPEN

    def interrupted() -> Response:
        raise KeyboardInterrupt

    breaker.close()
    with pytest.raises(KeyboardInterrupt):
        breaker.judging(server_error).call_sync(interrupted)
    assert breaker.stats().total_cancelled == 1


async def test_a_judging_view_decorates_coroutine_and_plain_functions() -> None:
    breaker = make_breaker(ManualClock())
    api = breaker.judging(server_error)
    upstream = Upstream(503, 503)

    @api
    async def charge(order_id: str) -> Response:
        return await upstream.get(f"/charges/{order_id}")

    @api
    def refund(order_id: str) -> Response:
        return upstream.get_sync(f"/refunds/{order_id}")

    assert (await charge("o-1")).status_code == 503
    assert refund("o-1").status_code == 503
    assert state_of(breaker) is CircuitState.OPEN
    assert charge.__name__ == "charge"


async def test_a_view_is_typed_by_its_predicate() -> None:
    breaker = make_breaker(ManualClock())
    api = breaker.judging(server_error)
    assert_type(api, JudgedBreaker[Response])
    assert_type(await api.call(Upstream().get, "/"), Response)
    annotated: JudgedBreaker[Response] = breaker.judging(lambda r: r.status_code == 429)
    assert (await annotated.call(Upstream(429).get)).status_code == 429
    assert breaker.stats().total_failures == 1
    assert api.breaker is breaker
    assert api.failed_if is server_error
    assert repr(api) == "<JudgedBreaker 'api' failed_if=server_error>"


def test_a_predicate_must_be_callable() -> None:
    breaker = make_breaker(ManualClock())
    with pytest.raises(TypeError, match="failed_if"):
        breaker.judging(503)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match="failed_if"):
        RetryPolicy().judging(None)  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match="failed_if"):
        ResiliencePolicy().judging("5xx")  # type: ignore[arg-type]  # the mistake under test


# -- the retry policy --------------------------------------------------------------------


def retrying(**settings: object) -> RetryPolicy:
    options: dict[str, object] = {"max_attempts": 3, "backoff": Fixed(1.0)}
    options.update(settings)
    return RetryPolicy(**options)  # type: ignore[arg-type]  # the fields vary by test


async def test_a_failed_result_is_retried_and_the_first_fine_one_returned() -> None:
    policy = retrying()
    upstream = Upstream(503, 502, 200)
    response = await policy.judging(server_error).execute(upstream.get, "/charges")
    assert response == Response(200, 3)
    stats = policy.stats()
    assert (stats.calls, stats.attempts, stats.retries, stats.successes) == (1, 3, 2, 1)
    assert stats.failures == 0


async def test_when_attempts_run_out_the_last_failed_result_is_returned() -> None:
    policy = retrying()
    upstream = Upstream(503, 503, 503, 200)
    response = await policy.judging(server_error).execute(upstream.get)
    assert response == Response(503, 3)  # the last attempt's response, not an error
    assert upstream.calls == 3
    stats = policy.stats()
    assert (stats.calls, stats.successes, stats.failures) == (1, 0, 1)


async def test_one_attempt_returns_a_failed_result_at_once() -> None:
    policy = retrying(max_attempts=1)
    assert (await policy.judging(server_error).execute(Upstream(503).get)).status_code == 503
    assert policy.stats().failures == 1


async def test_a_failed_result_is_retried_whatever_retry_on_says() -> None:
    policy = retrying(retry_on=ConnectionError)
    judged = policy.judging(server_error)
    assert (await judged.execute(Upstream(503, 200).get)).status_code == 200
    with pytest.raises(Down):
        await judged.execute(Upstream(Down("refused"), 200).get)  # not in retry_on
    assert (await judged.execute(Upstream(ConnectionError(), 503, 200).get)).status_code == 200


async def test_the_last_attempts_outcome_is_the_calls() -> None:
    judged = retrying().judging(server_error)
    with pytest.raises(ConnectionError):
        await judged.execute(Upstream(503, 503, ConnectionError("reset")).get)
    response = await judged.execute(Upstream(ConnectionError("reset"), 503, 503).get)
    assert response == Response(503, 3)


async def test_the_time_budget_stops_retrying_failed_results() -> None:
    clock = ManualClock(start=0.0)
    events: list[Event] = []
    policy = retrying(max_attempts=10, budget=2.5, clock=clock, listeners=[events.append])
    upstream = Upstream(*[503] * 10)
    response = await policy.judging(server_error).execute(upstream.get)
    assert response == Response(503, 3)  # waits of 1 s: a third would end past 2.5 s
    assert clock.now == 2.0
    assert [e for e in events if isinstance(e, BudgetExhausted)] == [
        BudgetExhausted("retry", "time", 3)
    ]


async def test_failed_results_take_from_the_retry_budget() -> None:
    policy = retrying(retry_budget=RetryBudget())
    upstream = Upstream(*[503] * 1000)
    judged = policy.judging(server_error)
    for _ in range(100):
        assert (await judged.execute(upstream.get)).status_code == 503
    assert upstream.calls <= 110  # not 300: an outage returned as 503s is not multiplied


async def test_each_retried_result_is_reported_as_a_retry_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[RetryAttempt] = []
    events: list[Event] = []
    policy = retrying(name="payments", on_retry=seen.append, listeners=[events.append])
    with caplog.at_level(logging.INFO, logger="rustok.resilience"):
        await policy.judging(server_error).execute(Upstream(503, 200).get)
    assert len(seen) == 1
    attempt = seen[0]
    assert (attempt.attempt, attempt.delay, attempt.policy) == (1, 1.0, "payments")
    assert isinstance(attempt.error, FailedResultError)
    assert attempt.error.result == Response(503, 1)
    assert attempt.error.status == 503
    assert events == [attempt]
    lines = [r.getMessage() for r in caplog.records if "attempt 1" in r.getMessage()]
    assert len(lines) == 1
    assert "FailedResultError" in lines[0]
    assert "a Response" in lines[0]
    assert "503" not in lines[0]  # the result itself is not logged


async def test_what_the_predicate_raises_is_the_attempts_own_error() -> None:
    calls = 0

    def flaky_predicate(response: Response) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("truncated body")
        return server_error(response)

    judged = retrying().judging(flaky_predicate)
    assert (await judged.execute(Upstream(200, 200).get)) == Response(200, 2)  # retried
    strict = retrying(retry_on=ConnectionError).judging(flaky_predicate)
    calls = 0
    with pytest.raises(ValueError, match="truncated"):
        await strict.execute(Upstream().get)  # not retryable: raised


async def test_a_result_failing_on_an_interruption_is_not_retried() -> None:
    policy = retrying()

    async def interrupted() -> Response:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await policy.judging(server_error).execute(interrupted)
    assert policy.stats().failures == 1


def test_execute_sync_and_the_decorators_retry_failed_results() -> None:
    policy = retrying()
    judged = policy.judging(server_error)
    assert judged.execute_sync(Upstream(503, 200).get_sync) == Response(200, 2)
    assert judged.execute_sync(Upstream(503, 503, 503).get_sync) == Response(503, 3)
    with pytest.raises(Down):
        judged.execute_sync(Upstream(Down("a"), Down("b"), Down("c")).get_sync)
    upstream = Upstream(503, 503)

    @judged
    def refund(order_id: str) -> Response:
        return upstream.get_sync(order_id)

    assert refund("o-1") == Response(200, 3)
    assert_type(judged, JudgedRetry[Response])
    assert repr(judged) == "<JudgedRetry 'retry' failed_if=server_error>"
    assert judged.policy is policy
    assert judged.failed_if is server_error
    stats = policy.stats()
    assert (stats.calls, stats.successes, stats.failures) == (4, 2, 2)


def test_execute_sync_counts_what_is_not_retried() -> None:
    policy = retrying(max_attempts=1)
    judged = policy.judging(server_error)
    assert judged.execute_sync(Upstream(503).get_sync).status_code == 503
    with pytest.raises(Down):
        judged.execute_sync(Upstream(Down("refused")).get_sync)

    def interrupted() -> Response:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        judged.execute_sync(interrupted)
    assert policy.stats().failures == 3


async def test_a_judging_retry_decorates_coroutines() -> None:
    upstream = Upstream(503)

    @retrying().judging(server_error)
    async def charge(order_id: str) -> Response:
        return await upstream.get(order_id)

    assert await charge("o-1") == Response(200, 2)


async def test_a_failed_result_error_raised_by_the_call_itself_is_an_error_like_any() -> None:
    calls = 0

    async def odd() -> Response:
        nonlocal calls
        calls += 1
        raise FailedResultError(Response(503))

    with pytest.raises(FailedResultError):
        await retrying(retry_on=ConnectionError).execute(odd)
    assert calls == 1  # retry_on decides, as for any error
    plain, judged = retrying(), retrying()
    with pytest.raises(FailedResultError):
        await plain.execute(odd)
    with pytest.raises(FailedResultError):  # the call's own: raised, never returned
        await judged.judging(server_error).execute(odd)
    assert calls == 1 + 3 + 3
    assert plain.stats().failures == judged.stats().failures == 1


def test_a_failed_result_error_raised_by_a_plain_function_is_raised_too() -> None:
    def odd() -> Response:
        raise FailedResultError(Response(503))

    policy = retrying()
    with pytest.raises(FailedResultError):
        policy.judging(server_error).execute_sync(odd)
    assert policy.stats().attempts == 3


# -- the composed policy -------------------------------------------------------------------


def test_describe_marks_the_steps_that_judge_results() -> None:
    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=3),
        breaker=CircuitBreaker("payments-api"),
        timeout=2.0,
        fallback=Fallback(lambda error: Response(200), on=(ConnectionError, FailedResultError)),
    )
    judged = policy.judging(server_error)
    assert judged.describe() == (
        "fallback(ConnectionError, FailedResultError, failed_if=server_error) "
        "> retry(max_attempts=3, failed_if=server_error) "
        "> breaker('payments-api', failed_if=server_error) > timeout(2 s) > call"
    )
    assert policy.describe() == (  # unchanged without judging
        "fallback(ConnectionError, FailedResultError) > retry(max_attempts=3) "
        "> breaker('payments-api') > timeout(2 s) > call"
    )
    assert judged.steps == policy.steps
    assert judged.policy is policy
    assert repr(judged) == f"<JudgedPolicy {judged.describe()}>"
    ordered = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=2), breaker=CircuitBreaker("db"), order=("breaker", "retry")
    )
    assert ordered.judging(lambda r: r is None).describe() == (
        "breaker('db', failed_if=<lambda>) > retry(max_attempts=2, failed_if=<lambda>) > call"
    )


async def test_each_attempt_is_judged_by_the_breaker_and_retried() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=10)
    policy = ResiliencePolicy(retry=retrying(), breaker=breaker, timeout=1.0)
    upstream = Upstream(503, 503, 503)
    response = await policy.judging(server_error).execute(upstream.get, "/charges")
    assert response == Response(503, 3)
    assert breaker.stats().total_failures == 3  # each attempt went through the breaker


async def test_the_breaker_opening_during_the_retries_ends_them() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=2)
    policy = ResiliencePolicy(retry=retrying(max_attempts=4), breaker=breaker)
    upstream = Upstream(503, 503, 503)
    with pytest.raises(CircuitOpenError):
        await policy.judging(server_error).execute(upstream.get)
    assert upstream.calls == 2  # no budget: a refusal is not retried


async def test_a_breaker_outside_the_retry_sees_only_the_final_result() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=1)
    policy = ResiliencePolicy(retry=retrying(), breaker=breaker, order=("breaker", "retry"))
    judged = policy.judging(server_error)
    assert await judged.execute(Upstream(503, 503).get) == Response(200, 3)
    assert breaker.stats().total_failures == 0
    assert (await judged.execute(Upstream(503, 503, 503).get)).status_code == 503
    assert state_of(breaker) is CircuitState.OPEN


async def test_the_fallback_is_offered_a_final_failed_result_as_an_error() -> None:
    used: list[Event] = []
    cached = Response(200, -1)
    fallback = Fallback(
        lambda error: cached, on=(FailedResultError, CircuitOpenError), listeners=[used.append]
    )
    policy = ResiliencePolicy(retry=retrying(), fallback=fallback)
    judged = policy.judging(server_error)
    assert await judged.execute(Upstream(503, 503, 503).get) is cached
    [event] = used
    assert isinstance(event, FallbackUsed)
    assert isinstance(event.error, FailedResultError)
    assert event.error.result == Response(503, 3)
    assert await judged.execute(Upstream(503, 200).get) == Response(200, 2)
    assert len(used) == 1


async def test_a_fallback_not_selecting_failed_results_lets_them_through() -> None:
    policy = ResiliencePolicy(
        retry=retrying(max_attempts=2),
        fallback=Fallback(lambda error: Response(200, -1), on=ConnectionError),
    )
    judged = policy.judging(server_error)
    assert await judged.execute(Upstream(503, 503).get) == Response(503, 2)
    assert await judged.execute(Upstream(ConnectionError(), ConnectionError()).get) == Response(
        200, -1
    )


async def test_the_fallback_handles_what_the_predicate_raises() -> None:
    def broken(response: Response) -> bool:
        raise ValueError("unparsable")

    policy = ResiliencePolicy(fallback=Fallback(lambda error: Response(200, -1), on=ValueError))
    assert await policy.judging(broken).execute(Upstream().get) == Response(200, -1)
    with pytest.raises(Down):  # an error the fallback does not select
        await policy.judging(server_error).execute(Upstream(Down("refused")).get)


async def test_steps_outside_the_fallback_do_not_judge_its_value() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=1)
    policy = ResiliencePolicy(
        retry=retrying(),
        breaker=breaker,
        fallback=Fallback(lambda error: Response(599, -1)),  # every error, failed results too
        order=("breaker", "retry", "fallback"),
    )
    upstream = Upstream(503)
    assert await policy.judging(server_error).execute(upstream.get) == Response(599, -1)
    assert upstream.calls == 1  # the retry took the fallback's value as it is
    assert state_of(breaker) is CircuitState.CLOSED  # and so did the breaker
    assert breaker.stats().total_successes == 1


def test_execute_sync_and_decorators_of_a_judged_policy() -> None:
    breaker = make_breaker(ManualClock(), failure_threshold=10)
    policy = ResiliencePolicy(
        retry=retrying(),
        breaker=breaker,
        fallback=Fallback(lambda error: "cached", on=FailedResultError),
    )
    judged = policy.judging(server_error)
    assert_type(judged, JudgedPolicy[Response, str])
    assert judged.execute_sync(Upstream(503, 200).get_sync) == Response(200, 2)
    assert judged.execute_sync(Upstream(503, 503, 503).get_sync) == "cached"
    with pytest.raises(Down):
        judged.execute_sync(Upstream(Down("a"), Down("b"), Down("c")).get_sync)
    assert breaker.stats().total_failures == 7
    upstream = Upstream(503)

    @judged
    def refund(order_id: str) -> Response:
        return upstream.get_sync(order_id)

    refunded = refund("o-1")
    assert_type(refunded, Response | str)  # the call's type or the fallback's
    assert refunded == Response(200, 2)

    def broken(response: Response) -> bool:
        raise ValueError("unparsable")

    fallback_on_errors = ResiliencePolicy(
        fallback=Fallback(lambda error: "stale", on=ValueError),
        bulkhead=Bulkhead("api", max_concurrent=1),
    )
    assert fallback_on_errors.judging(broken).execute_sync(Upstream().get_sync) == "stale"
    judged_on_errors = fallback_on_errors.judging(server_error)
    assert judged_on_errors.execute_sync(Upstream(503).get_sync) == Response(503, 1)
    with pytest.raises(Down):
        judged_on_errors.execute_sync(Upstream(Down("refused")).get_sync)
    assert judged_on_errors.failed_if is server_error
    with pytest.raises(TypeError, match="timeout"):
        ResiliencePolicy(timeout=1.0).judging(server_error).execute_sync(Upstream().get_sync)


async def test_a_judged_policy_decorates_coroutines_and_keeps_the_result_type() -> None:
    policy = ResiliencePolicy(retry=retrying(), breaker=make_breaker(ManualClock()))
    upstream = Upstream(503)

    @policy.judging(server_error)
    async def charge(order_id: str) -> Response:
        return await upstream.get(order_id)

    response = await charge("o-1")
    assert_type(response, Response)
    assert response == Response(200, 2)


async def test_the_limiter_bulkhead_and_timeout_pass_results_on_unjudged() -> None:
    bulkhead = Bulkhead("api", max_concurrent=2)
    seen: list[Event] = []
    bulkhead.add_listener(seen.append)
    policy = ResiliencePolicy(bulkhead=bulkhead, timeout=1.0)
    assert (await policy.judging(server_error).execute(Upstream(503).get)).status_code == 503
    assert [e.outcome for e in seen if isinstance(e, CallOutcome)] == ["success"]
