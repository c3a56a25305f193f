"""BreakerRegistry: one breaker per key (tenant, host), bounded in number."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

from rustok_core.resilience._breaker import CircuitBreaker, CircuitState

__all__ = ["BreakerRegistry"]

logger = logging.getLogger("rustok.resilience")


class BreakerRegistry:
    """Breakers made on first use per key, at most ``max_breakers`` of them kept.

    Past the cap, the least recently used **closed** breakers are retired (a
    later `get` makes a fresh one); an open or half-open breaker is never
    retired, since forgetting it would send traffic to a dependency known to
    be failing. If every breaker is open or half-open the registry grows past
    the cap, and says so in the log once.

    Args:
        factory: makes the breaker of a key, e.g.
            ``lambda host: CircuitBreaker(f"http:{host}", config)``.
        max_breakers: how many breakers to keep (>= 1).

    Raises:
        ValueError: if ``max_breakers`` is below 1.

    Example::

        per_host = BreakerRegistry(lambda host: CircuitBreaker(f"http:{host}"), max_breakers=500)
        await per_host.get("api.example.com").call(fetch, url)
    """

    __slots__ = ("_breakers", "_factory", "_lock", "_max", "_warned")

    def __init__(
        self, factory: Callable[[str], CircuitBreaker], *, max_breakers: int = 1000
    ) -> None:
        cap: object = max_breakers
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"max_breakers must be an integer >= 1, got {max_breakers!r}")
        self._factory = factory
        self._max = max_breakers
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = False

    @property
    def max_breakers(self) -> int:
        """The cap given at construction."""
        return self._max

    def get(self, key: str) -> CircuitBreaker:
        """The breaker of ``key``, made by the factory if there is none."""
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is not None:
                self._breakers.move_to_end(key)
                return breaker
            breaker = self._breakers[key] = self._factory(key)
            if len(self._breakers) > self._max:
                self._retire()
            return breaker

    def breakers(self) -> tuple[CircuitBreaker, ...]:
        """Every breaker held now (without marking any as used)."""
        with self._lock:
            return tuple(self._breakers.values())

    def __contains__(self, key: object) -> bool:
        return key in self._breakers

    def __len__(self) -> int:
        return len(self._breakers)

    def __iter__(self) -> Iterator[str]:
        """The keys, least recently used first."""
        return iter(tuple(self._breakers))

    def _retire(self) -> None:
        excess = len(self._breakers) - self._max
        for key, breaker in tuple(self._breakers.items())[:-1]:  # never the one just made
            if excess == 0:
                return
            if breaker.state is CircuitState.CLOSED:
                del self._breakers[key]
                excess -= 1
        if excess and not self._warned:
            self._warned = True
            logger.warning(
                "breaker registry holds %d breakers, over its cap of %d: the others are open "
                "or half-open and are kept",
                len(self._breakers),
                self._max,
            )
