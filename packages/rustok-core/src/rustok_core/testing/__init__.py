"""Test helpers for code built on rustok-core: a clock that moves only when told to.

Example:
    >>> from rustok_core.testing import ManualClock
    >>> clock = ManualClock()
    >>> clock.advance(2.5)
    >>> clock()
    1002.5
"""

from rustok_core.testing._clock import ManualClock

__all__ = ["ManualClock"]
