"""RetryPolicy: backoff delays, attempts, budget, predicates, open breakers, statistics."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from typing import assert_type

import pytest
import tenacity

from rustok_core.resilience import (
    CircuitOpenError,
    CircuitState,
    Exponential,
    Fixed,
    Linear,
    RetryAttempt,
    RetryPolicy,
)
from rustok_core.testing import ManualClock, is_test_mode, set_test_mode, test_mode


class Flaky(Exception):
    """A transient failure."""


class Fatal(Exception):
    """A failure that retrying cannot fix."""


@pytest.fixture(autouse=True)
def no_waiting() -> Iterator[None]:
    with test_mode():
        yield


class Script:
    """An async operation failing with the given errors, then returning ``"done"``."""

    def __init__(self, *errors: Exception, clock: ManualClock | None = None, cost: float = 0.0):
        self.errors = list(errors)
        self.calls = 0
        self.clock = clock
        self.cost = cost

    async def __call__(self) -> str:
        return self.sync()

    def sync(self) -> str:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.cost)
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def recorder() -> tuple[list[RetryAttempt], RetryPolicy]:
    seen: list[RetryAttempt] = []
    return seen, RetryPolicy(on_retry=seen.append)


# -- backoff kinds ----------------------------------------------------------------


def test_fixed_backoff_waits_the_same_every_time() -> None:
    assert [Fixed(0.5).delay_after(n) for n in (1, 2, 3, 10)] == [0.5, 0.5, 0.5, 0.5]


def test_linear_backoff_grows_by_its_step_up_to_the_cap() -> None:
    backoff = Linear(initial=1.0, step=0.5, cap=2.2)
    assert [backoff.delay_after(n) for n in (1, 2, 3, 4)] == [1.0, 1.5, 2.0, 2.2]


def test_exponential_backoff_multiplies_up_to_the_cap() -> None:
    backoff = Exponential(base=0.1, multiplier=3.0, cap=1.0, jitter=False)
    delays = [backoff.delay_after(n) for n in (1, 2, 3, 4)]
    assert delays == pytest.approx([0.1, 0.3, 0.9, 1.0])


@pytest.mark.parametrize(
    "backoff",
    [
        Fixed(0.4, jitter=True),
        Linear(initial=0.4, step=0.4, cap=10.0, jitter=True),
        Exponential(base=0.4, multiplier=2.0, cap=10.0, jitter=True),
    ],
    ids=["fixed", "linear", "exponential"],
)
def test_full_jitter_draws_between_zero_and_the_delay(
    backoff: Fixed | Linear | Exponential,
) -> None:
    plain = dataclasses.replace(backoff, jitter=False)
    for attempt in (1, 2, 3):
        ceiling = plain.delay_after(attempt)
        draws = [backoff.delay_after(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert len(set(draws)) > 1  # actually random


def test_exponential_jitter_is_on_by_default() -> None:
    assert Exponential().jitter is True
    assert RetryPolicy().backoff == Exponential(base=0.1, cap=5.0, jitter=True)


async def test_the_policy_waits_what_its_backoff_says() -> None:
    seen: list[RetryAttempt] = []
    policy = RetryPolicy(
        max_attempts=4,
        backoff=Exponential(base=0.2, multiplier=2.0, cap=0.5, jitter=False),
        on_retry=seen.append,
    )
    assert await policy.execute(Script(Flaky(), Flaky(), Flaky())) == "done"
    assert [a.attempt for a in seen] == [1, 2, 3]
    assert [a.delay for a in seen] == pytest.approx([0.2, 0.4, 0.5])
    assert all(isinstance(a.error, Flaky) for a in seen)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("delay", {"delay": -1.0}),
        ("step", {"step": -0.1}),
        ("multiplier", {"multiplier": 0.5}),
        ("cap", {"cap": -1.0}),
    ],
)
def test_invalid_backoff_names_the_field(field: str, kwargs: dict[str, float]) -> None:
    kind = {"delay": Fixed, "step": Linear, "multiplier": Exponential, "cap": Exponential}[field]
    with pytest.raises(ValueError, match=field):
        kind(**kwargs)


# -- attempts and errors ---------------------------------------------------------------


async def test_a_first_success_is_returned_without_retrying() -> None:
    policy = RetryPolicy()
    script = Script()
    assert await policy.execute(script) == "done"
    assert script.calls == 1
    stats = policy.stats()
    assert (stats.calls, stats.attempts, stats.retries, stats.successes) == (1, 1, 0, 1)


async def test_stops_after_max_attempts_and_raises_the_last_error_itself() -> None:
    last = Flaky("third")
    script = Script(Flaky("first"), Flaky("second"), last)
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(0.0))
    with pytest.raises(Flaky) as caught:
        await policy.execute(script)
    assert caught.value is last
    assert script.calls == 3
    stats = policy.stats()
    assert (stats.attempts, stats.retries, stats.failures, stats.successes) == (3, 2, 1, 0)


async def test_no_retry_error_leaks_out() -> None:
    policy = RetryPolicy(max_attempts=2)
    with pytest.raises(Flaky):
        await policy.execute(Script(Flaky(), Flaky()))
    try:
        await policy.execute(Script(Flaky(), Flaky()))
    except tenacity.RetryError:  # pragma: no cover - the failure this test guards against
        pytest.fail("tenacity's RetryError leaked out")
    except Flaky:
        pass


async def test_one_attempt_means_no_retry() -> None:
    script = Script(Flaky())
    with pytest.raises(Flaky):
        await RetryPolicy(max_attempts=1).execute(script)
    assert script.calls == 1


async def test_errors_outside_retry_on_are_raised_at_once() -> None:
    script = Script(Fatal("bad input"))
    policy = RetryPolicy(retry_on=(Flaky,))
    with pytest.raises(Fatal):
        await policy.execute(script)
    assert script.calls == 1


async def test_a_non_retryable_error_after_a_retry_stops_the_retries() -> None:
    script = Script(Flaky(), Fatal(), Flaky())
    with pytest.raises(Fatal):
        await RetryPolicy(max_attempts=5, retry_on=Flaky).execute(script)
    assert script.calls == 2


async def test_a_predicate_chooses_what_to_retry() -> None:
    def transient(exc: Exception) -> bool:
        return "transient" in str(exc)

    policy = RetryPolicy(max_attempts=5, retry_on=transient)
    retried = Script(Flaky("transient glitch"))
    assert await policy.execute(retried) == "done"
    assert retried.calls == 2
    refused = Script(Flaky("permanent"))
    with pytest.raises(Flaky):
        await policy.execute(refused)
    assert refused.calls == 1


async def test_an_abcmeta_exception_type_is_a_type_not_a_predicate() -> None:
    class Transient(Exception, metaclass=abc.ABCMeta):
        pass

    script = Script(Fatal())
    with pytest.raises(Fatal):
        await RetryPolicy(retry_on=Transient).execute(script)
    assert script.calls == 1


async def test_base_exceptions_are_never_retried() -> None:
    class Stop(BaseException):
        pass

    script = Script(Stop())  # type: ignore[arg-type]  # a BaseException on purpose
    with pytest.raises(Stop):
        await RetryPolicy(retry_on=lambda exc: True).execute(script)
    assert script.calls == 1


# -- budget ---------------------------------------------------------------------------


async def test_the_budget_stops_retries_whose_wait_would_end_past_it() -> None:
    clock = ManualClock(start=0.0)
    script = Script(*(Flaky(str(n)) for n in range(10)), clock=clock, cost=1.0)
    policy = RetryPolicy(max_attempts=10, backoff=Fixed(1.0), budget=4.5, clock=clock)
    with pytest.raises(Flaky) as caught:
        await policy.execute(script)
    # Each attempt costs 1 s and each skipped wait moves the clock 1 s:
    # t=1 after attempt 1 (+1 wait = 2 <= 4.5), t=3 after attempt 2 (+1 = 4 <= 4.5),
    # t=5 after attempt 3 (+1 = 6 > 4.5): stop, as it would in real time.
    assert script.calls == 3
    assert str(caught.value) == "2"
    assert clock.now == 5.0


async def test_skipped_waits_advance_a_manual_clock() -> None:
    clock = ManualClock(start=0.0)
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(1.5), clock=clock)
    assert await policy.execute(Script(Flaky(), Flaky())) == "done"
    assert clock.now == 3.0


async def test_skipped_waits_count_toward_the_budget_on_the_real_clock() -> None:
    # The real monotonic clock cannot be advanced: the skipped waits are added to
    # the elapsed time instead, so a 3 s budget with 1 s waits allows 4 attempts
    # (at most 3 waits fit), not one per attempt the machine can make in 3 s.
    script = Script(*(Flaky(str(n)) for n in range(100)))
    policy = RetryPolicy(max_attempts=100, backoff=Fixed(1.0), budget=3.0)
    with pytest.raises(Flaky):
        await policy.execute(script)
    assert script.calls in (3, 4)  # 4 unless the real time between attempts tips it


def test_skipped_waits_count_toward_the_budget_on_the_sync_path() -> None:
    script = Script(*(Flaky(str(n)) for n in range(100)))
    policy = RetryPolicy(max_attempts=100, backoff=Fixed(1.0), budget=3.0)
    with pytest.raises(Flaky):
        policy.execute_sync(script.sync)
    assert script.calls in (3, 4)  # 4 unless the real time between attempts tips it


async def test_an_unlimited_budget_leaves_max_attempts_in_charge() -> None:
    clock = ManualClock(start=0.0)
    script = Script(Flaky(), Flaky(), clock=clock, cost=1000.0)
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(0.0), clock=clock)
    assert await policy.execute(script) == "done"


# -- open breakers ----------------------------------------------------------------------


def refusal(retry_after: float) -> CircuitOpenError:
    return CircuitOpenError("tenant-db", CircuitState.OPEN, retry_after)


async def test_an_open_breaker_is_not_retried_without_a_budget() -> None:
    script = Script(refusal(0.01))
    with pytest.raises(CircuitOpenError):
        await RetryPolicy(max_attempts=5).execute(script)
    assert script.calls == 1


async def test_an_open_breaker_is_retried_when_retry_after_fits_the_budget() -> None:
    seen: list[RetryAttempt] = []
    script = Script(refusal(2.0))
    policy = RetryPolicy(
        max_attempts=3,
        backoff=Fixed(0.1),
        budget=5.0,
        on_retry=seen.append,
        clock=ManualClock(start=0.0),
    )
    assert await policy.execute(script) == "done"
    assert [a.delay for a in seen] == [2.0]  # waits for the breaker, not just the backoff


async def test_an_open_breaker_is_not_retried_when_retry_after_exceeds_the_budget() -> None:
    script = Script(refusal(30.0))
    policy = RetryPolicy(max_attempts=3, budget=5.0, clock=ManualClock(start=0.0))
    with pytest.raises(CircuitOpenError):
        await policy.execute(script)
    assert script.calls == 1


# -- sync path, decorators, testing switch, validation -------------------------------------


def test_execute_sync_retries_plain_callables() -> None:
    script = Script(Flaky(), Flaky())
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(5.0), retry_on=Flaky)  # testing: no wait
    assert policy.execute_sync(script.sync) == "done"
    assert script.calls == 3
    fatal = Script(Fatal())
    with pytest.raises(Fatal):
        policy.execute_sync(fatal.sync)
    assert fatal.calls == 1
    exhausted = Script(Flaky(), Flaky(), Flaky("last"))
    with pytest.raises(Flaky, match="last"):
        policy.execute_sync(exhausted.sync)
    assert policy.stats().failures == 2


async def test_decorator_keeps_the_signature_on_both_kinds() -> None:
    policy = RetryPolicy(max_attempts=2, backoff=Fixed(0.0))
    calls = 0

    @policy
    async def fetch(key: str) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Flaky(key)
        return len(key)

    @policy
    def double(x: int) -> int:
        return 2 * x

    assert assert_type(await fetch("abc"), int) == 3
    assert assert_type(double(4), int) == 8
    assert fetch.__name__ == "fetch"


def test_test_mode_is_on_inside_the_block_and_restored_after() -> None:
    assert is_test_mode()  # the autouse fixture's block
    set_test_mode(False)
    with test_mode():
        assert is_test_mode()
    assert not is_test_mode()
    set_test_mode(True)


async def test_real_waiting_sleeps_the_backoff_delay() -> None:
    set_test_mode(False)
    clock = ManualClock(start=0.0)
    script = Script(Flaky())
    policy = RetryPolicy(max_attempts=2, backoff=Fixed(0.001), clock=clock)
    assert await policy.execute(script) == "done"
    assert policy.stats().total_delay == pytest.approx(0.001)
    assert clock.now == 0.0  # a real wait leaves a manual clock alone


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"budget": 0}, "budget"),
        ({"budget": -1.0}, "budget"),
        ({"retry_on": (Flaky, "x")}, "retry_on"),
        ({"retry_on": int}, "retry_on"),
        ({"retry_on": 3}, "retry_on"),
        ({"backoff": 0.5}, "backoff"),
    ],
)
def test_invalid_policy_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]  # testing bad input


def test_delay_after_needs_an_attempt_number() -> None:
    with pytest.raises(ValueError, match="attempt"):
        Fixed(1.0).delay_after(0)


@pytest.mark.parametrize("max_attempts", [1, 3])
def test_a_plain_functions_stop_iteration_reaches_the_caller_as_itself(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, backoff=Fixed(0.0))
    with pytest.raises(StopIteration):
        policy.execute_sync(next, iter(()))
    stats = policy.stats()
    assert (stats.attempts, stats.failures) == (max_attempts, 1)
