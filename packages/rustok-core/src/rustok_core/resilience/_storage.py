"""Where a circuit breaker keeps its state: this process's memory, or a circuit on Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rustok_core.resilience._pybreaker import pybreaker

if TYPE_CHECKING:
    from rustok_core.resilience._fleet import FleetCircuit

__all__ = ["CircuitStorage"]


class CircuitStorage:
    """The state store of a circuit breaker: a pybreaker storage, owned by one breaker.

    A breaker keeps its state in this process's memory unless it is given a
    storage. Build one shared by several processes with `redis_storage`: its
    circuit lives on Redis, updated by one atomic script per call, and ``backend``
    holds this process's mirror of it (and the local state used while Redis cannot
    be reached). A ``backend`` is never read behind its breaker's back: give each
    breaker its own.

    Args:
        backend: the pybreaker storage holding state, counters and ``opened_at``.
        close: what `close` should call to release the backend's resources, if anything.
    """

    __slots__ = ("_close", "_fleet", "backend")

    backend: pybreaker.CircuitBreakerStorage

    def __init__(
        self,
        backend: pybreaker.CircuitBreakerStorage,
        *,
        close: Callable[[], None] | None = None,
        _fleet: FleetCircuit | None = None,
    ) -> None:
        self.backend = backend
        self._close = close
        self._fleet = _fleet

    @property
    def fleet(self) -> FleetCircuit | None:
        """The circuit on Redis, for a storage from `redis_storage` (``None`` otherwise)."""
        return self._fleet

    def close(self) -> None:
        """Release what the storage holds (the Redis connections `redis_storage` opened).

        Breakers using it must not be called afterwards; closing twice is harmless.
        """
        close, self._close = self._close, None
        if close is not None:
            close()

    @classmethod
    def memory(cls) -> CircuitStorage:
        """A fresh storage in this process's memory (what a breaker uses by default)."""
        return cls(pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED))

    def __repr__(self) -> str:
        if self._fleet is not None:
            return "CircuitStorage(redis)"
        return f"CircuitStorage({type(self.backend).__name__})"
