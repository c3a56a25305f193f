"""Fallback: a policy step that turns chosen errors into a value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rustok_core.resilience._decorate import exception_selector
from rustok_core.resilience._events import EventListener, FallbackUsed, notify

__all__ = ["Fallback"]

R = TypeVar("R")


# Not slotted: on Python 3.11 a generic slotted frozen dataclass cannot be built
# through its subscripted alias (``Fallback[int](...)`` raises TypeError while
# typing sets ``__orig_class__``).
@dataclass(frozen=True)
class Fallback(Generic[R]):
    """Answer ``handler(error)`` instead of raising, for the errors ``on`` selects.

    Use it alone (`apply`) or as the outermost step of a `ResiliencePolicy`:
    a stale cache entry, an empty list or a default when the dependency is down.
    Other errors pass through unchanged.

    Args:
        handler: builds the value from the error (``lambda error: []``).
        on: an exception type, a tuple of them, or a predicate ``(error) -> bool``.
        name: the step's name, in events.
        listeners: callables told of every `FallbackUsed`.

    Raises:
        TypeError: if ``on`` is neither exception types nor a predicate.

    Example::

        empty = Fallback(lambda error: [], on=(ConnectionError, CircuitOpenError))
        policy = ResiliencePolicy(breaker=breaker, fallback=empty)
    """

    handler: Callable[[Exception], R]
    on: type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool] = Exception
    name: str = "fallback"
    listeners: Sequence[EventListener] = ()
    _matches: Callable[[Exception], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(self.handler):
            raise TypeError(f"handler must be a callable taking the error, got {self.handler!r}")
        object.__setattr__(self, "listeners", tuple(self.listeners))
        object.__setattr__(self, "_matches", exception_selector("on", self.on))

    def handles(self, error: Exception) -> bool:
        """Whether ``error`` is one this fallback turns into a value."""
        return self._matches(error)

    def apply(self, error: Exception) -> R:
        """The value for ``error``.

        Raises:
            Exception: ``error`` itself, when the fallback does not handle it.
        """
        if not self._matches(error):
            raise error
        if self.listeners:
            notify(self.listeners, FallbackUsed(self.name, error))
        return self.handler(error)

    def describe(self) -> str:
        """A short description, for `ResiliencePolicy.describe`."""
        on = self.on
        if isinstance(on, type):
            what = on.__name__
        elif isinstance(on, tuple):
            what = ", ".join(t.__name__ for t in on)
        else:
            what = getattr(on, "__name__", "predicate")
        return f"fallback({what})"
