"""Test mode: every wait of the resilience strategies is skipped, but counted on the clock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rustok_core.resilience._waiting import is_test_mode, set_test_mode

__all__ = ["is_test_mode", "set_test_mode", "test_mode"]


@contextlib.contextmanager
def test_mode() -> Iterator[None]:
    """Skip every wait inside the block (retry backoff, bulkhead queues), then restore.

    A skipped wait still counts: a clock that can be advanced (`ManualClock`) is
    moved forward by it, and a retry's time budget counts it even on the real
    clock, so a 3 s budget with 1 s waits allows the same attempts as in real time.

    Examples:
        >>> from rustok_core.testing import is_test_mode, test_mode
        >>> with test_mode():
        ...     is_test_mode()
        True
        >>> is_test_mode()
        False
    """
    before = is_test_mode()
    set_test_mode(True)
    try:
        yield
    finally:
        set_test_mode(before)


test_mode.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it
