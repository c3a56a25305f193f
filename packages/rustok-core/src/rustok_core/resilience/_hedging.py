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
from typing import Any, Generic, Literal, ParamSpec, TypeAlias, TypeVar

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
        sleep: waits out the delay. By default (``asyncio.sleep``) the delay is a
            timer of the event loop whose callback starts the next attempt; tests pass
            one that waits on an event they set, so that no test waits for real.
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
        call = _HedgedCall(
            attempt,
            name=self._name,
            delay=self._delay,
            last=self._max_hedged,
            hedge_on_failure=self._hedge_on_failure,
            handles=self._handles,
            listeners=self._listeners,
            sleep=None if self._sleep is asyncio.sleep else self._sleep,
            clock=self._clock,
        )
        return await call.run()

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


class _HedgedCall(Generic[T]):
    """One hedged call: its attempts' tasks, the delay's timer, and the answer awaited.

    Past its start, the call runs in the event loop's callbacks, not in the caller: the
    delay's timer (``loop.call_later``) starts the next attempt itself, and the
    done-callback of the attempt that decides the call cancels the others and then
    resolves the answer. The caller wakes once, waits for any attempt still unwinding,
    reports the cancelled ones, and returns.
    """

    __slots__ = (
        "_answer",
        "_attempt",
        "_clock",
        "_decided",
        "_delay",
        "_handles",
        "_hedge_on_failure",
        "_last",
        "_listeners",
        "_loop",
        "_name",
        "_running",
        "_sleep",
        "_sleepers",
        "_start",
        "_started",
        "_timer",
    )

    def __init__(
        self,
        attempt: Callable[[int], Awaitable[T]],
        *,
        name: str,
        delay: float,
        last: int,
        hedge_on_failure: bool,
        handles: Callable[[Exception], bool],
        listeners: Sequence[HedgeListener],
        sleep: Callable[[float], Awaitable[object]] | None,
        clock: Callable[[], float],
    ) -> None:
        self._attempt = attempt
        self._name = name
        self._delay = delay
        self._last = last
        self._hedge_on_failure = hedge_on_failure
        self._handles = handles
        self._listeners = listeners
        self._sleep = sleep
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._answer: asyncio.Future[T] = self._loop.create_future()
        # The attempts whose end is not reported yet, in the order they started.
        self._running: dict[asyncio.Task[T], tuple[int, float]] = {}
        self._sleepers: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | asyncio.Task[None] | None = None
        self._started = 0
        self._decided = False
        self._start = clock()

    async def run(self) -> T:
        """Start the first attempt and the delay; return (or raise) what decides the call.

        Whatever ends the call (an answer, an error, the caller's cancellation), every
        attempt and delay still running is cancelled and over before this returns.
        """
        self._launch(None)
        self._arm()
        try:
            return await self._answer
        finally:
            self._decide()  # when the caller was cancelled: nothing else decided
            pending = [task for task in (*self._running, *self._sleepers) if not task.done()]
            # Usually empty: a loser's cancellation runs before the caller wakes.
            interrupted = await _outlast(pending) if pending else False
            self._report_cancelled()
            if interrupted:
                raise asyncio.CancelledError  # the caller's own cancellation

    def _launch(self, reason: Literal["delay", "failure"] | None) -> None:
        number = self._started
        self._started += 1
        if reason is not None and self._listeners:
            event = HedgeStarted(self._name, number, reason, self._clock() - self._start)
            tell(self._listeners, event)
        began = self._clock()
        task = self._loop.create_task(self._run_attempt(number))
        self._running[task] = (number, began)
        task.add_done_callback(self._attempt_ended)

    async def _run_attempt(self, number: int) -> T:
        return await self._attempt(number)

    def _arm(self) -> None:
        """Start the delay before the next attempt, unless every attempt has started."""
        if self._started > self._last:
            return
        if self._sleep is None:
            # The timer's callback starts the next attempt: nothing to wake in between.
            self._timer = self._loop.call_later(self._delay, self._delay_passed)
            return
        sleeper = self._loop.create_task(self._wait())
        self._sleepers.add(sleeper)
        sleeper.add_done_callback(self._slept)
        self._timer = sleeper

    async def _wait(self) -> None:
        assert self._sleep is not None
        await self._sleep(self._delay)

    def _slept(self, sleeper: asyncio.Task[None]) -> None:
        self._sleepers.discard(sleeper)
        error = asyncio.CancelledError() if sleeper.cancelled() else sleeper.exception()
        if sleeper is not self._timer:
            return  # cancelled by the call: a later delay, or none, replaced it
        if error is not None:
            self._fail(error)  # a failing sleep is a bug to see, not to hedge around
            return
        self._delay_passed()

    def _delay_passed(self) -> None:
        self._timer = None
        if self._decided or self._answer.done():
            return
        try:
            self._launch("delay")
            self._arm()
        except Exception as error:  # the clock's, say: it ends the call, as raised
            self._fail(error)

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _attempt_ended(self, task: asyncio.Task[T]) -> None:
        if self._decided or self._answer.done():
            # A loser, or an attempt the cancelled caller is about to report: its end is
            # not the answer, and its error is retrieved, never logged as lost.
            if not task.cancelled():
                task.exception()
            return
        try:
            self._judge(task)
        except Exception as error:  # the ``on`` predicate's or the clock's: ends the call
            self._fail(error)

    def _judge(self, task: asyncio.Task[T]) -> None:
        """Decide the call on an attempt's end, or start the next attempt after a failure."""
        number, began = self._running.pop(task)
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if self._listeners:
            outcome: Literal["success", "failure"] = "success" if error is None else "failure"
            event = HedgeAttemptEnded(self._name, number, outcome, self._clock() - began, error)
            tell(self._listeners, event)
        if error is None:
            self._decide()
            # After the cancellations: the losers' steps run before the caller wakes, so a
            # loser whose clean-up does not wait is over when the caller looks.
            self._answer.set_result(task.result())
        elif not isinstance(error, Exception) or not self._handles(error):
            self._fail(error)
        elif self._hedge_on_failure and self._started <= self._last:
            self._cancel_timer()  # the next delay counts from this attempt
            self._launch("failure")
            self._arm()
        elif not self._running and self._started > self._last:
            self._fail(error)  # the last to fail: every other attempt failed before it

    def _fail(self, error: BaseException) -> None:
        self._decide()
        if not self._answer.done():
            self._answer.set_exception(error)

    def _decide(self) -> None:
        """Start no more attempts and cancel those still running (once)."""
        if self._decided:
            return
        self._decided = True
        self._cancel_timer()
        for task in self._running:
            task.cancel()

    def _report_cancelled(self) -> None:
        """Tell the listeners of the attempts cancelled, in the order they started."""
        if not self._running:
            return
        for task in self._running:
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as lost
        if self._listeners:
            now = self._clock()
            for number, began in sorted(self._running.values()):
                tell(
                    self._listeners, HedgeAttemptEnded(self._name, number, "cancelled", now - began)
                )


async def _outlast(tasks: Iterable[asyncio.Future[Any]]) -> bool:
    """Wait until every task is over, even through cancellations; True if one came."""
    interrupted = False
    pending = set(tasks)
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True
            pending = {task for task in pending if not task.done()}
    return interrupted
