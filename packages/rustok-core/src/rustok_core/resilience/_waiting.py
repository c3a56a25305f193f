"""Waiting, and the test mode in which waits are skipped but counted on the clock.

Every strategy that waits (retry backoff, a bulkhead's queue, a rate limiter)
waits through `sleep_async` / `sleep_sync`. In test mode (switched by
``rustok_core.testing.test_mode``) nothing sleeps: a clock that can be advanced
(``rustok_core.testing.ManualClock``) is moved forward by the wait instead, and
otherwise the wait is returned to the caller, which adds it to the time it has
spent. Either way a time budget sees the waits, so it behaves as in real time.

It also drives the steps of a strategy written once for both kinds of call
(`run_steps_async`, `run_steps_sync`), as ``stamina`` does: the strategy is a
generator that yields what to do next (make an attempt, or wait) and is sent
what came of it, so that its logic is not written again for sync callers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, TypeAlias, TypeVar

__all__ = [
    "ATTEMPT",
    "Elapsed",
    "Steps",
    "is_test_mode",
    "run_steps_async",
    "run_steps_sync",
    "set_test_mode",
    "sleep_async",
    "sleep_sync",
]

T = TypeVar("T")

ATTEMPT: Final = None
"""What a strategy's steps yield to have the call made: they are sent its result, or
thrown its exception (whatever it raised, ``BaseException`` included)."""

Steps: TypeAlias = Generator[float | None, Any, T]  # Any: sent a result, or a float
"""A strategy's steps, written once for both kinds of call: a generator that yields
`ATTEMPT` (make the call) or a number of seconds (wait that long: it is sent the part of
the wait that the clock did not see, as `sleep_async` returns it, or thrown what
interrupted the wait), and returns the call's outcome or raises its error."""

_test_mode = False


def set_test_mode(enabled: bool) -> None:
    """Skip every wait (``True``) or wait for real again (``False``), process-wide."""
    global _test_mode
    _test_mode = bool(enabled)


def is_test_mode() -> bool:
    """Whether waits are skipped."""
    return _test_mode


def _skip(seconds: float, clock: Callable[[], float]) -> float:
    advance = getattr(clock, "advance", None)
    if callable(advance):
        advance(seconds)
        return 0.0
    return seconds


async def sleep_async(seconds: float, clock: Callable[[], float]) -> float:
    """Wait ``seconds``; return the part of the wait that ``clock`` did not see.

    That is 0.0 when the wait was real or ``clock`` was advanced by it, and
    ``seconds`` when test mode skipped it on a clock that cannot be advanced.
    """
    if _test_mode:
        await asyncio.sleep(0)  # still give other tasks their turn
        return _skip(seconds, clock)
    await asyncio.sleep(seconds)
    return 0.0


def sleep_sync(seconds: float, clock: Callable[[], float]) -> float:
    """The blocking twin of `sleep_async`."""
    if _test_mode:
        return _skip(seconds, clock)
    time.sleep(seconds)
    return 0.0


class Elapsed:
    """Time spent since ``start`` on ``clock``, the waits that test mode skipped included."""

    __slots__ = ("_clock", "_skipped", "_start")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._start = clock()
        self._skipped = 0.0

    def __call__(self) -> float:
        return self._clock() - self._start + self._skipped

    def add_skipped(self, seconds: float) -> None:
        """Count ``seconds`` of a wait that test mode skipped (what `sleep_async` returned)."""
        self._skipped += seconds


async def run_steps_async(
    steps: Steps[T],
    clock: Callable[[], float],
    fn: Callable[..., Awaitable[object]],
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> T:
    """Drive ``steps`` for an async call: await ``fn(*args, **kwargs)`` for each attempt,
    `sleep_async` on ``clock`` for each wait; return what the steps return (or raise what
    they raise)."""
    try:
        step = next(steps)
        while True:
            try:
                outcome = (
                    await fn(*args, **kwargs) if step is None else await sleep_async(step, clock)
                )
            except BaseException as exc:
                step = steps.throw(exc)
            else:
                step = steps.send(outcome)
    except StopIteration as done:
        result: T = done.value
        return result


def run_steps_sync(
    steps: Steps[T],
    clock: Callable[[], float],
    fn: Callable[..., object],
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> T:
    """The blocking twin of `run_steps_async`: ``fn(*args, **kwargs)`` for each attempt,
    `sleep_sync` for each wait."""
    try:
        step = next(steps)
        while True:
            try:
                outcome = fn(*args, **kwargs) if step is None else sleep_sync(step, clock)
            except BaseException as exc:
                try:
                    step = steps.throw(exc)
                except RuntimeError as error:
                    # A generator cannot raise StopIteration (PEP 479): one that a plain
                    # function raised (``next`` at the end of an iterator) comes back as
                    # the cause of a RuntimeError. It is raised as itself, below.
                    if isinstance(exc, StopIteration) and error.__cause__ is exc:
                        escaped = exc
                        break
                    raise
            else:
                step = steps.send(outcome)
    except StopIteration as done:  # the steps returned
        result: T = done.value
        return result
    raise escaped from None
