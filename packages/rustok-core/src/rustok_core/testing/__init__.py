"""Test helpers for code built on rustok-core: a clock that moves only when told to.

The resilience strategies (breaker, retry, bulkhead, rate limiter) all accept
``clock=``; in test mode their waits are skipped but counted on that clock.

Example:
    >>> from rustok_core.testing import ManualClock
    >>> clock = ManualClock()
    >>> clock.advance(2.5)
    >>> clock()
    1002.5
"""

from rustok_core.testing._clock import ManualClock
from rustok_core.testing._mode import is_test_mode, set_test_mode, test_mode

__all__ = ["ManualClock", "is_test_mode", "set_test_mode", "test_mode"]
