"""Hedge: a second (third, ...) attempt when the first is slow; the first success wins.

A call to a dependency with a long latency tail (one slow replica, one slow
disk) is started again after ``delay`` seconds instead of being waited for: the
first attempt keeps running, and whichever attempt succeeds first gives the
result. The other attempts are cancelled and awaited, so nothing keeps running
after the call returns. It is Polly's hedging strategy and failsafe-go's hedge
policy, for asyncio. A plain function cannot be hedged: a thread cannot be
cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeAlias, TypeVar

from rustok_core.resilience._decorate import exception_selector

__all__ = [
    "Hedge",
    "HedgeAttemptEnded",
    "HedgeEvent",
    "HedgeListener",
    "HedgeOn",
    "HedgeStarted",
]

P = ParamSpec("P")
T = TypeVar("T")
E = TypeVar("E")

logger = logging.getLogger("rustok.resilience")

HedgeOn: TypeAlias = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
"""The errors after which the other attempts may still win: types or a predicate."""


@dataclass(frozen=True, slots=True)
class HedgeStarted:
    """A hedge pulled in another attempt beside the ones still running."""

    name: str
    """The name of the hedge."""
    attempt: int
    """The number of the attempt started: 1 for the first hedged attempt (0 is the first)."""
    reason: Literal["delay", "failure"]
    """``"delay"``: the attempts before it were still running after ``delay`` seconds;
    ``"failure"``: an attempt had just failed."""
    elapsed: float
    """Seconds since the call started."""


@dataclass(frozen=True, slots=True)
class HedgeAttemptEnded:
    """One attempt of a hedged call has finished."""

    name: str
    """The name of the hedge."""
    attempt: int
    """The attempt's number, 0 for the first."""
    outcome: Literal["success", "failure", "cancelled"]
    """``"cancelled"``: another attempt won, or the caller was cancelled."""
    duration: float
    """Seconds it ran."""
    error: BaseException | None = None
    """What it raised, for a failure."""


HedgeEvent: TypeAlias = HedgeStarted | HedgeAttemptEnded
"""Every event a `Hedge` reports."""

HedgeListener: TypeAlias = Callable[[HedgeEvent], None]
"""A callable told of a hedge's events; its exceptions are logged, never raised."""


def tell(listeners: Sequence[Callable[[E], None]], event: E) -> None:
    """Tell every listener of ``event``, logging (never raising) what they raise."""
    for listener in tuple(listeners):
        try:
            listener(event)
        except Exception:
            logger.exception("resilience listener %r failed on %r", listener, event)


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


class Hedge:
    """Start another attempt when the running ones are slow; the first success wins.

    The first attempt starts at once. While no attempt has succeeded, another is
    started every ``delay`` seconds, up to ``max_hedged`` extra attempts; an attempt
    that fails with an error ``on`` selects starts the next one at once
    (``hedge_on_failure``, as Polly does) and restarts the delay. The first attempt
    to return gives the call's result; every other attempt is then cancelled and
    awaited before the call returns. When the caller is cancelled, so is every
    attempt.

    When every attempt has failed, the error of the attempt that failed last is
    raised, unchanged (so ``except ConnectionError`` and a retry's ``retry_on`` work
    as for a single call); the earlier errors are in the `HedgeAttemptEnded` events.
    An error ``on`` does not select (a validation error, which another replica would
    repeat) is raised at once and the other attempts are cancelled.

    ``await hedge.execute(fn, *args)`` runs the same function for every attempt;
    ``await hedge.execute_attempts(attempt)`` calls ``attempt(n)`` for attempt ``n``
    (0 first), so that each attempt may go to another replica. Used as a decorator
    on a coroutine function it goes through `execute`. Each hedged attempt is extra
    load on the dependency: keep ``max_hedged`` small and ``delay`` near the
    latency's high percentile (p95, say).

    Args:
        name: what the hedge protects, for events and descriptions.
        delay: seconds an attempt is given before the next one starts (>= 0; 0 starts
            them all at once).
        max_hedged: extra attempts at most, beside the first (>= 1).
        hedge_on_failure: start the next attempt as soon as one fails (default);
            ``False`` keeps to the ``delay`` schedule.
        on: the errors after which the other attempts may still win: an exception
            type, a tuple of them, or a predicate (default: every ``Exception``).
        listeners: callables told of every `HedgeStarted` and `HedgeAttemptEnded`.
        sleep: waits out the delay (``asyncio.sleep`` by default); tests pass one
            that waits on an event they set, so that no test waits for real.
        clock: monotonic seconds, for the durations in events.

    Raises:
        ValueError: for an empty name, a negative ``delay`` or ``max_hedged`` below 1.
        TypeError: if ``on`` is neither exception types nor a predicate.

    Example::

        replicas = Hedge("search", delay=0.05, max_hedged=2)
        hits = await replicas.execute_attempts(lambda n: search_on(nodes[n], "boots"))
    """

    __slots__ = (
        "_clock",
        "_delay",
        "_handles",
        "_hedge_on_failure",
        "_listeners",
        "_max_hedged",
        "_name",
        "_sleep",
    )

    def __init__(
        self,
        name: str,
        *,
        delay: float,
        max_hedged: int = 1,
        hedge_on_failure: bool = True,
        on: HedgeOn = Exception,
        listeners: Iterable[HedgeListener] = (),
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError("a hedge needs a non-empty name, e.g. 'search'")
        given: object = delay
        if not _is_number(given) or not delay >= 0:
            raise ValueError(f"delay must be a number of seconds >= 0, got {delay!r}")
        hedged: object = max_hedged
        if isinstance(hedged, bool) or not isinstance(hedged, int) or hedged < 1:
            raise ValueError(f"max_hedged must be an integer >= 1, got {max_hedged!r}")
        self._name = name
        self._delay = float(delay)
        self._max_hedged = max_hedged
        self._hedge_on_failure = bool(hedge_on_failure)
        self._handles = exception_selector("on", on)
        self._listeners = list(listeners)
        self._sleep = sleep
        self._clock = clock

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def delay(self) -> float:
        """Seconds an attempt is given before the next one starts."""
        return self._delay

    @property
    def max_hedged(self) -> int:
        """Extra attempts at most, beside the first."""
        return self._max_hedged

    def add_listener(self, listener: HedgeListener) -> None:
        """Tell ``listener`` of every later event."""
        self._listeners.append(listener)

    def describe(self) -> str:
        """A short description, e.g. ``"hedge('search', delay=0.05 s, max_hedged=2)"``."""
        return f"hedge({self._name!r}, delay={self._delay:g} s, max_hedged={self._max_hedged})"

    async def execute(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, hedged; return the first attempt's result to succeed.

        Raises:
            BaseException: the error of the attempt that failed last, unchanged, when
                every attempt failed; or at once, an error that ``on`` does not select.
        """
        return await self.execute_attempts(lambda _attempt: fn(*args, **kwargs))

    async def execute_attempts(self, attempt: Callable[[int], Awaitable[T]], /) -> T:
        """Await ``attempt(0)``, hedged by ``attempt(1)``, ``attempt(2)``, ...; return the
        first result to come back.

        ``attempt(n)`` is called when attempt ``n`` starts, so each attempt may call
        another replica (``lambda n: fetch(replicas[n], key)``).

        Raises:
            BaseException: as for `execute`.
        """
        clock, listeners, last = self._clock, self._listeners, self._max_hedged
        start = clock()
        running: dict[asyncio.Task[T], tuple[int, float]] = {}
        timer: asyncio.Task[None] | None = None
        started = 0
        last_error: BaseException | None = None

        async def run(number: int) -> T:
            return await attempt(number)

        def launch(reason: Literal["delay", "failure"] | None) -> None:
            nonlocal started
            number = started
            started += 1
            if reason is not None and listeners:
                tell(listeners, HedgeStarted(self._name, number, reason, clock() - start))
            running[asyncio.create_task(run(number))] = (number, clock())

        def ended(number: int, began: float, error: BaseException | None) -> None:
            if listeners:
                outcome: Literal["success", "failure"] = "success" if error is None else "failure"
                event = HedgeAttemptEnded(self._name, number, outcome, clock() - began, error)
                tell(listeners, event)

        launch(None)
        try:
            while True:
                if timer is None and started <= last:
                    timer = asyncio.create_task(self._wait())
                waiting: set[asyncio.Task[T] | asyncio.Task[None]] = set(running)
                if timer is not None:
                    waiting.add(timer)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                failed = False
                # In the order they started: the running dict keeps it.
                for task in [task for task in running if task in done]:
                    number, began = running.pop(task)
                    error = asyncio.CancelledError() if task.cancelled() else task.exception()
                    ended(number, began, error)
                    if error is None:
                        return task.result()
                    if not isinstance(error, Exception) or not self._handles(error):
                        raise error
                    last_error, failed = error, True
                reason: Literal["delay", "failure"] | None = None
                if timer is not None and timer in done:
                    timer.result()  # a failing sleep is a bug to see, not to hedge around
                    timer, reason = None, "delay"
                if failed and self._hedge_on_failure:
                    reason = "failure"
                if reason is not None and started <= last:
                    if timer is not None:
                        timer.cancel()  # the next delay counts from this attempt
                        timer = None
                    launch(reason)
                if not running and started > last:
                    assert last_error is not None  # only failures empty the running set
                    raise last_error
        finally:
            await self._stop(timer, running)

    async def _wait(self) -> None:
        await self._sleep(self._delay)

    async def _stop(
        self, timer: asyncio.Task[None] | None, running: dict[asyncio.Task[T], tuple[int, float]]
    ) -> None:
        """Cancel the timer and the attempts still running, and wait until they are over."""
        tasks: set[asyncio.Task[T] | asyncio.Task[None]] = set(running)
        if timer is not None:
            tasks.add(timer)
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        # Like a TaskGroup, the caller waits until every attempt is over even when it
        # is cancelled meanwhile, and is cancelled afterwards: nothing is left running.
        pending, interrupted = tasks, False
        while pending:
            try:
                _, pending = await asyncio.wait(pending)
            except asyncio.CancelledError:
                interrupted = True
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as lost
        if self._listeners:
            now = self._clock()
            for _task, (number, began) in sorted(running.items(), key=lambda item: item[1][0]):
                tell(
                    self._listeners,
                    HedgeAttemptEnded(self._name, number, "cancelled", now - began),
                )
        if interrupted:
            raise asyncio.CancelledError

    def __call__(
        self, fn: Callable[P, Coroutine[object, object, T]], /
    ) -> Callable[P, Coroutine[object, object, T]]:
        """Decorate a coroutine function: each call goes through `execute`.

        Raises:
            TypeError: if ``fn`` is not a coroutine function (a plain call cannot be
                cancelled, so it cannot be hedged).
        """
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"a hedge decorates coroutine functions only (async def), got {fn!r}: "
                "a plain call cannot be cancelled once another attempt wins"
            )

        @functools.wraps(fn)
        async def hedged(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.execute(fn, *args, **kwargs)

        return hedged

    def __repr__(self) -> str:
        return f"<Hedge {self.describe()}>"
