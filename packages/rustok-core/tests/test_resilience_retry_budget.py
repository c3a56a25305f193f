"""The retry budget shared by a policy's calls, and retry_after honoured within the time budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rustok_core.error import ErrorKind, RichError
from rustok_core.resilience import (
    BudgetExhausted,
    BulkheadFullError,
    Event,
    Fixed,
    RateLimitedError,
    RetryAttempt,
    RetryBudget,
    RetryPolicy,
)
from rustok_core.testing import ManualClock, test_mode


@pytest.fixture(autouse=True)
def no_waiting() -> Iterator[None]:
    with test_mode():
        yield


class Down(Exception):
    pass


class Attempts:
    """A dependency that fails the first ``failures`` attempts (all of them by default)."""

    def __init__(self, failures: int = 10**9) -> None:
        self.failures = failures
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.count <= self.failures:
            raise Down(f"attempt {self.count}")
        return "ok"


async def test_at_total_failure_attempts_stay_within_1_1x_the_calls() -> None:
    dependency = Attempts()
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(0.0), retry_budget=RetryBudget())
    calls = 1000
    for _ in range(calls):
        with pytest.raises(Down):
            await policy.execute(dependency)
    assert dependency.count <= 1.1 * calls
    assert policy.stats().attempts == dependency.count


async def test_without_a_budget_total_failure_multiplies_the_load() -> None:
    dependency = Attempts()
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(0.0))
    for _ in range(100):
        with pytest.raises(Down):
            await policy.execute(dependency)
    assert dependency.count == 300  # what the budget prevents


async def test_successes_refill_the_budget_and_retries_resume() -> None:
    budget = RetryBudget(max_tokens=4, token_ratio=1.0)
    policy = RetryPolicy(max_attempts=2, backoff=Fixed(0.0), retry_budget=budget)
    for _ in range(3):
        with pytest.raises(Down):
            await policy.execute(Attempts())
    assert not budget.allows_retry()
    with pytest.raises(Down):
        await policy.execute(Attempts(failures=1))  # no retry: the budget is low
    for _ in range(4):
        await policy.execute(Attempts(failures=0))
    assert budget.allows_retry()
    assert await policy.execute(Attempts(failures=1)) == "ok"  # retried again


async def test_an_exhausted_budget_is_reported_to_listeners() -> None:
    events: list[Event] = []
    budget = RetryBudget(max_tokens=2, token_ratio=0.1)
    policy = RetryPolicy(
        max_attempts=5, backoff=Fixed(0.0), retry_budget=budget, name="payments",
        listeners=[events.append],
    )  # fmt: skip
    with pytest.raises(Down):
        await policy.execute(Attempts())
    assert [e for e in events if isinstance(e, BudgetExhausted)] == [
        BudgetExhausted("payments", "retries", 1)
    ]


async def test_an_exhausted_time_budget_is_reported_to_listeners() -> None:
    events: list[Event] = []
    policy = RetryPolicy(
        max_attempts=10, backoff=Fixed(1.0), budget=2.5, clock=ManualClock(start=0.0),
        listeners=[events.append],
    )  # fmt: skip
    with pytest.raises(Down):
        await policy.execute(Attempts())
    assert [e for e in events if isinstance(e, BudgetExhausted)] == [
        BudgetExhausted("retry", "time", 3)
    ]


def test_one_budget_can_be_shared_by_the_sync_path() -> None:
    budget = RetryBudget(max_tokens=2, token_ratio=0.1)
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(0.0), retry_budget=budget)
    count = 0

    def down() -> None:
        nonlocal count
        count += 1
        raise Down("down")

    for _ in range(10):
        with pytest.raises(Down):
            policy.execute_sync(down)
    assert count == 10  # one token down, the budget is at half: no retries at all


# -- retry_after --------------------------------------------------------------------------


class Refuse:
    """Refuses once with the given error, then succeeds."""

    def __init__(self, error: Exception) -> None:
        self.error: Exception | None = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return "ok"


class UpstreamBusy(RichError):
    """Another library's 503 with a retry_after, as HTTP clients raise them."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(ErrorKind.EXTERNAL_SERVICE, "upstream busy")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    "error",
    [RateLimitedError("api", "acme", 3.0), BulkheadFullError("search", 4, 3.0), UpstreamBusy(3.0)],
)
async def test_retry_after_is_waited_for_when_it_fits_the_time_budget(error: Exception) -> None:
    seen: list[RetryAttempt] = []
    policy = RetryPolicy(
        max_attempts=3, backoff=Fixed(0.1), budget=5.0, on_retry=seen.append,
        clock=ManualClock(start=0.0),
    )  # fmt: skip
    assert await policy.execute(Refuse(error)) == "ok"
    assert [a.delay for a in seen] == [3.0]


@pytest.mark.parametrize(
    "error",
    [
        RateLimitedError("api", "acme", 30.0),
        BulkheadFullError("search", 4, 30.0),
        UpstreamBusy(30.0),
    ],
)
async def test_retry_after_beyond_the_time_budget_is_not_retried(error: Exception) -> None:
    dependency = Refuse(error)
    policy = RetryPolicy(max_attempts=3, budget=5.0, clock=ManualClock(start=0.0))
    with pytest.raises(type(error)):
        await policy.execute(dependency)
    assert dependency.calls == 1


@pytest.mark.parametrize(
    "error", [RateLimitedError("api", "acme", 0.1), BulkheadFullError("search", 4, 0.1)]
)
async def test_our_refusals_are_not_retried_without_a_time_budget(error: Exception) -> None:
    dependency = Refuse(error)
    with pytest.raises(type(error)):
        await RetryPolicy(max_attempts=3).execute(dependency)
    assert dependency.calls == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_tokens": 0}, "max_tokens"), ({"token_ratio": 0}, "token_ratio"),
     ({"token_ratio": 1.5}, "token_ratio")],
)  # fmt: skip
def test_invalid_budget_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryBudget(**kwargs)


async def test_listeners_hear_each_retry() -> None:
    events: list[Event] = []
    policy = RetryPolicy(
        max_attempts=3, backoff=Fixed(0.5), name="search", listeners=[events.append],
        clock=ManualClock(start=0.0),
    )  # fmt: skip
    assert await policy.execute(Attempts(failures=2)) == "ok"
    retries = [e for e in events if isinstance(e, RetryAttempt)]
    assert [(r.policy, r.attempt, r.delay) for r in retries] == [
        ("search", 1, 0.5),
        ("search", 2, 0.5),
    ]
