"""Sliding windows of call outcomes for the rate-based breaker (resilience4j's model).

A count window holds the last ``size`` outcomes; a time window aggregates the
outcomes of the last ``size`` seconds in one bucket per second of the clock.
Both keep running totals, so recording an outcome and reading the rates cost
O(1) (amortised, for the time window's expired buckets).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["CountWindow", "TimeWindow", "Window"]

# An outcome packed in an int: bit 0 failed, bit 1 slow.
_FAILED = 1


class CountWindow:
    """The outcomes of the last ``size`` calls (a ring of outcome codes)."""

    __slots__ = ("_next", "_ring", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = [0] * size
        self._next = 0
        self.calls = self.failures = self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Add one outcome, replacing the oldest once the window is full."""
        code = failed | (slow << 1)
        ring = self._ring
        i = self._next
        if self.calls == self._size:
            old = ring[i]
            if old:
                self.failures -= old & _FAILED
                self.slow -= old >> 1
        else:
            self.calls += 1
        ring[i] = code
        i += 1
        self._next = i if i < self._size else 0
        if code:
            self.failures += code & _FAILED
            self.slow += code >> 1

    def expire(self, now: float) -> None:
        """Nothing expires from a count window."""

    def clear(self) -> None:
        """Forget every outcome."""
        self._ring = [0] * self._size
        self._next = 0
        self.calls = self.failures = self.slow = 0


class TimeWindow:
    """The outcomes of the calls that ended in the last ``size`` seconds (1 s buckets)."""

    __slots__ = ("_buckets", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        # Each bucket: [second, calls, failures, slow], oldest first.
        self._buckets: deque[list[int]] = deque()
        self.calls = self.failures = self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Add one outcome at ``now`` (seconds on the breaker's clock)."""
        second = math.floor(now)
        self.expire(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
        else:
            bucket = [second, 0, 0, 0]
            buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def expire(self, now: float) -> None:
        """Drop the buckets older than the window."""
        oldest_kept = math.floor(now) - self._size + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest_kept:
            _, calls, failures, slow = buckets.popleft()
            self.calls -= calls
            self.failures -= failures
            self.slow -= slow

    def clear(self) -> None:
        """Forget every outcome."""
        self._buckets.clear()
        self.calls = self.failures = self.slow = 0


Window = CountWindow | TimeWindow
