"""Retrying a block of code, not only a function: `retrying` and `retrying_async`.

Some code to retry is not a function of its own: a few statements in the middle of a
handler, a transaction's body. stamina's ``retry_context`` and tenacity's
``for attempt in Retrying(): with attempt:`` retry such a block; these do the same
with a `RetryPolicy`::

    async for attempt in retrying_async(policy):
        with attempt:
            rows = await conn.fetch(query)

Every decision is the policy's own: the loop drives the same steps as a call through
`RetryPolicy.execute` (the one body of its sync and async calls), handing each attempt to
the block and waiting each wait, so which errors are retried, the waits, the stops, both
budgets, ``retry_after``, the statistics, logs, ``on_retry`` and listeners, and test
mode, are those of a call through the policy, and nothing of them is written again here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from types import TracebackType
from typing import Final

from rustok_core.resilience._retry import RetryPolicy
from rustok_core.resilience._waiting import Steps, sleep_async, sleep_sync

__all__ = ["BlockAttempt", "retrying", "retrying_async"]


class _Block:
    """What the policy's log lines call the retried code (in place of a function's name)."""

    __qualname__ = "block"


_BLOCK: Final = _Block()


class _Call:
    """The steps of one call through a policy, whose attempts are runs of a block."""

    __slots__ = ("_attempts", "_delay", "done", "policy", "steps")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy: RetryPolicy = policy
        self.steps: Steps[None] = policy._steps(_BLOCK, None)
        self.done: bool = False
        self._delay: float = 0.0
        self._attempts: int = 0

    def start(self) -> BlockAttempt:
        """The first attempt (the steps begin with one)."""
        next(self.steps)
        return self._attempt()

    def _attempt(self) -> BlockAttempt:
        self._attempts += 1
        return BlockAttempt(self._attempts, self)

    def settle(self, error: BaseException | None) -> bool:
        """Hand a run's outcome (``None``: it succeeded) to the steps; whether to swallow
        ``error`` (the policy retries it). An error the policy ends the call with is raised:
        the block's own error goes on as itself."""
        try:
            delay = self.steps.send(None) if error is None else self.steps.throw(error)
        except StopIteration:  # the call succeeded
            self.done = True
            return False
        except BaseException as raised:
            self.done = True
            if raised is error:
                return False
            raise
        assert delay is not None  # after a failed attempt the steps wait first
        self._delay = delay
        return True

    def after_wait(self, skipped: float) -> BlockAttempt:
        """The next attempt, once the wait was waited (``skipped``: what the clock did not
        see of it)."""
        step = self.steps.send(skipped)
        assert step is None  # after a wait the steps make an attempt
        return self._attempt()

    def interrupted(self, error: BaseException) -> None:
        """A wait was interrupted (cancelled): the call ends with that error."""
        self.done = True
        self.steps.throw(error)

    @property
    def delay(self) -> float:
        """The wait before the next attempt."""
        return self._delay

    def close(self) -> None:
        """End the call if the loop was left before it ended (``break``)."""
        if not self.done:
            self.done = True
            self.steps.close()


class BlockAttempt:
    """One attempt of a block retried by `retrying` or `retrying_async`: enter it with
    ``with attempt:`` around the block.

    On leaving it, an error the policy retries is swallowed and the loop goes on to the
    next attempt after the policy's wait; any other error, and the last attempt's, is
    raised as itself; success ends the loop.
    """

    __slots__ = ("_call", "_entered", "_number")

    def __init__(self, number: int, call: _Call) -> None:
        self._number: int = number
        self._call: _Call = call
        self._entered: bool = False

    @property
    def number(self) -> int:
        """The attempt's number, from 1."""
        return self._number

    def __enter__(self) -> BlockAttempt:
        if self._entered:
            raise RuntimeError(f"attempt {self._number} has already been run")
        self._entered = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        return self._call.settle(error)

    def __repr__(self) -> str:
        return f"<BlockAttempt {self._number}>"


def _check_entered(attempt: BlockAttempt) -> None:
    if not attempt._entered:
        raise RuntimeError(
            f"attempt {attempt.number} was not run: enter each attempt with `with attempt:`"
        )


def retrying(policy: RetryPolicy) -> Generator[BlockAttempt, None, None]:
    """Attempts of a block of plain code, retried per ``policy``::

        for attempt in retrying(policy):
            with attempt:
                row = cursor.execute(query).fetchone()

    The block runs once per attempt; the policy's waits between attempts are those of
    `RetryPolicy.execute_sync` (``time.sleep``, skipped in test mode). An error the policy
    retries is swallowed by ``with attempt:`` and the loop goes on; any other error, or the
    last attempt's, is raised as itself from the block.

    Raises:
        RuntimeError: the loop went on without running an attempt (``with attempt:``).
    """
    call = _Call(policy)
    try:
        attempt = call.start()
        while True:
            yield attempt
            _check_entered(attempt)
            if call.done:
                return
            try:
                skipped = sleep_sync(call.delay, policy.clock)
            except BaseException as error:
                call.interrupted(error)
                raise
            attempt = call.after_wait(skipped)
    finally:
        call.close()


async def retrying_async(policy: RetryPolicy) -> AsyncGenerator[BlockAttempt, None]:
    """Attempts of a block of async code, retried per ``policy``::

        async for attempt in retrying_async(policy):
            with attempt:
                rows = await conn.fetch(query)

    The block runs once per attempt, in the caller's task; the policy's waits between
    attempts are those of `RetryPolicy.execute` (skipped in test mode), awaited in the
    ``async for``. An error the policy retries is swallowed by ``with attempt:`` and the
    loop goes on; any other error, or the last attempt's, is raised as itself. A loop left
    early ends the policy's call when the iterator is closed (``aclose()``, or the event
    loop's finalizer).

    Raises:
        RuntimeError: the loop went on without running an attempt (``with attempt:``).
    """
    call = _Call(policy)
    try:
        attempt = call.start()
        while True:
            yield attempt
            _check_entered(attempt)
            if call.done:
                return
            try:
                skipped = await sleep_async(call.delay, policy.clock)
            except BaseException as error:
                call.interrupted(error)
                raise
            attempt = call.after_wait(skipped)
    finally:
        call.close()
