"""Waiting, and the test mode in which waits are skipped but counted on the clock.

Every strategy that waits (retry backoff, a bulkhead's queue, a rate limiter)
waits through `sleep_async` / `sleep_sync`. In test mode (switched by
``rustok_core.testing.test_mode``) nothing sleeps: a clock that can be advanced
(``rustok_core.testing.ManualClock``) is moved forward by the wait instead, and
otherwise the wait is returned to the caller, which adds it to the time it has
spent. Either way a time budget sees the waits, so it behaves as in real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Elapsed", "is_test_mode", "set_test_mode", "sleep_async", "sleep_sync"]

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

    async def sleep_async(self, seconds: float) -> None:
        self._skipped += await sleep_async(seconds, self._clock)

    def sleep_sync(self, seconds: float) -> None:
        self._skipped += sleep_sync(seconds, self._clock)
