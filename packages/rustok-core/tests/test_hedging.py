"""Hedge: a slow attempt hedged after the delay, the first success wins, the losers are
cancelled and awaited, failures, the caller's cancellation, events, the decorator."""

from __future__ import annotations

import asyncio
import gc
from collections import defaultdict
from collections.abc import Callable, Coroutine

import pytest

from rustok_core.resilience import Hedge, HedgeAttemptEnded, HedgeEvent, HedgeStarted
from rustok_core.testing import ManualClock


class Delays:
    """A sleep for the hedge's delay that ends only when the test says it has passed."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._pending: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(waiter)
        await waiter

    @property
    def waiting(self) -> int:
        """Delays being waited out now."""
        return sum(1 for waiter in self._pending if not waiter.done())

    def elapse(self) -> None:
        """End every delay being waited out."""
        for waiter in self._pending:
            if not waiter.done():
                waiter.set_result(None)


class Replicas:
    """Attempt ``n`` waits until the test releases it, then answers or raises."""

    def __init__(self) -> None:
        self.release: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.failures: dict[int, BaseException] = {}
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.cleaned_up: list[int] = []

    async def __call__(self, n: int) -> str:
        self.started.append(n)
        try:
            await self.release[n].wait()
        except asyncio.CancelledError:
            self.cancelled.append(n)
            await asyncio.sleep(0)  # clean-up that itself awaits
            self.cleaned_up.append(n)
            raise
        if n in self.failures:
            raise self.failures[n]
        return f"replica {n}"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def make(
    delays: Delays, events: list[HedgeEvent] | None = None, **kwargs: object
) -> tuple[Hedge, Replicas]:
    listeners = [events.append] if events is not None else []
    delay = kwargs.pop("delay", 0.05)
    assert isinstance(delay, float)
    hedge = Hedge("search", delay=delay, sleep=delays, listeners=listeners, **kwargs)  # type: ignore[arg-type]
    return hedge, Replicas()


async def test_a_first_attempt_that_answers_within_the_delay_is_not_hedged() -> None:
    delays, events = Delays(), list[HedgeEvent]()
    hedge, replicas = make(delays, events)
    replicas.release[0].set()
    assert await hedge.execute_attempts(replicas) == "replica 0"
    assert replicas.started == [0]
    assert delays.asked == [0.05]
    assert delays.waiting == 0  # the delay was cancelled, not left behind
    assert [type(event) for event in events] == [HedgeAttemptEnded]
    assert isinstance(events[0], HedgeAttemptEnded)
    assert (events[0].attempt, events[0].outcome) == (0, "success")


async def test_a_slow_first_attempt_is_hedged_after_the_delay_and_the_hedge_wins() -> None:
    delays, events = Delays(), list[HedgeEvent]()
    hedge, replicas = make(delays, events)
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    assert replicas.started == [0]  # no hedge before the delay has passed
    delays.elapse()
    await settle()
    assert replicas.started == [0, 1]
    replicas.release[1].set()
    assert await call == "replica 1"
    # The slow attempt was cancelled and awaited to the end of its clean-up before the
    # call returned.
    assert replicas.cancelled == [0]
    assert replicas.cleaned_up == [0]
    started = [event for event in events if isinstance(event, HedgeStarted)]
    assert [(event.attempt, event.reason) for event in started] == [(1, "delay")]
    ended = [(e.attempt, e.outcome) for e in events if isinstance(e, HedgeAttemptEnded)]
    assert ended == [(1, "success"), (0, "cancelled")]


async def test_the_first_attempt_still_wins_if_it_answers_before_the_hedge() -> None:
    delays = Delays()
    hedge, replicas = make(delays)
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    delays.elapse()
    await settle()
    replicas.release[0].set()
    assert await call == "replica 0"
    assert replicas.cancelled == [1]


async def test_at_most_max_hedged_extra_attempts_start() -> None:
    delays = Delays()
    hedge, replicas = make(delays, max_hedged=2)
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    for _ in range(4):
        await settle()
        delays.elapse()
    await settle()
    assert replicas.started == [0, 1, 2]
    assert delays.waiting == 0  # no delay is waited out once every attempt has started
    replicas.release[2].set()
    assert await call == "replica 2"
    assert sorted(replicas.cancelled) == [0, 1]


async def test_a_failed_attempt_starts_the_next_one_at_once() -> None:
    delays, events = Delays(), list[HedgeEvent]()
    hedge, replicas = make(delays, events)
    replicas.failures[0] = ConnectionError("replica 0 refused")
    replicas.release[0].set()
    replicas.release[1].set()
    assert await hedge.execute_attempts(replicas) == "replica 1"
    started = [(e.attempt, e.reason) for e in events if isinstance(e, HedgeStarted)]
    assert started == [(1, "failure")]


async def test_without_hedge_on_failure_the_next_attempt_waits_for_the_delay() -> None:
    delays = Delays()
    hedge, replicas = make(delays, hedge_on_failure=False)
    replicas.failures[0] = ConnectionError("replica 0 refused")
    replicas.release[0].set()
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    assert replicas.started == [0]
    assert not call.done()
    delays.elapse()
    replicas.release[1].set()
    assert await call == "replica 1"
    assert replicas.started == [0, 1]


async def test_when_every_attempt_fails_the_last_error_is_raised_unchanged() -> None:
    delays, events = Delays(), list[HedgeEvent]()
    hedge, replicas = make(delays, events)
    first, last = ConnectionError("replica 0 refused"), ConnectionError("replica 1 refused")
    replicas.failures.update({0: first, 1: last})
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    delays.elapse()
    await settle()
    replicas.release[0].set()
    await settle()
    replicas.release[1].set()
    with pytest.raises(ConnectionError) as raised:
        await call
    assert raised.value is last
    failures = [e for e in events if isinstance(e, HedgeAttemptEnded) and e.outcome == "failure"]
    assert [(e.attempt, e.error) for e in failures] == [(0, first), (1, last)]


async def test_an_error_on_does_not_select_is_raised_at_once_and_the_others_cancelled() -> None:
    delays = Delays()
    hedge, replicas = make(delays, on=ConnectionError)
    refused = ValueError("no such product")
    replicas.failures[1] = refused
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    delays.elapse()
    await settle()
    replicas.release[1].set()
    with pytest.raises(ValueError) as raised:
        await call
    assert raised.value is refused
    assert replicas.cancelled == [0]
    assert replicas.started == [0, 1]  # no hedge after an error that is not selected


async def test_cancelling_the_caller_cancels_and_awaits_every_attempt() -> None:
    delays, events = Delays(), list[HedgeEvent]()
    hedge, replicas = make(delays, events, max_hedged=2)
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    delays.elapse()
    await settle()
    assert replicas.started == [0, 1]
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert sorted(replicas.cleaned_up) == [0, 1]
    assert replicas.started == [0, 1]  # no attempt started after the cancellation
    assert delays.waiting == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    ended = [(e.attempt, e.outcome) for e in events if isinstance(e, HedgeAttemptEnded)]
    assert ended == [(0, "cancelled"), (1, "cancelled")]


async def test_execute_calls_the_same_function_for_every_attempt() -> None:
    delays = Delays()
    hedge = Hedge("prices", delay=0.2, sleep=delays)
    calls: list[str] = []
    answered = asyncio.Event()

    async def price(sku: str) -> int:
        calls.append(sku)
        if len(calls) == 1:
            await asyncio.Event().wait()  # the first call hangs
        await answered.wait()
        return 42

    call = asyncio.create_task(hedge.execute(price, "boots"))
    await settle()
    delays.elapse()
    await settle()
    answered.set()
    assert await call == 42
    assert calls == ["boots", "boots"]
    assert delays.asked == [0.2]  # one hedge at most: no delay after it


async def test_the_decorator_hedges_a_coroutine_function() -> None:
    delays = Delays()
    hedge = Hedge("prices", delay=0.2, sleep=delays)

    @hedge
    async def price(sku: str) -> int:
        return len(sku)

    assert price.__name__ == "price"
    assert await price("boots") == 5


def test_the_decorator_refuses_a_plain_function() -> None:
    hedge = Hedge("prices", delay=0.2)

    def price(sku: str) -> int:
        return len(sku)

    with pytest.raises(TypeError, match="coroutine functions only"):
        hedge(price)  # type: ignore[arg-type]


async def test_a_failing_listener_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_event: HedgeEvent) -> None:
        raise RuntimeError("listener broke")

    hedge = Hedge("search", delay=0.2, sleep=Delays(), listeners=[broken])

    async def answer() -> str:
        return "ok"

    assert await hedge.execute(answer) == "ok"
    assert "listener" in caplog.text


def test_describe_names_the_delay_and_the_extra_attempts() -> None:
    hedge = Hedge("search", delay=0.05, max_hedged=2)
    assert hedge.describe() == "hedge('search', delay=0.05 s, max_hedged=2)"
    assert (hedge.name, hedge.delay, hedge.max_hedged) == ("search", 0.05, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "delay": 0.1}, "non-empty name"),
        ({"name": "s", "delay": -1.0}, "delay must be"),
        ({"name": "s", "delay": True}, "delay must be"),
        ({"name": "s", "delay": 0.1, "max_hedged": 0}, "max_hedged must be"),
        ({"name": "s", "delay": 0.1, "max_hedged": 1.5}, "max_hedged must be"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Hedge(**kwargs)  # type: ignore[arg-type]


def test_on_must_be_exception_types_or_a_predicate() -> None:
    with pytest.raises(TypeError, match="on must"):
        Hedge("s", delay=0.1, on=42)  # type: ignore[arg-type]


async def test_prometheus_counts_the_hedged_attempts_by_reason() -> None:
    from prometheus_client import generate_latest

    from rustok_core.resilience.prometheus import ResilienceMetrics

    metrics = ResilienceMetrics()
    delays = Delays()
    hedge, replicas = make(delays, max_hedged=2)
    metrics.watch_hedge(hedge)
    replicas.failures[0] = ConnectionError("replica 0 refused")
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    replicas.release[0].set()  # fails: attempt 1 starts at once
    await settle()
    delays.elapse()  # attempt 1 is slow: attempt 2 starts after the delay
    await settle()
    replicas.release[2].set()
    assert await call == "replica 2"
    text = generate_latest(metrics.registry).decode()
    assert 'rustok_hedged_attempts_total{hedge="search",reason="failure"} 1.0' in text
    assert 'rustok_hedged_attempts_total{hedge="search",reason="delay"} 1.0' in text


def test_a_policy_hedges_outside_the_breaker_and_the_per_attempt_timeout() -> None:
    from rustok_core.resilience import CircuitBreaker, ResiliencePolicy, RetryPolicy

    policy = ResiliencePolicy(
        retry=RetryPolicy(max_attempts=2),
        breaker=CircuitBreaker("search"),
        timeout=1.0,
        hedge=Hedge("search", delay=0.05),
    )
    assert policy.steps == ("retry", "hedge", "breaker", "timeout")
    assert policy.describe() == (
        "retry(max_attempts=2) > hedge('search', delay=0.05 s, max_hedged=1) "
        "> breaker('search') > timeout(1 s) > call"
    )


async def test_each_hedged_attempt_of_a_policy_goes_through_its_breaker() -> None:
    from rustok_core.resilience import CircuitBreaker, ResiliencePolicy

    delays = Delays()
    breaker = CircuitBreaker("search")
    hedge = Hedge("search", delay=0.05, sleep=delays)
    policy = ResiliencePolicy(breaker=breaker, hedge=hedge)
    replicas = Replicas()
    attempts = iter(range(3))

    async def attempt() -> str:
        return await replicas(next(attempts))

    call = asyncio.create_task(policy.execute(attempt))
    await settle()
    delays.elapse()
    await settle()
    replicas.release[1].set()
    assert await call == "replica 1"
    stats = breaker.stats()
    assert (stats.total_requests, stats.total_successes, stats.total_cancelled) == (2, 1, 1)


def test_a_policy_with_a_hedge_refuses_plain_calls() -> None:
    from rustok_core.resilience import ResiliencePolicy

    policy = ResiliencePolicy(hedge=Hedge("search", delay=0.05))
    ran: list[int] = []
    with pytest.raises(TypeError, match="only execute"):
        policy.execute_sync(ran.append, 1)
    assert ran == []


class ManualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose timers follow a `ManualClock`: a delay passes when the test says.

    The test keeps the loop busy (``settle``) so that it never waits in ``select`` for a
    timer that is not due.
    """

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self._manual = clock

    def time(self) -> float:
        return self._manual()


def on_manual_time(scenario: Callable[[ManualClock], Coroutine[object, object, None]]) -> None:
    clock = ManualClock(start=0.0)
    with asyncio.Runner(loop_factory=lambda: ManualTimeLoop(clock)) as runner:
        runner.run(scenario(clock))


def test_the_default_delay_is_a_loop_timer_that_starts_the_next_attempt() -> None:
    async def scenario(clock: ManualClock) -> None:
        replicas, events = Replicas(), list[HedgeEvent]()
        hedge = Hedge("search", delay=0.05, max_hedged=2, listeners=[events.append])
        call = asyncio.create_task(hedge.execute_attempts(replicas))
        await settle()
        clock.advance(0.049)
        await settle()
        assert replicas.started == [0]  # the delay has not passed
        clock.advance(0.001)
        await settle()
        assert replicas.started == [0, 1]
        clock.advance(0.05)  # the next delay counts from the hedged attempt
        await settle()
        assert replicas.started == [0, 1, 2]
        replicas.release[2].set()
        assert await call == "replica 2"
        assert sorted(replicas.cleaned_up) == [0, 1]
        started = [(e.attempt, e.reason) for e in events if isinstance(e, HedgeStarted)]
        assert started == [(1, "delay"), (2, "delay")]

    on_manual_time(scenario)


def test_an_answer_before_the_delay_leaves_no_timer_behind() -> None:
    async def scenario(clock: ManualClock) -> None:
        replicas = Replicas()
        hedge = Hedge("search", delay=0.05)
        replicas.release[0].set()
        assert await hedge.execute_attempts(replicas) == "replica 0"
        clock.advance(1.0)
        await settle()
        assert replicas.started == [0]

    on_manual_time(scenario)


async def test_the_next_attempt_is_started_by_the_timer_not_by_waking_the_caller() -> None:
    delays = Delays()
    starters: list[asyncio.Task[object] | None] = []

    def on_event(event: HedgeEvent) -> None:
        if isinstance(event, HedgeStarted):
            starters.append(asyncio.current_task())

    hedge, replicas = make(delays, [])
    hedge.add_listener(on_event)
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    delays.elapse()
    await settle()
    assert replicas.started == [0, 1]
    # Started from a callback of the loop: no task, the caller's least of all, ran it.
    assert starters == [None]
    replicas.release[1].set()
    assert await call == "replica 1"


class LostErrors:
    """Collects what the event loop would log: errors no one retrieved, above all."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, object]] = []

    def __call__(self, _loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        self.contexts.append(context)

    def after_collection(self) -> list[dict[str, object]]:
        gc.collect()  # an unretrieved error is reported when its task is collected
        return self.contexts


async def test_a_loser_that_fails_as_it_is_cancelled_has_its_error_retrieved() -> None:
    lost = LostErrors()
    asyncio.get_running_loop().set_exception_handler(lost)
    delays, events = Delays(), list[HedgeEvent]()
    hedge = Hedge("search", delay=0.05, sleep=delays, listeners=[events.append])
    answer = asyncio.Event()

    async def attempt(n: int) -> str:
        if n == 0:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise ConnectionResetError("replica 0 hung up while cancelled") from None
        await answer.wait()
        return f"replica {n}"

    call = asyncio.create_task(hedge.execute_attempts(attempt))
    await settle()
    delays.elapse()
    await settle()
    answer.set()
    assert await call == "replica 1"
    ended = [(e.attempt, e.outcome) for e in events if isinstance(e, HedgeAttemptEnded)]
    assert ended == [(1, "success"), (0, "cancelled")]
    del call
    assert lost.after_collection() == []


async def test_losers_that_end_with_the_winner_are_reported_cancelled_and_not_logged() -> None:
    lost = LostErrors()
    asyncio.get_running_loop().set_exception_handler(lost)
    delays, events = Delays(), list[HedgeEvent]()
    hedge = Hedge("search", delay=0.05, max_hedged=2, sleep=delays, listeners=[events.append])
    answer = asyncio.Event()

    async def attempt(n: int) -> str:
        await answer.wait()  # all three end in the same pass of the loop
        if n == 1:
            raise ConnectionError("replica 1 refused")
        return f"replica {n}"

    call = asyncio.create_task(hedge.execute_attempts(attempt))
    for _ in range(2):
        await settle()
        delays.elapse()
    await settle()
    answer.set()
    assert await call == "replica 0"
    ended = [(e.attempt, e.outcome) for e in events if isinstance(e, HedgeAttemptEnded)]
    assert ended == [(0, "success"), (1, "cancelled"), (2, "cancelled")]
    del call
    assert lost.after_collection() == []


async def test_a_loser_whose_clean_up_does_not_wait_is_over_when_the_call_returns() -> None:
    delays = Delays()
    hedge = Hedge("search", delay=0.05, sleep=delays)
    stalled: list[asyncio.Task[object] | None] = []
    answer = asyncio.Event()

    async def attempt(n: int) -> str:
        if n == 0:
            stalled.append(asyncio.current_task())
            await asyncio.Event().wait()  # cancelled: unwinds at once
        await answer.wait()
        return f"replica {n}"

    call = asyncio.create_task(hedge.execute_attempts(attempt))
    await settle()
    delays.elapse()
    await settle()
    answer.set()
    assert await call == "replica 1"
    assert stalled[0] is not None
    assert stalled[0].cancelled()


async def test_a_caller_cancelled_after_the_last_failure_raises_cancelled_and_logs_nothing() -> (
    None
):
    lost = LostErrors()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lost)
    delays = Delays()
    calls: list[asyncio.Task[str]] = []

    def on_event(event: HedgeEvent) -> None:
        # The call's error is decided right after this event: the caller is cancelled
        # before it returns it.
        if isinstance(event, HedgeAttemptEnded) and event.attempt == 1:
            loop.call_soon(calls[0].cancel)

    hedge = Hedge("search", delay=0.05, sleep=delays, listeners=[on_event])

    async def refused(n: int) -> str:
        await asyncio.sleep(0)
        raise ConnectionError(f"replica {n} refused")

    calls.append(asyncio.create_task(hedge.execute_attempts(refused)))
    with pytest.raises(asyncio.CancelledError):
        await calls[0]
    calls.clear()
    assert lost.after_collection() == []


async def test_a_failing_delay_ends_the_call_with_its_error() -> None:
    broken = RuntimeError("the sleep broke")

    async def sleep(_seconds: float) -> None:
        raise broken

    hedge = Hedge("search", delay=0.05, sleep=sleep)
    replicas = Replicas()
    with pytest.raises(RuntimeError) as raised:
        await hedge.execute_attempts(replicas)
    assert raised.value is broken
    assert replicas.cancelled == [0]


async def test_a_failing_on_predicate_ends_the_call_with_its_error() -> None:
    broken = LookupError("the predicate broke")

    def on(_error: Exception) -> bool:
        raise broken

    delays = Delays()
    hedge, replicas = make(delays, on=on)
    replicas.failures[1] = ConnectionError("replica 1 refused")
    call = asyncio.create_task(hedge.execute_attempts(replicas))
    await settle()
    delays.elapse()
    await settle()
    replicas.release[1].set()
    with pytest.raises(LookupError) as raised:
        await call
    assert raised.value is broken
    assert replicas.cancelled == [0]
