"""Bulkhead: a limit on concurrent calls to one dependency, with a bounded wait for a slot.

A slow dependency otherwise ties up every worker of a service; a bulkhead keeps
at most ``max_concurrent`` calls in it and makes the others wait at most
``max_wait`` seconds for a slot, then refuses them with `BulkheadFullError`.
Waiting async callers get slots in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeAlias, TypeVar

from rustok_core.resilience._decorate import Decorates, Paths
from rustok_core.resilience._errors import BulkheadFullError
from rustok_core.resilience._events import CallOutcome, CallRejected, EventListener, notify
from rustok_core.resilience._waiting import is_test_mode, sleep_sync

__all__ = ["Bulkhead", "BulkheadStats"]

P = ParamSpec("P")
T = TypeVar("T")
_Outcome: TypeAlias = Literal["success", "failure", "cancelled"]


@dataclass(frozen=True, slots=True)
class BulkheadStats:
    """A snapshot of a bulkhead's slots and totals."""

    name: str
    max_concurrent: int
    in_use: int
    """Slots held now."""
    waiting: int
    """Callers waiting for a slot now."""
    total_admitted: int
    """Calls that got a slot (at once or after waiting)."""
    total_rejected: int
    """Calls refused with `BulkheadFullError`."""


class Bulkhead(Decorates):
    """At most ``max_concurrent`` calls at once; others wait up to ``max_wait`` seconds.

    ``await bulkhead.call(fn, *args)`` for coroutines, ``bulkhead.call_sync(fn,
    *args)`` for plain callables (from threads); both share the same slots. Used
    as a decorator it picks the path that fits the function.

    In test mode (``rustok_core.testing.test_mode``) a caller that finds no free
    slot waits one turn of the event loop, then counts ``max_wait`` on the clock
    (a ``ManualClock`` is advanced) and is refused: no test waits for real.

    Args:
        name: what the bulkhead protects, for errors, logs and events.
        max_concurrent: the number of slots (>= 1).
        max_wait: seconds a caller may wait for a slot; 0 refuses at once.
        listeners: callables told of every `CallOutcome` and `CallRejected`.
        clock: monotonic seconds (advanced by skipped waits in test mode).

    Raises:
        ValueError: for an empty name, ``max_concurrent`` below 1 or a negative ``max_wait``.

    Example::

        search = Bulkhead("search", max_concurrent=10, max_wait=0.5)
        hits = await search.call(query_index, "boots")
    """

    __slots__ = (
        "_admitted",
        "_clock",
        "_cond",
        "_in_use",
        "_listeners",
        "_lock",
        "_max",
        "_max_wait",
        "_name",
        "_rejected",
        "_sync_waiting",
        "_waiters",
    )

    def __init__(
        self,
        name: str,
        max_concurrent: int,
        max_wait: float = 0.0,
        *,
        listeners: Iterable[EventListener] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError("a bulkhead needs a non-empty name, e.g. 'search'")
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        wait: object = max_wait
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0:
            raise ValueError(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
        self._name = name
        self._max = max_concurrent
        self._max_wait = float(max_wait)
        self._listeners = list(listeners)
        self._clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._in_use = 0
        self._sync_waiting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._admitted = self._rejected = 0

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def max_concurrent(self) -> int:
        """The number of slots."""
        return self._max

    @property
    def max_wait(self) -> float:
        """Seconds a caller may wait for a slot."""
        return self._max_wait

    def stats(self) -> BulkheadStats:
        """Slots in use, callers waiting, and totals."""
        with self._lock:
            return BulkheadStats(
                self._name,
                self._max,
                self._in_use,
                len(self._waiters) + self._sync_waiting,
                self._admitted,
                self._rejected,
            )

    def add_listener(self, listener: EventListener) -> None:
        """Tell ``listener`` of every later event."""
        self._listeners.append(listener)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` in a slot; return its result.

        Raises:
            BulkheadFullError: no slot was free within ``max_wait``; ``fn`` was not called.
            BaseException: whatever ``fn`` raised, unchanged.
        """
        await self._acquire()
        with _Held(self):
            return await fn(*args, **kwargs)

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the plain callable ``fn(*args, **kwargs)`` in a slot, blocking for one.

        Raises:
            BulkheadFullError: no slot was free within ``max_wait``.
            BaseException: whatever ``fn`` raised, unchanged.
        """
        self._acquire_sync()
        with _Held(self):
            return fn(*args, **kwargs)

    def _paths(self) -> Paths:
        return self.call, self.call_sync

    def __repr__(self) -> str:
        return f"<Bulkhead {self._name!r} {self._in_use}/{self._max}>"

    # -- slots ---------------------------------------------------------------------

    async def _acquire(self) -> None:
        with self._lock:
            if self._in_use < self._max and not self._waiters:
                self._in_use += 1
                self._admitted += 1
                return
            if self._max_wait == 0:
                self._rejected += 1
                error = self._full()
            else:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                error = None
        if error is not None:
            raise error
        try:
            if is_test_mode():
                await asyncio.sleep(0)  # a slot freed meanwhile is still taken
            else:
                await asyncio.wait({waiter}, timeout=self._max_wait)
        except BaseException:
            self._give_up(waiter)
            raise
        if waiter.done() and not waiter.cancelled():
            return  # the slot was handed over by _release
        self._give_up(waiter)
        if is_test_mode():
            sleep_sync(self._max_wait, self._clock)  # counts the wait on the clock
        raise self._full()

    def _give_up(self, waiter: asyncio.Future[None]) -> None:
        with self._lock:
            if waiter.done() and not waiter.cancelled():
                handed_over = True
            else:
                handed_over = False
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                self._rejected += 1
        if handed_over:
            self._release()  # a slot it got but will not use

    def _acquire_sync(self) -> None:
        with self._cond:
            if self._in_use < self._max and not self._waiters:
                self._in_use += 1
                self._admitted += 1
                return
            if self._max_wait > 0 and not is_test_mode():
                self._sync_waiting += 1
                try:
                    got = self._cond.wait_for(
                        lambda: self._in_use < self._max and not self._waiters, self._max_wait
                    )
                finally:
                    self._sync_waiting -= 1
                if got:
                    self._in_use += 1
                    self._admitted += 1
                    return
            self._rejected += 1
        if is_test_mode():
            sleep_sync(self._max_wait, self._clock)
        raise self._full()

    def _release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    # Hand the slot over: in_use stays, the waiter owns it now.
                    waiter.get_loop().call_soon_threadsafe(_wake, waiter, self)
                    return
            self._in_use -= 1
            if self._sync_waiting:
                self._cond.notify()

    def _full(self) -> BulkheadFullError:
        # A hint only: a slot may free at any moment. Retry-After is whole seconds.
        retry_after = self._max_wait if self._max_wait > 0 else 1.0
        if self._listeners:
            notify(self._listeners, CallRejected("bulkhead", self._name, "full", retry_after))
        return BulkheadFullError(self._name, self._max, retry_after)

    def _outcome(self, outcome: _Outcome, duration: float) -> None:
        notify(self._listeners, CallOutcome("bulkhead", self._name, outcome, duration))


class _Held:
    """A slot held by one call, async or plain: given back when the call ends, and the
    call's outcome reported (a success, a failure, or cancelled by anything that is not
    an ``Exception``)."""

    __slots__ = ("_bulkhead", "_start")

    def __init__(self, bulkhead: Bulkhead) -> None:
        self._bulkhead = bulkhead
        self._start = bulkhead._clock()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        bulkhead = self._bulkhead
        bulkhead._release()
        if bulkhead._listeners:
            outcome: _Outcome = (
                "success"
                if exc_type is None
                else "failure"
                if issubclass(exc_type, Exception)
                else "cancelled"
            )
            bulkhead._outcome(outcome, bulkhead._clock() - self._start)


def _wake(waiter: asyncio.Future[None], bulkhead: Bulkhead) -> None:
    """Give ``waiter`` the slot handed to it, or give it back if the waiter left."""
    if waiter.done():
        bulkhead._release()
    else:
        with bulkhead._lock:
            bulkhead._admitted += 1
        waiter.set_result(None)
