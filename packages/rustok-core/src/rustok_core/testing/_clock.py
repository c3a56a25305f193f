"""The controllable monotonic clock that breakers, retries and caches accept as ``clock=``."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """A monotonic clock that moves only when a test advances it.

    Pass it wherever a ``clock: Callable[[], float]`` is accepted; calling it returns the
    current reading in seconds.

    Args:
        start: the first reading (any value: only differences matter).

    Examples:
        >>> clock = ManualClock(start=0.0)
        >>> clock.advance(1.5)
        >>> clock.now
        1.5
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back, got advance({seconds!r})")
        self.now += seconds
