"""Where a circuit breaker keeps its state: this process's memory, or a shared store."""

from __future__ import annotations

from collections.abc import Callable

from rustok_core.resilience._pybreaker import pybreaker

__all__ = ["CircuitStorage"]


class CircuitStorage:
    """The state store of a circuit breaker: a pybreaker storage, and whether it is shared.

    A breaker keeps its state in this process's memory unless it is given a
    storage. Build a shared one with `redis_storage`; wrap any other
    ``pybreaker.CircuitBreakerStorage`` with ``CircuitStorage(backend, shared=True)``.

    A shared storage is read on every call, so that a breaker sees what other
    processes did to the same circuit; a local one never is (the breaker keeps
    its own copy of the state).

    Args:
        backend: the pybreaker storage holding state, counters and ``opened_at``.
        shared: whether other breaker objects may change ``backend`` behind this one.
        close: what `close` should call to release the backend's resources, if anything.
    """

    __slots__ = ("_close", "backend", "shared")

    backend: pybreaker.CircuitBreakerStorage
    shared: bool

    def __init__(
        self,
        backend: pybreaker.CircuitBreakerStorage,
        *,
        shared: bool,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.shared = shared
        self._close = close

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
        return cls(pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED), shared=False)

    def __repr__(self) -> str:
        return f"CircuitStorage({type(self.backend).__name__}, shared={self.shared})"
